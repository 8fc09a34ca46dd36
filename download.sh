#!/bin/sh
# Fetch the nine GLUE tasks into DIR/<Task>/ in their original layouts, or write
# the toolkit's built-in synthetic SAMPLE when GLUE cannot be reached (or with
# --sample).
#
#   sh download.sh [--sample] [--data_dir DIR]
#
# DIR defaults to ./data and is resolved against the directory you run the
# script from (not the script's own directory).
#
# Every file is downloaded and unpacked in a temporary folder beside DIR and
# moved into DIR only when all nine tasks are complete, so an interrupted or
# failed download never leaves partial files in DIR. If any task cannot be
# fetched, DIR gets the built-in sample for all nine tasks instead (never a mix
# of real and synthetic data), and the script says so on stdout. The sample
# generator refuses to overwrite real GLUE files already in DIR.
#
# Environment (for mirrors and tests):
#   GLUE_BASE_URL          folder URL of the GLUE task zips
#                          (default https://dl.fbaipublicfiles.com/glue/data/)
#   GLUE_MRPC_URL          folder URL of msr_paraphrase_{train,test}.txt
#                          (default https://dl.fbaipublicfiles.com/senteval/senteval_data/)
#   GLUE_MRPC_DEV_IDS_URL  URL of MRPC's dev_ids.tsv (GLUE's train/dev split)
#   GLUE_FETCHER           curl or wget (default: curl if installed, else wget)
#   GLUE_CONNECT_TIMEOUT   seconds to wait for a connection (default 10)
#   GLUE_SAMPLE_SCALE      size factor for the built-in sample, passed to its
#                          --scale (default 1: the full sample, e.g. 2,500 RTE train rows)
# Pointing GLUE_BASE_URL at a closed local port, e.g. http://127.0.0.1:9/,
# simulates an offline machine.

set -u

USAGE="usage: sh download.sh [--sample] [--data_dir DIR]"

usage_error() {
    echo "download.sh: $1 ($USAGE)" >&2
    exit 2
}

# set_data_dir VALUE: take --data_dir's value once; a flag in its place (`--data_dir --sample`) is a
# forgotten value, not a directory to create.
set_data_dir() {
    [ -z "$DATA_DIR_GIVEN" ] || usage_error "--data_dir given twice ('$DATA_DIR' and '$1'); give it once"
    case $1 in
        -*) usage_error "--data_dir needs a directory, not '$1' (for a name that starts with '-', write ./$1)" ;;
    esac
    DATA_DIR=$1
    DATA_DIR_GIVEN=1
}

SAMPLE=0
DATA_DIR=data
DATA_DIR_GIVEN=
while [ $# -gt 0 ]; do
    case $1 in
        --sample) SAMPLE=1 ;;
        --data_dir)
            [ $# -ge 2 ] || usage_error "--data_dir needs a value"
            set_data_dir "$2"
            shift ;;
        --data_dir=*) set_data_dir "${1#--data_dir=}" ;;
        -h|--help)
            echo "$USAGE"
            echo "Fetch GLUE into DIR (default ./data), or write the built-in synthetic sample with --sample"
            echo "or when GLUE cannot be reached. See the comments at the top of download.sh."
            exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
    shift
done
[ -n "$DATA_DIR" ] || usage_error "--data_dir must not be empty"
case ${GLUE_CONNECT_TIMEOUT:-10} in
    ''|*[!0-9]*|0) usage_error "GLUE_CONNECT_TIMEOUT must be a whole number of seconds >= 1, not '$GLUE_CONNECT_TIMEOUT'" ;;
esac
if ! awk -v s="${GLUE_SAMPLE_SCALE:-1}" 'BEGIN { exit !(s ~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/ && s > 0 && s <= 50) }'; then
    usage_error "GLUE_SAMPLE_SCALE must be a number in (0, 50], not '$GLUE_SAMPLE_SCALE'"
fi

