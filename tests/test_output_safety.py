"""Writers never lose or overwrite what they did not make (data_utils.files.write_directory and the
"inputs are never written to" check), for train.py, mt_dnn.export and mt_dnn.compress:

- a directory is written whole through a uniquely named temporary sibling: a user's `D.tmp` or `D.old`
  is never touched, even when it is the command's input;
- an existing non-empty --output_dir is refused unless --overwrite_output_dir, which keeps its contents
  in previous-<time>/ (train.py: a Hugging Face model directory counts as foreign);
- no written path (output, --log_file, --tensorboard_logdir) is or lies inside an input;
- a full disk during a save (patched writes raising ENOSPC, the tokenizers library's plain Exception,
  and a real tmpfs in a private mount namespace where root allows it) leaves the previous output intact
  and no temporary directory behind.
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import train
from data_utils.files import clean_stale_scratch, write_directory
from mt_dnn import compress, export
from tests.conftest import ROOT
from tests.conftest import run_main as run_main_raw
from tests.test_errors import fail, snapshot

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def run_main(main, argv) -> int:
    return run_main_raw(main, [str(a) for a in argv])


def train_args(canonical_dir, model_dir, output_dir, *extra):
    return ["--data_dir", canonical_dir, "--init_checkpoint", model_dir, "--train_datasets", "rte",
            "--test_datasets", "rte", "--pruner", "none", "--epochs", "1", "--batch_size", "8",
            "--batch_size_eval", "16", "--max_seq_len", "64", "--learning_rate", "1e-3", "--log_per_updates", "0",
            "--seed", "5", "--output_dir", str(output_dir), *[str(e) for e in extra]]


def hidden_entries(directory) -> list:
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def user_dir(path, text="mine\n"):
    path.mkdir(parents=True)
    (path / "notes.txt").write_text(text)
    return path


# ---- fixed sibling names (.tmp/.old) are never a writer's scratch space

def test_export_and_compress_leave_a_users_tmp_and_old_siblings_alone(gpp_model_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    siblings = [user_dir(tmp_path / "exported.tmp"), user_dir(tmp_path / "exported.old"),
                user_dir(tmp_path / "served.tmp"), user_dir(tmp_path / "served.old")]
    before = {str(p): snapshot(p) for p in siblings}
    succeed = run_main(export.main, ["--checkpoint", gpp_model_dir, "--output_dir", out])
    assert succeed == 0, f"export failed: {capsys.readouterr().err}"
    code = run_main(compress.main, ["--model", gpp_model_dir, "--output_dir", tmp_path / "served"])
    assert code == 0, f"compress failed: {capsys.readouterr().err}"
    assert {str(p): snapshot(p) for p in siblings} == before, "a user's D.tmp / D.old directory was touched"
    assert hidden_entries(tmp_path) == [], f"temporary directories left behind: {hidden_entries(tmp_path)}"


def test_export_reads_a_checkpoint_named_like_the_old_scratch_name(gpp_model_dir, tmp_path, capsys):
    source = tmp_path / "model.old"
    shutil.copytree(gpp_model_dir, source)
    before = snapshot(source)
    code = run_main(export.main, ["--checkpoint", source, "--output_dir", tmp_path / "model"])
    assert code == 0, f"export from D.old into D failed: {capsys.readouterr().err}"
    assert snapshot(source) == before, "--checkpoint D.old (the input) was modified or deleted"
    assert os.path.isfile(tmp_path / "model" / "structured_export.json"), "the export was not written"


# ---- existing output directories: refused unless asked, then kept aside

@pytest.mark.parametrize("command", ["export", "compress"])
def test_foreign_output_dir_is_refused_then_moved_aside(gpp_model_dir, tmp_path, capsys, command):
    out = user_dir(tmp_path / "mine")
    before = snapshot(out)
    main, source_flag = (export.main, "--checkpoint") if command == "export" else (compress.main, "--model")
    argv = [source_flag, gpp_model_dir, "--output_dir", out]
    fail(main, argv, capsys, f"--output_dir {out} exists and holds notes.txt", "--overwrite_output_dir")
    assert snapshot(out) == before, f"{command}: the refused run changed the directory"
    assert run_main(main, [*argv, "--overwrite_output_dir"]) == 0, f"{command}: {capsys.readouterr().err}"
    kept = [name for name in os.listdir(out) if name.startswith("previous-")]
    assert len(kept) == 1 and snapshot(out / kept[0]) == before, \
        f"{command}: the old contents should be kept whole in previous-<time>/: {sorted(os.listdir(out))}"
    assert os.path.isfile(out / "heads.json"), f"{command}: the new output is missing"


def test_export_int8_sibling_output_is_checked_before_any_work(gpp_model_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    int8 = user_dir(tmp_path / "exported_int8")
    before = snapshot(int8)
    fail(export.main, ["--checkpoint", gpp_model_dir, "--output_dir", out, "--quantize", "int8"], capsys,
         f"--output_dir {out}: its int8 copy {int8} (--quantize int8) exists", "--overwrite_output_dir")
    assert snapshot(int8) == before, "the int8 sibling was changed"
    assert not out.exists(), "the export was written although its int8 sibling was refused"


def test_train_refuses_a_hugging_face_model_directory(canonical_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "hf_model"
    shutil.copytree(tiny_model_dir, out)
    before = snapshot(out)
    fail(train.main, train_args(canonical_dir, tiny_model_dir, out), capsys,
         f"--output_dir {out} holds another run's outputs", "config.json", "--overwrite_output_dir")
    assert snapshot(out) == before, "the model directory was changed by a refused run"
    assert run_main(train.main, train_args(canonical_dir, tiny_model_dir, out, "--overwrite_output_dir")) == 0, \
        capsys.readouterr().err
    kept = [name for name in os.listdir(out) if name.startswith("previous-")]
    assert len(kept) == 1 and snapshot(out / kept[0]) == before, \
        f"the model directory's files should be kept whole in previous-<time>/: {sorted(os.listdir(out))}"


# ---- inputs are never written to

def test_log_file_and_tensorboard_never_write_into_inputs(canonical_dir, tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(canonical_dir, data)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    task_def = tmp_path / "tasks.yml"
    shutil.copy(os.path.join(ROOT, "experiments", "glue", "glue_task_def.yml"), task_def)
    inputs = {"data": snapshot(data), "model": snapshot(model), "task_def": task_def.read_bytes()}
    out = tmp_path / "run"
    cases = [(["--log_file", data / "rte_train.json"], "--log_file", f"is inside the input --data_dir {data}"),
             (["--log_file", model / "config.json"], "--log_file", f"is inside the input --init_checkpoint {model}"),
             (["--log_file", task_def], "--log_file", f"is the input --task_def {task_def} itself"),
             (["--tensorboard", "--tensorboard_logdir", data / "tb"], "--tensorboard_logdir",
              f"is inside the input --data_dir {data}")]
    for extra, flag, needle in cases:
        argv = train_args(data, model, out, "--task_def", task_def, *extra)
        fail(train.main, argv, capsys, flag, needle, "nothing named as an input is ever written to")
        assert {"data": snapshot(data), "model": snapshot(model), "task_def": task_def.read_bytes()} == inputs, \
            f"{extra}: an input was written to"
        assert not out.exists(), f"{extra}: the refused run left its output directory"


# ---- full disks

def _fail_on_call(n, error):
    """A stand-in for a writer that raises `error` from its n-th call on (the calls before go through)."""
    calls = {"count": 0}

    def wrap(real):
        def writer(*args, **kwargs):
            calls["count"] += 1
            if calls["count"] >= n:
                raise error
            return real(*args, **kwargs)
        return writer
    return wrap


@pytest.mark.parametrize("error", [ENOSPC, Exception("No space left on device (os error 28)")],
                         ids=["ENOSPC", "tokenizers-plain-Exception"])
def test_full_disk_during_export_or_compress_keeps_the_previous_output(gpp_model_dir, tmp_path, capsys,
                                                                       monkeypatch, error):
    from transformers import PreTrainedTokenizerBase

    for command, main, source_flag in (("export", export.main, "--checkpoint"),
                                       ("compress", compress.main, "--model")):
        out = tmp_path / command
        argv = [source_flag, gpp_model_dir, "--output_dir", out]
        assert run_main(main, argv) == 0, f"{command}: {capsys.readouterr().err}"
        before = snapshot(out)
        with monkeypatch.context() as patch:
            real = PreTrainedTokenizerBase.save_pretrained
            patch.setattr(PreTrainedTokenizerBase, "save_pretrained", _fail_on_call(1, error)(real))
            line = fail(main, [*argv, "--overwrite_output_dir"], capsys, "could not write", str(out),
                        "No space left on device", "its previous content is intact")
        assert snapshot(out) == before, f"{command}: the previous output changed after a failed save: {line}"
        assert hidden_entries(tmp_path) == [], f"{command}: temporary directory left: {hidden_entries(tmp_path)}"


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(canonical_dir, tiny_model_dir, tmp_path, capsys,
                                                             monkeypatch):
    from training import checkpoint

    out = tmp_path / "run"
    monkeypatch.setattr(checkpoint, "save_file", _fail_on_call(2, ENOSPC)(checkpoint.save_file))
    fail(train.main, train_args(canonical_dir, tiny_model_dir, out, "--save_per_updates", "1"), capsys,
         f"could not write checkpoint {out}/checkpoint-2", "No space left on device",
         f"the previous checkpoint {out}/checkpoint-1 is intact", "--resume")
    names = sorted(os.listdir(out))
    assert "checkpoint-1" in names and "checkpoint-2" not in names, f"checkpoints after the failure: {names}"
    assert sorted(os.listdir(out / "checkpoint-1")) == ["state.json", "state.safetensors"], \
        "checkpoint-1 is not complete"
    assert hidden_entries(out) == [".lock"] or hidden_entries(out) == [], \
        f"temporary directories left behind: {hidden_entries(out)}"


def test_a_killed_saves_scratch_is_tidied_and_a_set_aside_original_put_back(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    user_dir(tmp_path / f".checkpoint-3.{dead}.abcd1234.tmp", "half-written\n")
    user_dir(tmp_path / f".model.{dead}.ef567890.old", "the only copy\n")
    user_dir(tmp_path / f".best_model.{os.getpid()}.aaaa1111.tmp", "a save in progress\n")
    user_dir(tmp_path / "model.old", "a user's own\n")
    user_dir(tmp_path / ".model.tmp", "a user's own\n")
    # an --overwrite_output_dir swap killed between its renames: the user's directory inside the new one
    swap = user_dir(tmp_path / f".compressed.{dead}.bbbb2222.tmp", "the new copy\n")
    user_dir(swap / "previous-20261205-093000", "the user's earlier copy\n")
    # a single file's scratch (write_atomic, e.g. a killed prepro's canonical file): removed; a live one kept
    (tmp_path / f".rte_train.json.{dead}.abcdef12.tmp").write_text("half a file\n")
    (tmp_path / f".rte_dev.json.{os.getpid()}.abcdef12.tmp").write_text("being written\n")
    actions = clean_stale_scratch(str(tmp_path))
    assert len(actions) == 4, f"two removals and two restores expected: {actions}"
    assert not (tmp_path / f".rte_train.json.{dead}.abcdef12.tmp").exists(), "a dead writer's file scratch stays"
    (tmp_path / f".rte_dev.json.{os.getpid()}.abcdef12.tmp").unlink()      # kept (else this fails); out of the listing
    assert (tmp_path / "model" / "notes.txt").read_text() == "the only copy\n", \
        "a set-aside original whose replacement never arrived must be put back"
    assert (tmp_path / "compressed" / "notes.txt").read_text() == "the user's earlier copy\n", \
        "a directory moved aside into a killed swap's scratch must be put back, not deleted with it"
    assert sorted(os.listdir(tmp_path)) == [f".best_model.{os.getpid()}.aaaa1111.tmp", ".model.tmp", "compressed",
                                            "model", "model.old"], \
        f"only the dead writer's scratch is touched: {sorted(os.listdir(tmp_path))}"
    # a writer tidies the folder it writes in before it starts: a rerun of the killed command finds it there
    swap = user_dir(tmp_path / f".exported.{dead}.cccc3333.tmp", "the new export\n")
    user_dir(swap / "previous-20261205-093100", "the user's export\n")
    write_directory(str(tmp_path / "other"), lambda tmp: None)
    assert (tmp_path / "exported" / "notes.txt").read_text() == "the user's export\n", \
        "write_directory must put back what a killed swap in the same folder moved aside"


# ---- a real full disk: a small tmpfs in a private mount namespace (root only)

DRIVER = textwrap.dedent("""
    import json, os, subprocess, sys
    mount, room, first, second = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mount], check=True)
    def listing():
        return {os.path.relpath(os.path.join(r, n), mount): os.path.getsize(os.path.join(r, n))
                for r, _, files in os.walk(mount) for n in files}
    result = {}
    if first:
        result["first"] = subprocess.run(first, capture_output=True, text=True).returncode
    result["before"] = listing()
    stat = os.statvfs(mount)
    filler = stat.f_bavail * stat.f_frsize - room
    with open(os.path.join(mount, "filler"), "wb") as handle:
        handle.truncate(0)
        block = b"\\0" * (1 << 20)
        while filler > 0:
            handle.write(block[:min(filler, len(block))])
            filler -= len(block)
    done = subprocess.run(second, capture_output=True, text=True)
    result.update(code=done.returncode, err=done.stderr, after=listing(),
                  hidden=sorted(n for r, dirs, files in os.walk(mount) for n in dirs + files if n.startswith(".")
                                and n != ".lock"))
    print(json.dumps(result))
