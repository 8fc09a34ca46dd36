"""GPP-DFD's front end (run_GDbert_glue.py): transformers' saving, resuming and reporting flags, a teacher
run's output directory, the canonical folder it shares with prepro, and an exact resume through it."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import prepro
import run_GDbert_glue
import train
from tests.conftest import ROOT, kill_after_checkpoint, run_main

BASE = ["--task_name", "rte", "--do_train", "--do_eval", "--output_dir", "o"]


def mapped(capsys, *extra):
    """The train.py flags --print_train_args prints for BASE + extra."""
    assert run_main(run_GDbert_glue.main, [*BASE, *extra, "--print_train_args"]) == 0, f"{extra}: mapping failed"
    argv = capsys.readouterr().out.split()
    assert train.build_parser().parse_args(argv).pruner == "gpp", f"{extra}: train.py accepts every mapped flag"
    return argv


def value(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_saving_and_reporting_flags_map_onto_train_flags(capsys):
    argv = mapped(capsys, "--save_steps", "7", "--save_total_limit", "3", "--report_to", "tensorboard",
                  "--overwrite_output_dir")
    assert value(argv, "--save_per_updates") == "7", f"--save_steps -> --save_per_updates: {argv}"
    assert value(argv, "--keep_checkpoints") == "3", f"--save_total_limit -> --keep_checkpoints: {argv}"
    assert "--tensorboard" in argv, f"--report_to tensorboard -> --tensorboard: {argv}"
    assert "--overwrite_output_dir" in argv, f"--overwrite_output_dir is passed on: {argv}"
    plain = mapped(capsys)
    for flag in ("--save_per_updates", "--keep_checkpoints", "--tensorboard", "--overwrite_output_dir", "--resume",
                 "--model_ckpt"):
        assert flag not in plain, f"{flag} only when asked for: {plain}"
    assert "--tensorboard" not in mapped(capsys, "--report_to", "none"), "--report_to none: no TensorBoard"
    assert "--tensorboard" in mapped(capsys, "--report_to", "all"), "--report_to all: TensorBoard, the one we have"


def test_resume_from_checkpoint_maps_to_resume_or_model_ckpt(capsys, tmp_path):
    assert "--resume" in mapped(capsys, "--resume_from_checkpoint"), "bare: the newest checkpoint (--resume)"
    assert "--resume" in mapped(capsys, "--resume_from_checkpoint", "True"), "True: --resume"
    assert "--resume" in mapped(capsys, "--resume_from_checkpoint", "--seed", "3"), "bare before another flag"
    off = mapped(capsys, "--resume_from_checkpoint", "False")
    assert "--resume" not in off and "--model_ckpt" not in off, f"False: no resume: {off}"
    checkpoint = tmp_path / "checkpoint-12"
    checkpoint.mkdir()
    argv = mapped(capsys, "--resume_from_checkpoint", str(checkpoint))
    assert value(argv, "--model_ckpt") == str(checkpoint) and "--resume" not in argv, f"a path: --model_ckpt: {argv}"
    both = mapped(capsys, "--resume_from_checkpoint", "--overwrite_output_dir")
    assert "--resume" in both and "--overwrite_output_dir" not in both, \
        f"resuming never passes --overwrite_output_dir, which would move the checkpoints aside: {both}"


@pytest.mark.parametrize("extra,needle", [
    (["--resume_from_checkpoint", "nowhere/checkpoint-3"], "--resume_from_checkpoint nowhere/checkpoint-3: no such"),
    (["--report_to", "wandb"], "--report_to wandb: not available here; use tensorboard or none"),
    (["--report_to", "tensorboard", "none"], "'none' cannot go with another"),
    (["--save_steps", "x"], "--save_steps: invalid int value"),
])
def test_bad_new_flags_are_one_line_errors(capsys, extra, needle):
    assert run_main(run_GDbert_glue.main, [*BASE, *extra, "--print_train_args"]) == 2, f"{extra}: exit 2"
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err, f"{extra}: one line naming it: {err!r}"


def test_teacher_run_directory_stands_for_its_model(capsys, tmp_path):
    run = tmp_path / "teacher_run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "model" / "model.safetensors").write_bytes(b"")
    (run / "config.json").write_text('{"run_id": "x"}')     # train.py writes its settings there (no weights)
    argv = mapped(capsys, "--do_distill", "--teacher_model_path", str(run))
    assert value(argv, "--teacher_model_path") == str(run / "model"), f"DIR -> DIR/model: {argv}"
    # mapped() consumed the output; run again to see the note
    run_main(run_GDbert_glue.main, [*BASE, "--do_distill", "--teacher_model_path", str(run), "--print_train_args"])
    assert f"using its model {run / 'model'}" in capsys.readouterr().err, "the substitution is logged"
    argv = mapped(capsys, "--do_distill", "--teacher_model_path", str(run / "model"))
    assert value(argv, "--teacher_model_path") == str(run / "model"), f"a model directory is kept: {argv}"


def test_local_models_get_their_own_canonical_folder_shared_with_prepro(capsys, tmp_path, tiny_model_dir):
    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    shutil.copytree(tiny_model_dir, first)
    shutil.copytree(tiny_model_dir, second)
    folders = []
    for model in (first, second):
        data = value(mapped(capsys, "--model_name_or_path", str(model), "--data_dir", "glue"), "--data_dir")
        assert run_main(prepro.main, ["--print_output_dir", "--data_dir", "glue", "--model", str(model)]) == 0
        assert capsys.readouterr().out.strip() == data, f"prepro and the front end name {model}'s folder alike"
        assert os.path.basename(data).startswith("model-"), f"a local model's folder keeps its base name: {data}"
        folders.append(data)
    assert folders[0] != folders[1], f"two local models called model/ must not share a folder: {folders}"
    hub = value(mapped(capsys, "--model_name_or_path", "bert-base-uncased"), "--data_dir")
    assert hub == os.path.join("data", "canonical_data", "bert-base-uncased"), f"hub ids keep today's name: {hub}"
    script = open(os.path.join(ROOT, "scripts", "gpp_dfd", "run.sh")).read()
    assert "prepro.py --print_output_dir" in script and '--tasks "$TASK"' in script, \
        "run.sh asks prepro for the folder and preprocesses only its task"


def test_max_seq_length_change_redoes_the_data(sample_glue, tmp_path, tiny_model_dir, capsys):
    glue = tmp_path / "glue"
    shutil.copytree(os.path.join(sample_glue, "RTE"), glue / "RTE")
    lengths = {}
    for max_len in (16, 16, 40):
        args = run_GDbert_glue.build_parser().parse_args(
            [*BASE, "--data_dir", str(glue), "--model_name_or_path", tiny_model_dir, "--max_seq_length", str(max_len)])
        train_argv = run_GDbert_glue.to_train_args(args)
        run_GDbert_glue.ensure_canonical(args, train_argv)
        data = value(train_argv, "--data_dir")
        rows = [json.loads(line) for line in open(os.path.join(data, "rte_train.json"))]
        lengths[max_len] = max(len(r["token_id"]) for r in rows)
        out = capsys.readouterr().out
    assert "rte_train: current" not in out and "redone: made with max_seq_len 16" in out, \
        f"a new --max_seq_length redoes the data: {out}"
    assert lengths[16] <= 16 < lengths[40] <= 40, f"rows follow the asked length: {lengths}"


def front_end(glue, model, out, *extra):
    return [sys.executable, os.path.join(ROOT, "run_GDbert_glue.py"), "--model_name_or_path", model,
            "--task_name", "rte", "--data_dir", str(glue), "--output_dir", str(out), "--do_train", "--do_eval",
            "--target_sparsity", "0.5", "--prepruning_finetune_epochs", "1", "--prune_epochs", "1",
            "--num_train_epochs", "3", "--max_seq_length", "64", "--per_device_train_batch_size", "8",
            "--learning_rate", "1e-3", "--retrain_learning_rate", "5e-4", "--logging_steps", "0", "--seed", "11",
            *extra]


def test_killed_gpp_run_resumes_through_the_front_end_to_the_same_scores(sample_glue, tiny_model_dir, tmp_path):
    glue = tmp_path / "glue"
    shutil.copytree(os.path.join(sample_glue, "RTE"), glue / "RTE")
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    straight = tmp_path / "straight"
    result = subprocess.run(front_end(glue, tiny_model_dir, straight), capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, f"straight run failed: {result.stderr[-800:]}"
    total = json.load(open(straight / "config.json"))["total_steps"]
    assert total >= 6, f"the run is long enough to be cut: {total} updates"

    killed = tmp_path / "killed"
    kill_at = total // 2
    kill_after_checkpoint(front_end(glue, tiny_model_dir, killed, "--save_steps", "1", "--save_total_limit", "0"),
                          killed, kill_at, env=env, what="front end")

    result = subprocess.run(front_end(glue, tiny_model_dir, killed, "--save_steps", "1", "--save_total_limit", "0",
                                      "--resume_from_checkpoint", str(killed / f"checkpoint-{kill_at}")),
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"resume through the front end failed: {result.stderr[-800:]}"
    assert "resumed from" in open(killed / "log.log").read(), "the log records the resume"
    straight_scores = json.load(open(straight / "rte_dev_scores_epoch_002.json"))
    resumed_scores = json.load(open(killed / "rte_dev_scores_epoch_002.json"))
    assert straight_scores == resumed_scores, "final dev scores of the resumed run differ from the straight run's"
    expected = load_file(os.path.join(straight, "model", "model.safetensors"))
    got = load_file(os.path.join(killed, "model", "model.safetensors"))
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected), \
        "the resumed run's final weights differ from the straight run's"
