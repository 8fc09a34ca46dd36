"""Where canonical data came from: the manifest prepro writes beside the canonical files.

`DATA_DIR/manifest.json` (format 1) holds one entry per canonical file:

    {"format": 1, "written_by": "prepro.py",
     "files": {"rte_train.json": {
         "task": "rte", "split": "train", "rows": 2490, "longest_row": 128, "size": 912345, "sha256": "...",
         "skipped_short": 0, "skipped_malformed": 0, "skip_malformed": false,
         "reader_version": 2, "task_def_sha256": "...",
         "max_seq_len": 128,
         "tokenizer": {"model": "bert-base-uncased", "class": "BertTokenizerFast", "lowercase": true,
                       "vocab_size": 30522, "vocab_sha256": "...", "fingerprint": "..."},
         "sources": [{"path": "/abs/data/RTE/train.tsv", "size": 697150, "sha256": "..."}]}}}

The tokenizer's `fingerprint` is what tells tokenizers apart (class, vocabulary, normalisation,
special tokens); `model` is only the name it was given, for messages. Entries are per file because a
folder may be filled by several prepro runs (`--tasks rte`, later `--tasks mnli`).

`check_canonical_data` is train.py's check that the data fits the run (the default folder name
`DATA_DIR/canonical_data/<name>` is modeling.pretrained.canonical_folder_name's: it is a model's name).
"""
import hashlib
import json
import os
import sys

from data_utils.errors import UserError
from data_utils.files import write_output_file
from data_utils.jsonio import read_json

MANIFEST = "manifest.json"
FORMAT = 1
_PROBE = "Ünïcode ABC ñ  x\u00adY"          # shows lowercasing, accent stripping and cleanup of a normaliser


def tokenizer_identity(tokenizer, model: str | None = None) -> dict:
    """Name (as given), class, lowercasing, vocabulary hash and a fingerprint of a tokenizer."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: (item[1], item[0]))
    vocab_sha = hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    probe = normalizer.normalize_str(_PROBE) if normalizer is not None else None
    lowercase = "abc" in probe if probe is not None else \
        bool(getattr(tokenizer, "do_lower_case", tokenizer.init_kwargs.get("do_lower_case", False)))
    special = {name: getattr(tokenizer, f"{name}_token_id", None) for name in ("cls", "sep", "pad", "unk")}
    basis = json.dumps({"class": type(tokenizer).__name__, "vocab": vocab_sha, "normalized": probe,
                        "lowercase": lowercase, "special": special}, sort_keys=True)
    return {"model": model, "class": type(tokenizer).__name__, "lowercase": lowercase,
            "vocab_size": len(vocab), "vocab_sha256": vocab_sha,
            "fingerprint": hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]}


def file_digest(path: str) -> dict:
    """{"path": absolute path, "size": bytes, "sha256": hex} of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": os.path.abspath(path), "size": os.path.getsize(path), "sha256": digest.hexdigest()}


def read_manifest(data_dir: str) -> dict | None:
    """The manifest of a canonical folder, None when it has none; a damaged one is a UserError."""
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    manifest = read_json(path, "a readable manifest", "delete it and rerun prepro to rebuild the folder")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise UserError(f"{path}: not a prepro manifest (no 'files' mapping); delete it and rerun prepro")
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: manifest format {manifest.get('format')!r}, this toolkit reads format {FORMAT}; "
                        "rerun prepro to rebuild the folder")
    for name, entry in manifest["files"].items():
        damaged = _damaged(entry)
        if damaged:
            raise UserError(f"{path}: the entry of {name} is damaged ({damaged}); delete the manifest and rerun "
                            "prepro to rebuild the folder")
    return manifest


def _damaged(entry) -> str | None:
    """What is wrong with the shape of one manifest entry (the parts stale_reasons and check_canonical_data
    read), None when nothing is: a damaged entry is then a message, not a crash."""
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("tokenizer") or {}, dict):
        return "its tokenizer is not an object"
    sources = entry.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(source, dict) for source in sources):
        return "its sources are not a list of objects"
    return None


def write_manifest(data_dir: str, manifest: dict) -> None:
    """Write the manifest atomically."""
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    write_output_file(os.path.join(data_dir, MANIFEST), lambda handle: handle.write(text))


