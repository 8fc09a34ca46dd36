"""A run owns its --output_dir (training/run_dir.py): the lock, run.json, refusing another run's outputs
and the run's own inputs, --overwrite_output_dir, rotation of this run's checkpoints only, nothing left
behind by a run that failed early, errors in the log, and SIGTERM/SIGINT with an exact resume."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import train
from mt_dnn import export
from training.checkpoint import checkpoint_run_id
from tests.conftest import ROOT, run_main


@pytest.fixture(scope="module")
def args_for(canonical_dir, tiny_model_dir):
    def make(output_dir, *extra, data=canonical_dir):
        return ["--data_dir", str(data), "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte",
                "--test_datasets", "rte", "--pruner", "none", "--epochs", "1", "--batch_size", "8",
                "--batch_size_eval", "16", "--max_seq_len", "64", "--learning_rate", "1e-3", "--log_per_updates", "0",
                "--seed", "5", "--output_dir", str(output_dir), *[str(e) for e in extra]]
    return make


def refused(argv, capsys, *needles, main=train.main) -> str:
    code = run_main(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, f"{argv}: exit 2 expected, got {code}: {err[-600:]}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, f"one line, no traceback: {err!r}"
    for needle in needles:
        assert needle in err, f"the message should contain {needle!r}: {err!r}"
    return err.strip()


def snapshot(directory) -> dict:
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in files + [d + "/" for d in dirs]:
            path = os.path.join(root, name.rstrip("/"))
            found[os.path.relpath(path, directory)] = b"" if name.endswith("/") else open(path, "rb").read()
    return found


def run_id(output_dir) -> str:
    return json.load(open(os.path.join(output_dir, "run.json")))["run_id"]


@pytest.fixture(scope="module")
def finished(args_for, tmp_path_factory):
    """A finished run with checkpoints every 2 updates (all kept)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert run_main(train.main, args_for(out, "--save_per_updates", "2", "--keep_checkpoints", "0")) == 0, \
        "the reference run should succeed"
    return out


def test_a_run_marks_its_directory_and_releases_the_lock(finished):
    record = json.load(open(finished / "run.json"))
    assert record["run_id"] and record["command"][-2:] == ["--keep_checkpoints", "0"], f"run.json: {record}"
    assert json.load(open(finished / "config.json"))["run_id"] == record["run_id"], "config.json names the run"
    for name in ("checkpoint-2", "checkpoint-4"):
        assert checkpoint_run_id(str(finished / name)) == record["run_id"], f"{name} records the run id"
    assert not (finished / ".lock").exists(), "the lock is released at exit"
    assert f"run {record['run_id']} owns {finished}" in (finished / "log.log").read_text(), "the log names the run"


