"""GLUE readers on rows shaped exactly like the official files (tests/fixtures/glue-format-samples)."""
import os
import shutil

import pytest

from data_utils.errors import UserError
from data_utils.glue_readers import read_split
from data_utils.task_def import load_task_defs, resolve_dataset
from tests.conftest import GLUE_FORMAT_SAMPLES as SAMPLES

TASKS = load_task_defs()

# (task, split, start of text_a, start of text_b or None, label id) read off the shared sample rows by hand.
EXPECTED = [
    ("cola", "train", "One more pseudo generalization", None, 1),
    ("cola", "dev", "The weights made the rope", None, 1),
    ("cola", "test", "Bill whistled past the house.", None, 0),
    ("sst", "train", "hide new secretions", None, 0),
    ("sst", "dev", "it 's a charming", None, 1),
    ("sst", "test", "uneasy mishmash", None, 0),
    ("mrpc", "train", "Amrozi accused his brother", "Referring to him", 1),
    ("mrpc", "dev", "He said the foodservice", "\" The foodservice", 1),
    ("mrpc", "test", "PCCW 's chief", "Current Chief Operating", 0),
    ("stsb", "train", "A plane is taking off.", "An air plane", 5.0),
    ("stsb", "dev", "A man with a hard hat", "A man wearing", 5.0),
    ("stsb", "test", "A girl is styling", "A girl is brushing", 0),
    ("qqp", "train", "How is the life of a math student?", "Which level of prepration", 0),
    ("qqp", "dev", "Why are African-Americans", "Why are hispanics", 0),
    ("qqp", "test", "Would the idea of Trump", "Do you think that", 0),
    ("mnli", "train", "Conceptually cream skimming", "Product and geography", 1),
    ("mnli", "matched_dev", "The new rights are nice enough", "Everyone really likes", 1),
    ("mnli", "mismatched_dev", "Your contribution helped", "Your contributions were", 0),
    ("mnli", "matched_test", "Hierbas, ans seco", "Hierbas is a name", 0),
    ("mnli", "mismatched_test", "What have you decided", "So what's your decision", 0),
    ("qnli", "train", "When did the third Digimon", "Unlike the two seasons", 0),
    ("qnli", "dev", "What came into force", "As of that day", 1),
    ("qnli", "test", "What organization is devoted", "For some decades", 0),
    ("rte", "train", "No Weapons of Mass Destruction", "Weapons of Mass Destruction Found", 0),
    ("rte", "dev", "Dana Reeve", "Christopher Reeve had an accident.", 0),
    ("rte", "test", "Mangla was summoned", "Shukla is related", 0),
    ("wnli", "train", "I stuck a pin", "The carrot had a hole.", 1),
    ("wnli", "dev", "The drain is clogged", "The hair has to be cleaned.", 0),
    ("wnli", "test", "Maude and Dora", "Horses ran away", 0),
]


def glue_copy(tmp_path, task):
    """A data dir holding the shared sample files of one task."""
    target = tmp_path / task.glue_dir
    shutil.copytree(os.path.join(SAMPLES, task.glue_dir), target)
    return str(tmp_path), target


@pytest.mark.parametrize("task_name,split,text_a,text_b,label", EXPECTED)
def test_reader_reads_every_official_layout(tmp_path, task_name, split, text_a, text_b, label):
    task = TASKS[task_name]
    data_dir, _ = glue_copy(tmp_path, task)
    examples = read_split(task, task.splits[split], data_dir)
    with open(os.path.join(SAMPLES, task.glue_dir, task.splits[split].file), "rb") as handle:
        rows = handle.read().count(b"\n") - task.splits[split].header
    assert len(examples) == rows, f"{task_name} {split}: expected {rows} sample rows, got {len(examples)}"
    example = examples[-1]
    assert example.text_a.startswith(text_a), f"{task_name} {split}: text_a {example.text_a[:60]!r}"
    if text_b is None:
        assert example.text_b is None, f"{task_name} {split}: single-sentence task got text_b {example.text_b!r}"
    else:
        assert example.text_b.startswith(text_b), f"{task_name} {split}: text_b {example.text_b[:60]!r}"
    assert example.label == label, f"{task_name} {split}: label {example.label!r}, expected {label!r}"


def test_every_shared_sample_file_is_covered():
    covered = {(t, s) for t, s, *_ in EXPECTED}
    declared = {(name, split) for name, task in TASKS.items() for split in task.splits}
    assert covered == declared, f"task definition splits and tested splits differ: {covered ^ declared}"