""")


def in_tmpfs(tmp_path, room, first, second):
    if os.geteuid() != 0 or shutil.which("unshare") is None or \
            subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace here (needs root and unshare); the patched tests above cover it")
    mount = tmp_path / "disk"
    mount.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    done = subprocess.run(["unshare", "-m", sys.executable, str(driver), str(mount), str(room), json.dumps(first),
                           json.dumps(second)], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"tmpfs cannot be mounted here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, f"the driver failed: {done.stderr[-1500:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), mount


def check_full_disk(result, what, *needles):
    assert result["code"] == 2, f"{what}: a full disk is a user error (exit 2): {result['code']} {result['err'][-800:]}"
    assert len(result["err"].strip().splitlines()) == 1 and "Traceback" not in result["err"], \
        f"{what}: one line: {result['err'][-800:]}"
    for needle in needles:
        assert needle in result["err"], f"{what}: the message should contain {needle!r}: {result['err']}"
    assert result["hidden"] == [], f"{what}: temporary files left on the full disk: {result['hidden']}"


@pytest.mark.parametrize("command", ["export", "compress"])
def test_real_full_disk_keeps_the_previous_output(gpp_model_dir, tmp_path, command):
    module, source_flag = ("mt_dnn.export", "--checkpoint") if command == "export" else ("mt_dnn.compress", "--model")
    mount = str(tmp_path / "disk")
    argv = [sys.executable, "-m", module, source_flag, gpp_model_dir, "--output_dir", os.path.join(mount, "out")]
    result, _ = in_tmpfs(tmp_path, 64 * 1024, argv, [*argv, "--overwrite_output_dir"])
    assert result["first"] == 0, f"{command}: the first write into the tmpfs failed"
    check_full_disk(result, command, "No space left on device", "its previous content is intact")
    previous = {k: v for k, v in result["before"].items() if k.startswith("out/")}
    assert {k: v for k, v in result["after"].items() if k.startswith("out/")} == previous, \
        f"{command}: the previous output changed"


def test_real_full_disk_during_training_keeps_the_last_checkpoint(canonical_dir, tiny_model_dir, tmp_path, capsys):
    probe = tmp_path / "probe"
    assert run_main(train.main, train_args(canonical_dir, tiny_model_dir, probe, "--save_per_updates", "1",
                                           "--epochs", "1")) == 0, capsys.readouterr().err
    last = max((n for n in os.listdir(probe) if n.startswith("checkpoint-")), key=lambda n: int(n.split("-")[1]))
    checkpoint_bytes = sum(os.path.getsize(probe / last / n) for n in os.listdir(probe / last))
    mount = str(tmp_path / "disk")
    argv = [sys.executable, os.path.join(ROOT, "train.py"),
            *train_args(canonical_dir, tiny_model_dir, os.path.join(mount, "run"), "--save_per_updates", "1")]
    result, _ = in_tmpfs(tmp_path, int(checkpoint_bytes * 1.5) + 256 * 1024, None, argv)
    check_full_disk(result, "train", "could not write", "No space left on device")
    saved = sorted({k.split("/")[1] for k in result["after"] if k.startswith("run/checkpoint-")})
    assert saved, f"no checkpoint survived: {sorted(result['after'])}"
    assert {f"run/{saved[-1]}/state.json", f"run/{saved[-1]}/state.safetensors"} <= set(result["after"]), \
        f"the last checkpoint {saved[-1]} is incomplete: {sorted(result['after'])}"


def test_a_bad_task_definition_is_refused_before_the_output_dir_exists(canonical_dir, tiny_model_dir, tmp_path,
                                                                      capsys):
    task_def = tmp_path / "tasks.yml"
    task_def.write_text("rte: 3\n")
    out = tmp_path / "run"
    fail(train.main, train_args(canonical_dir, tiny_model_dir, out, "--task_def", task_def), capsys,
         f"{task_def}:1: task 'rte' is 3")
    assert not out.exists(), "a run refused for its task definition creates no output directory"


# ---- the working directory, the run's own outputs and the checkpoint a run continues

def test_an_empty_or_working_directory_output_is_never_replaced(tmp_path, monkeypatch):
    from data_utils.errors import UserError
    from data_utils.files import claim_output_dir, write_directory, write_output_file

    sand = user_dir(tmp_path / "sand", "precious\n")
    monkeypatch.chdir(sand)
    before = snapshot(tmp_path)
    written = []
    for target in ("", ".", str(sand), str(tmp_path)):
        with pytest.raises(UserError, match="--output_dir") as info:
            write_directory(target, lambda tmp: written.append(tmp), existing="replace")
        assert "empty" in str(info.value) or "working directory" in str(info.value), \
            f"write_directory({target!r}) must say why it refuses: {info.value}"
    with pytest.raises(UserError, match="--output_dir is empty"):
        claim_output_dir("", overwrite=True)
    with pytest.raises(UserError, match="file name is empty"):
        write_output_file(str(sand) + os.sep, lambda handle: handle.write("x"))
    assert not written and snapshot(tmp_path) == before, "a refused write touched the working directory"


def test_train_refuses_inputs_where_it_writes_inside_its_output_dir(canonical_dir, tiny_model_dir, tmp_path,
                                                                     capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("model", "checkpoint-3", "best_model"):
        shutil.copytree(tiny_model_dir, out / name)
    before = snapshot(out)
    for name in ("model", "checkpoint-3", "best_model"):
        fail(train.main, train_args(canonical_dir, out / name, out, "--overwrite_output_dir"), capsys,
             f"--init_checkpoint {out / name} lies in {out / name}, which this run writes", "--output_dir")
        assert snapshot(out) == before, f"--init_checkpoint {name}: the refused run changed {out}"


@pytest.mark.parametrize("extra, needle", [
    (["--tensorboard", "--tensorboard_logdir", "model"], "--tensorboard_logdir {out}/model lies in {out}/model"),
    (["--log_file", "dev_metrics.json"], "--log_file {out}/dev_metrics.json lies in {out}/dev_metrics.json"),
    (["--log_file", ".lock"], "--log_file {out}/.lock lies in {out}/.lock"),
    (["--log_file", "model"], "--log_file {out}/model lies in {out}/model"),
    (["--log_file", "best_model/train.log"], "--log_file {out}/best_model/train.log lies in {out}/best_model"),
    (["--log_file", "notes/config.json"], "a .json name is not a log file")],
    ids=["tensorboard-in-model", "log-dev-metrics", "log-lock", "log-model", "log-in-best-model", "log-json"])
def test_log_file_and_tensorboard_are_not_the_runs_own_outputs(canonical_dir, tiny_model_dir, tmp_path, capsys,
                                                               extra, needle):
    out = tmp_path / "run"
    fail(train.main, train_args(canonical_dir, tiny_model_dir, out, *extra), capsys, needle.format(out=out))
    assert not out.exists(), f"{extra}: refused at start-up, the run must leave no output directory"


def test_num_threads_far_above_the_cores_is_refused_at_start(canonical_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    fail(train.main, train_args(canonical_dir, tiny_model_dir, out, "--num_threads", 100_000_000), capsys,
         "--num_threads 100000000 is too many threads", f"{os.cpu_count()} CPU cores")
    assert not out.exists(), "a refused --num_threads left an output directory (before: a segfault left four files)"


def test_rotation_keeps_the_checkpoint_model_ckpt_continues(canonical_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(train.main, train_args(canonical_dir, tiny_model_dir, out, "--epochs", 2,
                                           "--save_per_updates", 2, "--keep_checkpoints", 0)) == 0, \
        capsys.readouterr().err
    checkpoints = sorted((name for name in os.listdir(out) if name.startswith("checkpoint-")),
                         key=lambda name: int(name.split("-")[1]))
    assert len(checkpoints) >= 3, f"the first run should leave several checkpoints: {checkpoints}"
    continued = out / checkpoints[-3]
    before = snapshot(continued)
    assert run_main(train.main, train_args(canonical_dir, tiny_model_dir, out, "--epochs", 2, "--save_per_updates", 2,
                                           "--keep_checkpoints", 1, "--model_ckpt", continued)) == 0, \
        capsys.readouterr().err
    assert continued.is_dir() and snapshot(continued) == before, \
        f"--keep_checkpoints 1 deleted or changed {continued}, the checkpoint --model_ckpt named: {os.listdir(out)}"
    left = sorted(name for name in os.listdir(out) if name.startswith("checkpoint-"))
    assert left == sorted([checkpoints[-3], checkpoints[-1]]), \
        f"rotation keeps the newest and the continued checkpoint, nothing else: {left}"


def test_rotation_renames_a_checkpoint_before_deleting_it(tmp_path, monkeypatch):
    """A kill during --keep_checkpoints' deletion left checkpoint-87/ holding only state.safetensors for good;
    now the checkpoint is renamed to scratch first, so a kill midway leaves only scratch (tidied later)."""
    import training.checkpoint as checkpoint

    for step in (1, 2):
        checkpoint.save_checkpoint(str(tmp_path), step, {"x": 1}, keep=0, run_id="r")
    seen = []

    def killed_midway(path, ignore_errors=False):
        seen.append(os.path.basename(path))
        raise KeyboardInterrupt("killed while deleting")
    monkeypatch.setattr(shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(str(tmp_path), 3, {"x": 1}, keep=1, run_id="r")
    assert seen and seen[0].startswith(".checkpoint-1.") and seen[0].endswith(".tmp"), \
        f"rotation deleted {seen} in place, not a scratch-renamed copy"
    assert not (tmp_path / "checkpoint-1").exists(), "checkpoint-1 must be gone under its own name at once"
    left = [name for name in os.listdir(tmp_path) if name.startswith(".checkpoint-1.")]
    assert left == [seen[0]], f"the interrupted deletion leaves only its scratch, which a later claim tidies: {left}"
