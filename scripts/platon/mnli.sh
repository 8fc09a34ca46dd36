#!/bin/sh
# PLATON on MNLI with BERT-base, the published recipe: see scripts/platon/run.sh (overrides, flags).
exec sh "$(dirname "$0")/run.sh" mnli "$@"