def test_label_maps_follow_mtdnn():
    assert TASKS["mnli"].labels == ("contradiction", "neutral", "entailment"), "mnli label order"
    assert TASKS["qnli"].label_to_id("entailment") == 1 and TASKS["rte"].label_to_id("not_entailment") == 0, \
        "qnli/rte: not_entailment=0, entailment=1"
    assert TASKS["stsb"].label_to_id("3.800") == pytest.approx(3.8), "stsb keeps the float"
    assert TASKS["stsb"].label_to_id("7.5") is None, "stsb scores outside 0-5 are invalid"
    assert TASKS["cola"].label_to_id("2") is None, "cola has only 0/1"
    assert resolve_dataset("mnli_matched", TASKS).name == "mnli", "dataset name resolves to its task"
    assert TASKS["mnli"].dataset_prefixes() == ["mnli_matched", "mnli_mismatched"], "mnli's eval datasets"
    assert TASKS["cola"].main_metric == "MCC" and TASKS["mrpc"].main_metric == "F1" \
        and TASKS["stsb"].main_metric == "Spearman" and TASKS["rte"].main_metric == "ACC", "main metrics"


def _append(path, data: bytes):
    with open(path, "ab") as handle:
        handle.write(data)


@pytest.mark.parametrize("bad_row,expected", [
    (b"0\tonly two columns\n", "malformed row with 2 tab-separated columns, expected 4"),
    (b"1\tA sentence.\tA hypothesis.\tmaybe\n", "label 'maybe' is not valid for rte"),
    (b"1\tA sentence \xff\xfe.\tB.\tentailment\n", "bytes that are not UTF-8"),
])
def test_bad_rows_name_file_and_line(tmp_path, bad_row, expected):
    task = TASKS["rte"]
    data_dir, target = glue_copy(tmp_path, task)
    _append(target / "train.tsv", bad_row)
    with pytest.raises(UserError) as info:
        read_split(task, task.splits["train"], data_dir)
    message = str(info.value)
    assert f"{target / 'train.tsv'}:3:" in message, f"message must name file and line 3: {message}"
    assert expected in message, f"message must say what is wrong: {message}"


def test_skip_malformed_keeps_good_rows(tmp_path):
    task = TASKS["qqp"]
    data_dir, target = glue_copy(tmp_path, task)
    _append(target / "train.tsv", b"1\t2\t3\tbroken question\n")
    examples = read_split(task, task.splits["train"], data_dir, skip_malformed=True)
    assert len(examples) == 1, f"the malformed row is skipped, the good one kept: {len(examples)}"


def test_missing_and_empty_files(tmp_path):
    task = TASKS["sst"]
    with pytest.raises(UserError, match="file not found; run `sh download.sh"):
        read_split(task, task.splits["train"], str(tmp_path))
    data_dir, target = glue_copy(tmp_path, task)
    (target / "dev.tsv").write_bytes(b"")
    with pytest.raises(UserError, match="file is empty"):
        read_split(task, task.splits["dev"], data_dir)


def test_qqp_reads_as_mtdnn_counter_uids_and_short_rows_skipped(tmp_path, capsys):
    task = TASKS["qqp"]
    data_dir, target = glue_copy(tmp_path, task)
    _append(target / "train.tsv", b"7\t8\t9\ta question cut by a newline\n")     # 4 fields: MT-DNN skips it
    _append(target / "train.tsv", b"500\t501\t502\tIs this kept?\tIs it numbered 1?\t1\n")
    _append(target / "train.tsv", b"\n")
    report = {}
    examples = read_split(task, task.splits["train"], data_dir, report=report)
    assert [e.uid for e in examples] == ["0", "1"], f"train uids are a running counter, not the id column: {examples}"
    assert examples[1].text_a == "Is this kept?" and examples[1].label == 1, f"the good row after a short one: {examples}"
    assert report == {"skipped_short": 2, "skipped_malformed": 0}, f"short rows are counted: {report}"
    err = capsys.readouterr().err
    assert "skipped 2 rows with fewer than 6 fields, as MT-DNN's reader does for qqp train" in err, err
    dev = read_split(task, task.splits["dev"], data_dir)
    assert [e.uid for e in dev] == ["0"], f"dev uids are a counter too: {dev}"
    test_split = task.splits["test"]
    with open(target / test_split.file, encoding="utf-8") as handle:
        first_id = handle.read().split("\n")[1].split("\t")[0]
    assert read_split(task, test_split, data_dir)[0].uid == first_id, "test keeps its id column (for submission)"


def test_other_tasks_still_refuse_short_rows(tmp_path):
    task = TASKS["mnli"]
    data_dir, target = glue_copy(tmp_path, task)
    _append(target / "train.tsv", b"1\t2\tshort\n")
    with pytest.raises(UserError, match="malformed row with 3 tab-separated columns, expected 12"):
        read_split(task, task.splits["train"], data_dir)
