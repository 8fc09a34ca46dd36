"""What a run reports: metrics.jsonl, best_metrics.json, score file names that sort, Sparsity/* scalars at
every evaluation, and scripts/compare_runs.py for every method (and for runs that are missing or unfinished)."""
import json
import os
import re
import shutil

import pytest
from safetensors import safe_open

import train
from training import inference
from scripts import compare_runs
from tests.conftest import run_main


def run_args(canonical_dir, model_dir, output_dir, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", model_dir, "--train_datasets", "rte,stsb",
            "--test_datasets", "rte,stsb", "--epochs", "2", "--batch_size", "8", "--batch_size_eval", "16",
            "--max_seq_len", "64", "--learning_rate", "1e-3", "--log_per_updates", "1000", "--seed", "5",
            "--output_dir", str(output_dir), *extra]


PLATON = ["--pruner", "platon", "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps", "4",
          "--initial_warmup", "1", "--final_warmup", "1", "--deltaT", "2"]
GPP = ["--pruner", "gpp", "--prepruning_finetune_epochs", "0", "--prune_epochs", "1", "--target_sparsity", "0.5"]


def history(output_dir):
    with open(os.path.join(output_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def dense_run(canonical_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dense")
    assert run_main(train.main, run_args(canonical_dir, tiny_model_dir, out, "--pruner", "none",
                                         "--eval_per_updates", "5")) == 0, "dense run"
    return out


@pytest.fixture(scope="module")
def platon_run(canonical_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("platon")
    assert run_main(train.main, run_args(canonical_dir, tiny_model_dir, out, *PLATON, "--tensorboard",
                                         "--eval_per_updates", "3")) == 0, "PLATON run"
    return out


@pytest.fixture(scope="module")
def gpp_run(canonical_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpp")
    assert run_main(train.main, run_args(canonical_dir, tiny_model_dir, out, *GPP, "--eval_per_updates", "3")) == 0, \
        "GPP run"
    return out


# ---------------------------------------------------------------- metrics.jsonl and best_metrics.json

def test_metrics_history_has_one_line_per_evaluation(dense_run):
    total = json.load(open(dense_run / "config.json"))["total_steps"]
    per_epoch = total // 2
    expected = []
    for epoch in range(2):
        expected += [(f"updates_{t}", t, epoch) for t in range(5, total + 1, 5)
                     if epoch * per_epoch < t <= (epoch + 1) * per_epoch]
        expected.append((f"epoch_{epoch}", (epoch + 1) * per_epoch, epoch))
    entries = history(dense_run)
    assert [(e["tag"], e["update"], e["epoch"]) for e in entries] == expected, \
        f"one line per evaluation, in order: {[(e['tag'], e['update'], e['epoch']) for e in entries]}"
    for entry in entries:
        for name in ("rte", "stsb"):
            scores = json.load(open(dense_run / inference.score_file_name(name, "dev", entry["tag"])))
            assert entry["metrics"][name] == scores["metrics"], f"{entry['tag']} {name}: the score file's metrics"
        assert entry["main_metric"] == "rte ACC", f"the main metric is named: {entry}"
        assert isinstance(entry["best"], bool) and re.match(r"\d{4}-\d\d-\d\dT", entry["time"]), \
            f"best flag and an ISO time: {entry}"
    assert entries[0]["best"], "a dense run's first evaluation is its first best"
    assert history(dense_run)[-1]["metrics"] == json.load(open(dense_run / "dev_metrics.json")), \
        "dev_metrics.json keeps its shape: the last evaluation's {dataset: metrics}"


def test_best_metrics_names_the_final_and_the_best_evaluation(dense_run):
    report = json.load(open(dense_run / "best_metrics.json"))
    entries = history(dense_run)
    assert report["final"] == entries[-1], f"final is the last evaluation: {report['final']}"
    bests = [e for e in entries if e["best"]]
    assert report["best"] == bests[-1], f"best is the last evaluation that became best_model/: {report['best']}"
    values = [e["metrics"]["rte"]["ACC"] for e in entries]
    assert report["best"]["metrics"]["rte"]["ACC"] == max(values), \
        f"best has the highest main metric ({max(values)}): {report['best']}"
    first_at_max = values.index(max(values))
    assert report["best"]["tag"] == entries[first_at_max]["tag"], "ties keep the earlier best (best_model/)"
    assert (dense_run / "best_model").is_dir(), "best_metrics.json's best is the saved best_model/"


def test_gpp_best_waits_for_the_target(gpp_run):
    entries = history(gpp_run)
    report = json.load(open(gpp_run / "best_metrics.json"))
    pruning_ends = json.load(open(gpp_run / "config.json"))["total_steps"] // 2      # --prune_epochs 1 of 2
    assert report["final"] == entries[-1], "final is the last evaluation"
    early = [e for e in entries if e["update"] < pruning_ends]
    assert early and not any(e["best"] for e in early), \
        f"no best while GPP is still pruning (before update {pruning_ends}): {[(e['tag'], e['best']) for e in early]}"
    assert report["best"] is not None and report["best"]["update"] >= pruning_ends, \
        f"the best comes once the target is reached: {report['best']}"


def test_resumed_run_keeps_one_consistent_history(canonical_dir, tiny_model_dir, tmp_path):
    args = lambda out, *extra: run_args(canonical_dir, tiny_model_dir, out, "--pruner", "none",  # noqa: E731
                                        "--eval_per_updates", "3", *extra)
    straight = tmp_path / "straight"
    assert run_main(train.main, args(straight)) == 0, "uninterrupted run"
    killed = tmp_path / "killed"
    assert run_main(train.main, args(killed, "--save_per_updates", "4", "--keep_checkpoints", "0")) == 0
    # as if killed after checkpoint-4: later checkpoints and outputs gone, history written beyond it,
    # and half of a line left by the kill
    for name in os.listdir(killed):
        if name.startswith("checkpoint-") and name != "checkpoint-4" or name in ("model", "best_model"):
            shutil.rmtree(killed / name)
    with open(killed / "metrics.jsonl", "a") as handle:
        handle.write('{"tag": "updates_9", "upd')
    assert run_main(train.main, args(killed, "--model_ckpt", str(killed / "checkpoint-4"))) == 0, "resumed run"
    resumed, reference = history(killed), history(straight)
    assert [(e["tag"], e["update"]) for e in resumed] == [(e["tag"], e["update"]) for e in reference], \
        f"the resumed history is the uninterrupted one, no line twice: {[e['tag'] for e in resumed]}"
    assert [e["metrics"] for e in resumed] == [e["metrics"] for e in reference], "same metrics (exact resume)"


def test_a_fresh_run_starts_a_new_history(canonical_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"tag": "epoch_7", "update": 1, "epoch": 7, "metrics": {}}\n')
    assert run_main(train.main, run_args(canonical_dir, tiny_model_dir, out, "--pruner", "none", "--epochs", "1",
                                         "--overwrite_output_dir")) == 0
    assert [e["tag"] for e in history(out)] == ["epoch_0"], "an older run's lines are not part of this history"


def test_history_lines_are_flushed_as_they_are_written(dense_run, tmp_path, monkeypatch):
    """Each line is fsynced: the history survives a crash of the process right after an evaluation."""
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    from types import SimpleNamespace
    from training import outputs

    run = SimpleNamespace(args=SimpleNamespace(output_dir=str(tmp_path), resume=False, model_ckpt=None),
                          started_files=set())
    state = SimpleNamespace()
    outputs.append_history(run, state, {"tag": "epoch_0", "update": 3, "epoch": 0, "metrics": {}})
    outputs.append_history(run, state, {"tag": "epoch_1", "update": 6, "epoch": 1, "metrics": {}})
    assert len(synced) == 2, f"one fsync per line: {synced}"
    assert [e["tag"] for e in history(tmp_path)] == ["epoch_0", "epoch_1"], "appended in order"


# ---------------------------------------------------------------- score files

def test_score_file_names_sort_in_evaluation_order(dense_run):
    assert inference.sortable_tag("epoch_2") == "epoch_002" and inference.sortable_tag("epoch_10") == "epoch_010", \
        "epochs are zero-padded"
    assert inference.sortable_tag("updates_50") == "updates_000050", "updates are zero-padded"
    assert inference.sortable_tag("final") == "final", "other tags are unchanged"
    names = sorted(n for n in os.listdir(dense_run) if n.startswith("rte_dev_scores_updates_0"))
    numbers = [int(re.search(r"_(\d+)\.json$", n).group(1)) for n in names]
    assert numbers == sorted(numbers) and len(numbers) >= 2, f"sorted names are in update order: {names}"
    for entry in history(dense_run):
        padded = dense_run / inference.score_file_name("rte", "dev", entry["tag"])
        unpadded = dense_run / f"rte_dev_scores_{entry['tag']}.json"
        assert padded.exists(), f"{padded.name} is written"
        assert padded == unpadded or not unpadded.exists(), f"{unpadded.name}: no second, unpadded name"


def test_sortable_names_for_ten_epochs(tmp_path):
    tags = [f"epoch_{i}" for i in range(12)] + [f"updates_{i}" for i in (5, 50, 500, 5000)]
    names = [inference.score_file_name("rte", "dev", tag) for tag in tags]
    assert sorted(names[:12]) == names[:12] and sorted(names[12:]) == names[12:], f"sort order: {sorted(names)}"


def test_rewriting_scores_replaces_the_file_whole(tmp_path):
    from data_utils.task_def import load_task_defs
    from data_utils.batcher import TaskDataset

    dataset = TaskDataset("rte_dev", load_task_defs()["rte"], "rte_dev.json", [])
    inference.write_scores(str(tmp_path), dataset, "dev", "epoch_1", {"metrics": {"ACC": 1}})
    inference.write_scores(str(tmp_path), dataset, "dev", "epoch_1", {"metrics": {"ACC": 2}})
    assert json.load(open(tmp_path / "rte_dev_scores_epoch_001.json")) == {"metrics": {"ACC": 2}}, \
        "the file holds the newest scores"
    assert sorted(os.listdir(tmp_path)) == ["rte_dev_scores_epoch_001.json"], "no temporary file is left"


# ---------------------------------------------------------------- TensorBoard

def test_sparsity_scalars_at_every_evaluation_and_at_the_end(platon_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(platon_run / "tensorboard_logdir"))
    events.Reload()
    steps = {e.step for e in events.Scalars("Sparsity/overall")}
    evaluations = {e["update"] for e in history(platon_run)}
    total = json.load(open(platon_run / "config.json"))["total_steps"]
    assert evaluations <= steps, f"Sparsity/overall at every evaluation {sorted(evaluations)}: {sorted(steps)}"
    assert total in steps, f"and at the last update {total}: {sorted(steps)}"
    assert not steps - evaluations - {total}, \
        f"--log_per_updates 1000 adds none, so these come from evaluations: {sorted(steps)}"
    final = [e.value for e in events.Scalars("Sparsity/overall") if e.step == total][-1]
    report = json.load(open(platon_run / "sparsity_report.json"))
    assert final == pytest.approx(1 - report["overall"]["remaining_ratio"], abs=1e-6), \
        f"the last Sparsity/overall is the final report's: {final}"
    layer_tags = [t for t in events.Tags()["scalars"] if t.startswith("Sparsity/per_layer/")]
    assert layer_tags and all({e.step for e in events.Scalars(t)} >= evaluations for t in layer_tags), \
        f"per-layer sparsity at every evaluation too: {layer_tags}"


# ---------------------------------------------------------------- scripts/compare_runs.py

def exported_matrix_share(run_dir):
    """The encoder layers' attention/FFN matrices of model_pruned/ over those of model/, counted from the files."""
    pattern = re.compile(r"layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|"
                         r"intermediate\.dense|output\.dense)\.(weight|bias)$")

    def count(path):
        with safe_open(path, "np") as handle:
            total = 0
            for key in handle.keys():
                if pattern.search(key):
                    shape = handle.get_slice(key).get_shape()
                    size = 1
                    for d in shape:
                        size *= d
                    total += size
            return total
    return count(run_dir / "model_pruned" / "model.safetensors") / count(run_dir / "model" / "model.safetensors")


def test_compare_runs_for_every_method(dense_run, platon_run, gpp_run, capsys):
    code = compare_runs.main([str(dense_run), str(platon_run), str(gpp_run)])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", f"three complete runs: {code} {err!r}"
    rows = {line.split(" | ")[0].strip(): [c.strip() for c in line.split(" | ")] for line in out.splitlines()[2:]}
    assert rows[dense_run.name][1] == "100.0 %", f"dense keeps everything: {rows[dense_run.name]}"
    platon = json.load(open(platon_run / "sparsity_report.json"))["overall"]["remaining_ratio"]
    assert rows[platon_run.name][1] == f"{100 * platon:.1f} %", f"PLATON from its report: {rows[platon_run.name]}"
    share = exported_matrix_share(gpp_run)
    assert 0.3 < share < 0.7, f"GPP at 0.5 target sparsity keeps about half of the matrices: {share}"
    assert rows[gpp_run.name][1] == f"{100 * share:.1f} %", \
        f"GPP: the structured share ({100 * share:.1f} % counted in model_pruned/), not 100 %: {rows[gpp_run.name]}"
    header = out.splitlines()[0]
    assert "rte ACC" in header and "stsb Pearson" in header, f"metric columns: {header}"
    metrics = json.load(open(gpp_run / "dev_metrics.json"))
    assert rows[gpp_run.name][2] == f"{metrics['rte']['ACC']:.2f}", "the final dev metrics"


def test_compare_runs_gpp_from_indicators_alone(gpp_run, tmp_path, capsys):
    copy = tmp_path / "gpp_indicators_only"
    shutil.copytree(gpp_run / "model", copy / "model")
    for name in ("dev_metrics.json", "config.json"):
        shutil.copy(gpp_run / name, copy)
    assert compare_runs.main([str(copy)]) == 0, "a GPP run without its export still reads"
    row = capsys.readouterr().out.splitlines()[2]
    assert f"{100 * exported_matrix_share(gpp_run):.1f} %" in row, f"the indicators give the same share: {row}"


def test_compare_runs_reports_missing_and_unfinished_runs(dense_run, tmp_path, capsys):
    running = tmp_path / "running"
    running.mkdir()
    (running / "config.json").write_text(json.dumps({"pruner": "platon"}))
    unreported = tmp_path / "unreported"
    unreported.mkdir()
    (unreported / "config.json").write_text(json.dumps({"pruner": "platon"}))
    shutil.copy(dense_run / "dev_metrics.json", unreported)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dev_metrics.json").write_text("{not json")
    code = compare_runs.main([str(dense_run), str(tmp_path / "nothing"), str(running), str(unreported), str(broken)])
    out, err = capsys.readouterr()
    assert code == 2, f"exit 2 when a run cannot be read: {code}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and err.startswith("error: 4 of 5 runs"), \
        f"one error line: {err!r}"
    rows = {line.split(" | ")[0].strip(): line for line in out.splitlines()[2:]}
    assert "100.0 %" in rows[dense_run.name], "the complete run keeps its row"
    assert "(missing: no such directory)" in rows["nothing"], rows
    assert "(incomplete: no dev_metrics.json" in rows["running"], rows
    assert "(incomplete: a --pruner platon run without sparsity_report.json)" in rows["unreported"], rows
    assert "(unreadable dev_metrics.json (JSONDecodeError))" in rows["broken"], rows


def test_compare_runs_without_arguments(capsys):
    assert compare_runs.main([]) == 2, "no run directories is a usage error"
    err = capsys.readouterr().err
    assert err.startswith("error: give at least one run directory") and len(err.strip().splitlines()) == 1, err