def stale_reasons(entry: dict | None, out_path: str, wanted: dict) -> list:
    """Why the canonical file `out_path` must be written again, [] when it is current.

    `wanted` holds what this prepro run would record: tokenizer, max_seq_len, sources, reader_version,
    task_def_sha256, skip_malformed."""
    if entry is None:
        return ["not in the manifest"]
    if not os.path.isfile(out_path):
        return ["the file is missing"]
    reasons = []
    if os.path.getsize(out_path) != entry.get("size"):
        reasons.append("the file changed since prepro wrote it")
    if (entry.get("tokenizer") or {}).get("fingerprint") != wanted["tokenizer"]["fingerprint"]:
        reasons.append(f"made with another tokenizer ({(entry.get('tokenizer') or {}).get('model')})")
    if entry.get("max_seq_len") != wanted["max_seq_len"]:
        reasons.append(f"made with max_seq_len {entry.get('max_seq_len')}")
    # by content: a data folder that moved is still current
    old_sources = [(s.get("size"), s.get("sha256")) for s in entry.get("sources", [])]
    new_sources = [(s["size"], s["sha256"]) for s in wanted["sources"]]
    if old_sources != new_sources:
        reasons.append("the source TSV changed")
    for key, what in (("reader_version", "an older reader"), ("task_def_sha256", "another task definition"),
                      ("skip_malformed", "another --skip_malformed")):
        if entry.get(key) != wanted[key]:
            reasons.append(f"made with {what}")
    return reasons


def check_canonical_data(data_dir: str, tokenizer, max_seq_len: int, datasets, warn=None) -> None:
    """Refuse canonical data made for another tokenizer or with a shorter max_seq_len than asked.

    `tokenizer`: the run's tokenizer (modeling.pretrained.load_tokenizer); `datasets`: canonical dataset names ('rte_train', 'mnli_matched_dev') or file names.
    A dataset whose file does not exist is left to the loader. A folder without a manifest (data made
    before manifests, or by hand) is accepted with one warning, given to `warn(message)` (default: a
    line on stderr): nothing can be checked. A dataset the manifest does not list, or whose file changed since
    prepro wrote it, is refused. Data made with a longer max_seq_len is fine (rows are cut on loading),
    and so is data made with a shorter one whose rows are all shorter than it (the manifest's
    `longest_row`: nothing was cut, so the data is what the asked length would give)."""
    manifest = read_manifest(data_dir)
    present = [name for name in datasets
               if os.path.exists(os.path.join(data_dir, name if name.endswith(".json") else f"{name}.json"))]
    if manifest is None and present:
        message = (f"{data_dir} has no {MANIFEST} (made by an older prepro or by hand): cannot check which "
                   "tokenizer and max_seq_len it was made with; rerun prepro to add one")
        if warn is None:
            print(f"warning: {message}", file=sys.stderr)
        else:
            warn(message)
    if manifest is None or not present:       # missing files are load_canonical's to report
        return
    model = getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
    wanted = tokenizer_identity(tokenizer, model)
    path = os.path.join(data_dir, MANIFEST)
    for name in datasets:
        file_name = name if name.endswith(".json") else f"{name}.json"
        entry = manifest["files"].get(file_name)
        if entry is None and not os.path.exists(os.path.join(data_dir, file_name)):
            continue             # a missing file is load_canonical's to report (test sets are optional)
        if entry is None:
            raise UserError(f"{path}: does not list {file_name} (not written by prepro for this folder); rerun "
                            f"`python prepro.py --model {model} --output_dir {data_dir}` or check --data_dir")
        made = entry.get("tokenizer") or {}
        if made.get("fingerprint") != wanted["fingerprint"]:
            raise UserError(f"{os.path.join(data_dir, file_name)}: tokenized for '{made.get('model')}' (tokenizer "
                            f"{made.get('class')}, fingerprint {made.get('fingerprint')}), but this run's model "
                            f"'{model}' has tokenizer {wanted['class']}, fingerprint {wanted['fingerprint']}; rerun "
                            f"prepro with --model {model} or point --data_dir at that model's canonical data")
        made_len, longest = entry.get("max_seq_len"), entry.get("longest_row")
        # data made with a shorter max_seq_len is the same data if no row reached that length (none was cut)
        cut = not (isinstance(longest, int) and isinstance(made_len, int) and longest < made_len)
        if not isinstance(made_len, int) or (made_len < max_seq_len and cut):
            raise UserError(f"{os.path.join(data_dir, file_name)}: made with --max_seq_len {made_len}, shorter than "
                            f"the --max_seq_len {max_seq_len} asked; rerun prepro with --max_seq_len {max_seq_len} "
                            f"or pass --max_seq_len {made_len}")
        file_path = os.path.join(data_dir, file_name)
        if os.path.isfile(file_path) and os.path.getsize(file_path) != entry.get("size"):
            raise UserError(f"{file_path}: changed since prepro wrote it ({os.path.getsize(file_path)} bytes, the "
                            f"manifest says {entry.get('size')}); rerun prepro to rebuild it")