def test_a_second_run_is_refused_while_the_lock_is_held(args_for, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, json, os, socket, sys, time\n"
        f"fd = os.open({str(out / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'started': 'now'}).encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked", "the holder took the lock"
        before = snapshot(out)
        refused(args_for(out), capsys, f"--output_dir {out} is in use by another run (pid {holder.pid} on",
                "wait for it to end or choose another --output_dir")
        assert snapshot(out) == before, "a refused run changes nothing, not even the lock file"
    finally:
        holder.kill()
        holder.wait()
    # The holder died without removing its lock file: the next run takes it over and says so.
    assert run_main(train.main, args_for(out)) == 0, "a lock left by a dead process is taken over"
    log = (out / "log.log").read_text()
    assert f"took over the stale lock {out / '.lock'} of pid {holder.pid}" in log and "is no longer running" in log, \
        f"the take-over is logged: {log[:600]}"
    assert not (out / ".lock").exists(), "and released at exit"


def test_another_runs_outputs_are_refused_then_moved_aside(finished, args_for, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before, first = snapshot(out), run_id(out)
    refused(args_for(out), capsys, f"--output_dir {out} holds another run's outputs (run {first} started",
            "checkpoint-2/", "pass --overwrite_output_dir to move them aside", "--resume to continue that run")
    assert snapshot(out) == before, "a refused run leaves the other run's files as they were"

    assert run_main(train.main, args_for(out, "--overwrite_output_dir")) == 0, "--overwrite_output_dir starts afresh"
    previous = [p for p in out.iterdir() if p.name.startswith("previous-")]
    assert len(previous) == 1, f"the old files went to one previous-<time>/: {sorted(os.listdir(out))}"
    moved = snapshot(previous[0])
    assert all(moved[name] == data for name, data in before.items()), "every old file was moved intact"
    assert run_id(out) != first and run_id(previous[0]) == first, "the new run has its own id"
    assert not [p for p in out.iterdir() if p.name.startswith("checkpoint-")], "no old checkpoint is left in place"
    log = (out / "log.log").read_text()
    assert f"--overwrite_output_dir: moved the {len(os.listdir(previous[0]))} files and directories of run {first}" \
           in log and "(nothing was deleted)" in log, f"the log says what was moved: {log[:800]}"


def test_resume_keeps_the_run_id_and_rotation_spares_other_runs(finished, args_for, tmp_path, capsys):
    other = tmp_path / "other"
    assert run_main(train.main, args_for(other, "--save_per_updates", "1", "--seed", "6")) == 0, "another run"
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    first = run_id(out)
    for path in out.iterdir():
        if path.name.startswith("checkpoint-") and int(path.name.split("-")[1]) > 2:
            shutil.rmtree(path)
    shutil.rmtree(out / "model")
    shutil.copytree(other / "checkpoint-7", out / "checkpoint-1")    # another run's checkpoint
    assert run_main(train.main, args_for(out, "--resume", "--save_per_updates", "2", "--keep_checkpoints", "1")) == 0
    assert run_id(out) == first and json.load(open(out / "config.json"))["run_id"] == first, \
        "a resumed run keeps its run id"
    kept = sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint-"))
    assert kept == ["checkpoint-1", "checkpoint-6"], f"rotation deleted only this run's older checkpoints: {kept}"
    assert checkpoint_run_id(str(out / "checkpoint-1")) == run_id(other), "the other run's checkpoint is intact"
    assert checkpoint_run_id(str(out / "checkpoint-6")) == first, "the new checkpoint has the resumed run's id"

    # --model_ckpt of one run into the directory of another is refused, naming both.
    before = snapshot(other)
    refused(args_for(other, "--model_ckpt", out / "checkpoint-6"), capsys,
            f"--output_dir {other} holds the outputs of another run (run {run_id(other)}",
            f"than the run {first} that --model_ckpt {out / 'checkpoint-6'} continues")
    assert snapshot(other) == before, "the refused run changed nothing"


def test_inputs_are_never_written_to(args_for, canonical_dir, tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(canonical_dir, data)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    gpp = ["--pruner", "gpp", "--prepruning_finetune_epochs", "0", "--prune_epochs", "1", "--do_distill"]
    cases = [(data, ["--data_dir", data], f"is the input --data_dir {data} itself"),
             (data / "run", ["--data_dir", data], f"is inside the input --data_dir {data}"),
             (model / "out", ["--init_checkpoint", model], f"is inside the input --init_checkpoint {model}"),
             (model / "t", [*gpp, "--teacher_model_path", model], f"is inside the input --teacher_model_path {model}")]
    before = {"data": snapshot(data), "model": snapshot(model)}
    for out, extra, needle in cases:
        refused(args_for(out, *extra), capsys, f"--output_dir {out} {needle}",
                "nothing named as an input is ever written to")
        assert {"data": snapshot(data), "model": snapshot(model)} == before, f"{needle}: the input was touched"


@pytest.mark.parametrize("where", ["equal", "inside", "containing"])
def test_export_never_writes_into_its_checkpoint(gpp_model_dir, tmp_path, capsys, where):
    checkpoint = tmp_path / "run" / "model"
    shutil.copytree(gpp_model_dir, checkpoint)
    out = {"equal": checkpoint, "inside": checkpoint / "pruned", "containing": tmp_path / "run"}[where]
    before = snapshot(tmp_path)
    refused(["--checkpoint", checkpoint, "--output_dir", out], capsys,
            f"--output_dir {out} " + {"equal": "is the input", "inside": "is inside the input",
                                      "containing": "contains the input"}[where],
            f"--checkpoint {checkpoint}", main=export.main)
    assert snapshot(tmp_path) == before, "nothing was written"


def test_a_run_failing_before_any_output_leaves_nothing(args_for, tmp_path, capsys):
    fresh = tmp_path / "new" / "run"
    refused(args_for(fresh, data=tmp_path / "nothing"), capsys, "rte_train.json: file not found")
    assert not (tmp_path / "new").exists(), "a directory the failed run created is removed"

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine\n")
    line = refused(args_for(existing, data=tmp_path / "nothing"), capsys, "rte_train.json: file not found")
    assert sorted(os.listdir(existing)) == ["log.log", "notes.txt"], \
        f"only the log is added to a directory that existed: {sorted(os.listdir(existing))}"
    assert (existing / "notes.txt").read_text() == "mine\n", "the user's file is intact"
    assert line in (existing / "log.log").read_text(), "the error is in the run's log too"
    assert run_main(train.main, args_for(existing)) == 0, "the directory is still free for a run"


def test_a_failed_overwrite_brings_the_moved_files_back(finished, args_for, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = snapshot(out)
    refused(args_for(out, "--overwrite_output_dir", data=tmp_path / "nothing"), capsys, "file not found")
    assert snapshot(out) == before, "a run that failed before writing anything puts the old run's files back"


def test_tensorboard_purges_events_after_the_resumed_update(tmp_path):
    from argparse import Namespace

    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from data_utils.distributed import DistInfo
    from training.startup import open_tensorboard

    args = Namespace(tensorboard=True, tensorboard_logdir="tb", output_dir=str(tmp_path))
    writer = open_tensorboard(args, DistInfo(), {"loop": {"global_step": 4}})
    writer.add_scalar("train/loss", 1.0, 5)
    writer.close()
    files = [os.path.join(root, f) for root, _, names in os.walk(tmp_path / "tb") for f in names]
    events = [e for path in files for e in EventFileLoader(path).Load()]
    starts = [e.step for e in events if e.HasField("session_log") and e.session_log.status == 1]
    assert starts == [5], f"the writer purges from update 5 on (resumed at 4): {starts}"


# ---------------------------------------------------------------- signals (real processes)

def command(canonical_dir, tiny_model_dir, output_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--data_dir", canonical_dir,
            "--init_checkpoint", tiny_model_dir, "--train_datasets", "rte,stsb", "--test_datasets", "rte",
            "--epochs", "3", "--batch_size", "8", "--max_seq_len", "64", "--learning_rate", "1e-3",
            "--log_per_updates", "0", "--seed", "11", "--output_dir", str(output_dir), "--pruner", "platon",
            "--initial_threshold", "1", "--final_threshold", "0.3", "--warmup_steps", "4", "--initial_warmup", "1",
            "--final_warmup", "1", "--deltaT", "2", *extra]


def start_and_signal(cmd, ready, sig):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 600
    while not ready() and process.poll() is None:
        assert time.time() < deadline, "the run never got ready to be signalled"
        time.sleep(0.01)
    process.send_signal(sig)
    _, err = process.communicate(timeout=600)
    return process.returncode, err


def test_sigterm_checkpoints_and_resume_matches_the_uninterrupted_run(canonical_dir, tiny_model_dir, tmp_path):
    straight = tmp_path / "straight"
    result = subprocess.run(command(canonical_dir, tiny_model_dir, straight), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"uninterrupted run failed: {result.stderr[-800:]}"

    out = tmp_path / "stopped"
    code, err = start_and_signal(command(canonical_dir, tiny_model_dir, out, "--save_per_updates", "3",
                                         "--tensorboard"),
                                 lambda: (out / "checkpoint-3" / "state.json").exists(), signal.SIGTERM)
    assert code == 143, f"SIGTERM exits 143: {code} {err[-800:]}"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, f"one line on stderr: {err!r}"
    assert err.startswith("error: stopped by SIGTERM after update "), f"says what happened: {err!r}"
    step = int(err.split("after update ")[1].split()[0])
    assert f"checkpoint {out / f'checkpoint-{step}'} holds it: continue with --resume" in err, err
    assert (out / f"checkpoint-{step}" / "state.json").exists(), f"the update it stopped at is checkpointed: {step}"
    assert f"stopped by SIGTERM after update {step}" in (out / "log.log").read_text(), "and logged"
    assert not (out / ".lock").exists() and not (out / "model").exists(), "lock released, no final model"

    result = subprocess.run(command(canonical_dir, tiny_model_dir, out, "--resume", "--tensorboard"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"resume after SIGTERM failed: {result.stderr[-800:]}"
    assert json.load(open(straight / "rte_dev_scores_epoch_002.json")) == \
        json.load(open(out / "rte_dev_scores_epoch_002.json")), "final dev scores equal the uninterrupted run's"
    expected, got = load_file(straight / "model" / "model.safetensors"), load_file(out / "model" / "model.safetensors")
    assert all(torch.equal(expected[k], got[k]) for k in expected), "and so do the final weights"


def test_sigint_without_checkpoints_exits_130_and_leaves_nothing(canonical_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    started = lambda: (out / "log.log").exists() and "effective batch" in (out / "log.log").read_text()  # noqa: E731
    code, err = start_and_signal(command(canonical_dir, tiny_model_dir, out), started, signal.SIGINT)
    assert code == 130, f"SIGINT exits 130: {code} {err[-800:]}"
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: stopped by SIGINT"), f"one line: {err!r}"
    assert "no checkpoint was written" in err, f"says nothing can be resumed: {err!r}"
    assert not out.exists(), f"a run stopped before writing any output leaves no directory: {os.listdir(out)}"


def test_placement_of_directories(tmp_path):
    from data_utils.files import placement

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert placement(str(tmp_path / "a"), str(tmp_path / "link")) == "same", "real paths: a link is its target"
    assert placement(str(tmp_path / "a" / "b"), str(tmp_path / "a")) == "inside", "below"
    assert placement(str(tmp_path / "a"), str(tmp_path / "a" / "b")) == "contains", "above"
    assert placement(str(tmp_path / "a"), str(tmp_path / "c")) is None, "apart"
    assert placement(str(tmp_path / "ab"), str(tmp_path / "a")) is None, "a shared name prefix is not containment"


def test_resume_finds_a_data_folder_that_moved(args_for, canonical_dir, tmp_path, capsys):
    """Every checkpoint records --data_dir; after the folder moved, the checkpoint's path won and the advice
    (check --data_dir, or resume from an earlier checkpoint) could not help."""
    data = tmp_path / "data"
    shutil.copytree(canonical_dir, data)
    out = tmp_path / "run"
    assert run_main(train.main, args_for(out, "--save_per_updates", "2", "--keep_checkpoints", "0", data=data)) == 0
    for path in out.iterdir():
        if path.name.startswith("checkpoint-") and int(path.name.split("-")[1]) > 2:
            shutil.rmtree(path)
    shutil.rmtree(out / "model")
    moved = tmp_path / "moved"
    data.rename(moved)
    refused(args_for(out, "--resume", data=data), capsys, f"{data}")        # nothing there any more
    assert run_main(train.main, args_for(out, "--resume", data=moved)) == 0, capsys.readouterr().err
    log = (out / "log.log").read_text()
    assert f"--data_dir: the checkpoint's '{data}' no longer exists; the command line's '{moved}' is used" in log, \
        "the log says which data folder the resumed run read"
    assert (out / "model").is_dir(), "the resumed run finished and saved its model"


@pytest.mark.parametrize("finished, status, line", [
    (True, 0, "warning: received SIGTERM after the run finished; every output is written"),
    (False, 143, "error: stopped by SIGTERM")])
def test_a_signal_outside_the_run_ends_the_process_with_one_line(finished, status, line):
    """A SIGTERM while a finished run's interpreter shut down ended it with 143 and no word (a scheduler
    counted the finished run as killed): train.py's command line now says so and exits 0."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    code = ("import os, signal, sys, time; sys.path.insert(0, '.')\n"
            "from training.run_dir import guard_process_exit\n"
            f"finished = guard_process_exit()\n{'finished()' if finished else ''}\n"
            "os.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(30)\nsys.exit(7)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == status, f"exit {result.returncode}, want {status}: {result.stderr!r}"
    assert result.stderr.strip() == line, f"one line on stderr: {result.stderr!r}"
