#!/bin/sh
# PLATON on COLA with BERT-base, the published recipe: see scripts/platon/run.sh (overrides, flags).
exec sh "$(dirname "$0")/run.sh" cola "$@"