GLUE_BASE_URL=${GLUE_BASE_URL:-https://dl.fbaipublicfiles.com/glue/data/}
GLUE_MRPC_URL=${GLUE_MRPC_URL:-https://dl.fbaipublicfiles.com/senteval/senteval_data/}
GLUE_MRPC_DEV_IDS_URL=${GLUE_MRPC_DEV_IDS_URL:-https://raw.githubusercontent.com/MegEngine/Models/master/official/nlp/bert/glue_data/MRPC/dev_ids.tsv}
TIMEOUT=${GLUE_CONNECT_TIMEOUT:-10}
TASKS="CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"

SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
case $DATA_DIR in
    /*) ;;
    *) DATA_DIR=$(pwd)/$DATA_DIR ;;
esac
if [ "$SAMPLE" = 0 ]; then
    case ${GLUE_FETCHER:-curl} in
        curl|wget) ;;
        *) usage_error "GLUE_FETCHER must be curl or wget, not '$GLUE_FETCHER'" ;;
    esac
fi
if [ -e "$DATA_DIR" ] && [ ! -d "$DATA_DIR" ]; then
    echo "download.sh: --data_dir $DATA_DIR is a file, not a directory; choose another --data_dir" >&2
    exit 2
fi
# Refuse a DIR that cannot be a directory (a parent is a file, no permission) before fetching anything.
if ! mkdir -p "$DATA_DIR" 2>/dev/null || [ ! -d "$DATA_DIR" ] || [ ! -w "$DATA_DIR" ]; then
    echo "download.sh: --data_dir $DATA_DIR: cannot create or write that directory; choose another --data_dir" >&2
    exit 2
fi

PY=
for candidate in python python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[0] < 3)' 2>/dev/null; then
        PY=$candidate
        break
    fi
done
if [ -z "$PY" ]; then
    echo "download.sh: needs Python 3 as 'python' or 'python3' on PATH" >&2
    exit 1
fi

write_sample() {
    echo "download.sh: $1"
    (cd "$SCRIPT_DIR" && "$PY" -m experiments.glue.sample_data --out_dir "$DATA_DIR" \
        --scale "${GLUE_SAMPLE_SCALE:-1}") || exit $?
    echo "download.sh: wrote the built-in SAMPLE (synthetic data), NOT real GLUE, to $DATA_DIR"
    exit 0
}

if [ "$SAMPLE" = 1 ]; then
    write_sample "--sample given: writing the built-in sample"
fi

FETCHER=${GLUE_FETCHER:-}
if [ -z "$FETCHER" ]; then
    if command -v curl >/dev/null 2>&1; then
        FETCHER=curl
    elif command -v wget >/dev/null 2>&1; then
        FETCHER=wget
    else
        write_sample "neither curl nor wget is installed, so GLUE cannot be fetched: writing the built-in sample"
    fi
fi
fetch() {  # fetch URL FILE: download URL to FILE, fail on HTTP errors and stalls
    if [ "$FETCHER" = curl ]; then
        # curl's own complaint goes into the one line that reports the failure, not onto stderr
        curl -fsSL --connect-timeout "$TIMEOUT" --speed-limit 1024 --speed-time 60 -o "$2" "$1" 2>"$TMP/fetch.err"
    else
        wget -q --connect-timeout="$TIMEOUT" --read-timeout=60 --tries=1 -O "$2" "$1"
    fi
}

zip_name() {
    case $1 in
        QQP) echo QQP-clean.zip ;;
        QNLI) echo QNLIv2.zip ;;
        *) echo "$1.zip" ;;
    esac
}

mkdir -p "$DATA_DIR" || exit 1
# Beside DIR, on the same file system, so the final moves are renames.
TMP=$(mktemp -d "$(dirname "$DATA_DIR")/.glue-download.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir "$TMP/ready" || exit 1

convert_mrpc() {  # convert_mrpc SRC DST: GLUE's train/dev/test.tsv from the Microsoft files
    "$PY" - "$1" "$2" <<'PYTHON'
import os
import sys

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)


def rows(path):
    with open(path, encoding="utf-8") as handle:
        handle.readline()
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.strip().split("\t")
            if len(fields) != 5:
                sys.exit(f"{path}:{number}: expected 5 tab-separated fields, got {len(fields)}")
            yield fields


with open(os.path.join(src, "dev_ids.tsv"), encoding="utf-8") as handle:
    dev_ids = {tuple(line.strip().split("\t")[:2]) for line in handle if line.strip()}
header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"  # GLUE keeps the source's BOM
with open(os.path.join(dst, "train.tsv"), "w", encoding="utf-8", newline="\n") as train, \
        open(os.path.join(dst, "dev.tsv"), "w", encoding="utf-8", newline="\n") as dev:
    train.write(header)
    dev.write(header)
    for label, id1, id2, s1, s2 in rows(os.path.join(src, "msr_paraphrase_train.txt")):
        out = dev if (id1, id2) in dev_ids else train
        out.write(f"{label}\t{id1}\t{id2}\t{s1}\t{s2}\n")
with open(os.path.join(dst, "test.tsv"), "w", encoding="utf-8", newline="\n") as test:
    test.write("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
    for index, (_, id1, id2, s1, s2) in enumerate(rows(os.path.join(src, "msr_paraphrase_test.txt"))):
        test.write(f"{index}\t{id1}\t{id2}\t{s1}\t{s2}\n")
PYTHON
}

fetch_task() {  # fetch_task TASK: download and unpack one task into $TMP/ready/TASK
    task=$1
    if [ "$task" = MRPC ]; then
        mkdir "$TMP/mrpc" || return 1
        for file in msr_paraphrase_train.txt msr_paraphrase_test.txt; do
            FAILED_URL=$GLUE_MRPC_URL$file
            fetch "$FAILED_URL" "$TMP/mrpc/$file" || return 1
        done
        FAILED_URL=$GLUE_MRPC_DEV_IDS_URL
        fetch "$FAILED_URL" "$TMP/mrpc/dev_ids.tsv" || return 1
        FAILED_URL="converting MRPC"
        convert_mrpc "$TMP/mrpc" "$TMP/ready/MRPC"
        return
    fi
    zip=$(zip_name "$task")
    FAILED_URL=$GLUE_BASE_URL$zip
    fetch "$FAILED_URL" "$TMP/$zip" || return 1
    FAILED_URL="unpacking $zip"
    "$PY" -m zipfile -e "$TMP/$zip" "$TMP/unpacked-$task" || return 1
    rm -f "$TMP/$zip"
    # The archives hold one folder (CoLA/, QQP/, ...) with train.tsv inside.
    train=$(find "$TMP/unpacked-$task" -name train.tsv -type f | head -n 1)
    [ -n "$train" ] || { FAILED_URL="finding train.tsv in $zip"; return 1; }
    mv "$(dirname "$train")" "$TMP/ready/$task"
}

for task in $TASKS; do
    echo "download.sh: fetching $task"
    FAILED_URL=
    if ! fetch_task "$task"; then
        why=$(tr '\n' ' ' <"$TMP/fetch.err" 2>/dev/null | sed 's/ *$//' | cut -c1-160)
        write_sample "could not get $task ($FAILED_URL failed${why:+: $why}; offline or blocked?): writing the built-in sample instead"
    fi
done

for task in $TASKS; do
    if [ -e "$DATA_DIR/$task" ]; then
        mv "$DATA_DIR/$task" "$TMP/old-$task" || exit 1
    fi
    if ! mv "$TMP/ready/$task" "$DATA_DIR/$task"; then
        [ -e "$TMP/old-$task" ] && mv "$TMP/old-$task" "$DATA_DIR/$task"
        exit 1
    fi
done
rm -f "$DATA_DIR/GLUE_SAMPLE.txt"
echo "download.sh: wrote the real GLUE data (nine tasks) to $DATA_DIR"
