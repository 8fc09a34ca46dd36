"""Tests for download.sh: flags, --sample, offline fallback, and a fake GLUE served locally."""
import functools
import http.server
import os
import shutil
import subprocess
import threading
import zipfile

import pytest

from experiments.glue import sample_data as sd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "download.sh")
OFFLINE = "http://127.0.0.1:9/"  # the discard port: nothing listens, connections are refused
ZIP_NAMES = {"CoLA": "CoLA.zip", "SST-2": "SST-2.zip", "QQP": "QQP-clean.zip", "STS-B": "STS-B.zip",
             "MNLI": "MNLI.zip", "QNLI": "QNLIv2.zip", "RTE": "RTE.zip", "WNLI": "WNLI.zip"}
MRPC_HEADER = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"


def run_script(args, cwd, **env):
    full_env = dict(os.environ)
    full_env["GLUE_SAMPLE_SCALE"] = "0.02"  # keeps the fallback runs fast; sizes are tested elsewhere
    full_env.update(env)
    return subprocess.run(["sh", SCRIPT, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=180)


def offline_env():
    return {"GLUE_BASE_URL": OFFLINE, "GLUE_MRPC_URL": OFFLINE,
            "GLUE_MRPC_DEV_IDS_URL": OFFLINE + "dev_ids.tsv", "GLUE_CONNECT_TIMEOUT": "3"}


def fake_task_files(task):
    """A recognisable stand-in for each task's files, as the GLUE archives hold them."""
    if task == "MNLI":
        names = ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv", "test_matched.tsv",
                 "test_mismatched.tsv")
    else:
        names = ("train.tsv", "dev.tsv", "test.tsv")
    return {name: f"fake {task} {name}\n" for name in names}


@pytest.fixture(scope="module")
def fake_glue(tmp_path_factory):
    """A local HTTP server with GLUE-shaped zips and MRPC source files; yields its URLs and root."""
    root = tmp_path_factory.mktemp("served")
    (root / "glue").mkdir()
    for task, zip_name in ZIP_NAMES.items():
        with zipfile.ZipFile(root / "glue" / zip_name, "w") as archive:
            for name, text in fake_task_files(task).items():
                archive.writestr(f"{task}/{name}", text)
            archive.writestr(f"{task}/original/README.txt", "extra file kept as shipped\n")
    # The same archives without RTE.zip, to fail late in the run.
    shutil.copytree(root / "glue", root / "no-rte")
    (root / "no-rte" / "RTE.zip").unlink()
    (root / "mrpc").mkdir()
    train_rows = ["1\t11\t12\tA cat sat .\tA cat was sitting .", "0\t21\t22\tIt rained .\tIt snowed .",
                  "1\t31\t32\tHe left .\tHe went away ."]
    (root / "mrpc" / "msr_paraphrase_train.txt").write_bytes(
        (MRPC_HEADER + "".join(row + "\r\n" for row in train_rows)).encode("utf-8"))
    (root / "mrpc" / "msr_paraphrase_test.txt").write_bytes(
        (MRPC_HEADER + "1\t41\t42\tShe won .\tShe was the winner .\r\n").encode("utf-8"))
    (root / "mrpc" / "dev_ids.tsv").write_text("21\t22\n")

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    yield {"GLUE_BASE_URL": base + "glue/", "GLUE_MRPC_URL": base + "mrpc/",
           "GLUE_MRPC_DEV_IDS_URL": base + "mrpc/dev_ids.tsv"}, root
    server.shutdown()
    server.server_close()


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".glue-download")]


@pytest.mark.parametrize("args", [["--bogus"], ["--data_dir"], ["--sample", "extra"]])
def test_bad_flags_exit_2_with_one_line(tmp_path, args):
    result = run_script(args, str(tmp_path))
    assert result.returncode == 2, f"{args}: exit {result.returncode}"
    assert len(result.stderr.strip().splitlines()) == 1, f"{args}: want a one-line error, got {result.stderr!r}"
    assert os.listdir(tmp_path) == [], f"{args}: created {os.listdir(tmp_path)}"


def test_help_exits_0(tmp_path):
    result = run_script(["--help"], str(tmp_path))
    assert result.returncode == 0 and "usage" in result.stdout, f"--help: {result.returncode} {result.stdout!r}"


def test_sample_flag_writes_all_nine_tasks_relative_to_cwd(tmp_path):
    result = run_script(["--sample", "--data_dir", "out"], str(tmp_path))
    assert result.returncode == 0, f"--sample failed: {result.stderr}"
    assert "SAMPLE" in result.stdout and "NOT real GLUE" in result.stdout, \
        f"stdout does not say the data is the sample: {result.stdout}"
    out = tmp_path / "out"
    for task in sd.TASKS:
        for spec in sd.FILES[task]:
            assert (out / task / spec.name).is_file(), f"--sample did not write {task}/{spec.name}"
    assert sorted(os.listdir(tmp_path)) == ["out"], f"unexpected entries beside out: {os.listdir(tmp_path)}"


def test_offline_falls_back_to_sample_without_partial_files(tmp_path):
    result = run_script(["--data_dir", "out"], str(tmp_path), **offline_env())
    assert result.returncode == 0, f"offline run failed: {result.stderr}"
    assert "could not get CoLA" in result.stdout, f"no reason given for the fallback: {result.stdout}"
    assert "NOT real GLUE" in result.stdout, f"stdout does not say the data is the sample: {result.stdout}"
    assert result.stderr == "", f"the fallback is not an error; curl's own complaint belongs in its line: {result.stderr!r}"
    assert leftovers(tmp_path) == [], f"temporary download folders left: {leftovers(tmp_path)}"
    assert sorted(os.listdir(tmp_path / "out")) == sorted(list(sd.TASKS) + [sd.MARKER_FILE]), \
        f"out holds {sorted(os.listdir(tmp_path / 'out'))}"
    rows = (tmp_path / "out" / "RTE" / "train.tsv").read_text().count("\n") - 1
    assert rows == 50, f"GLUE_SAMPLE_SCALE=0.02 should give 50 RTE train rows, got {rows}"


def test_sample_scale_defaults_to_full_size(tmp_path):
    result = run_script(["--sample", "--data_dir", "out"], str(tmp_path), GLUE_SAMPLE_SCALE="")
    assert result.returncode == 0, f"--sample failed: {result.stderr}"
    rows = (tmp_path / "out" / "RTE" / "train.tsv").read_text().count("\n") - 1
    assert rows == 2500, f"default sample should have 2500 RTE train rows, got {rows}"


@pytest.mark.parametrize("fetcher", ["curl", "wget"])
def test_served_glue_is_installed_and_replaces_the_sample(tmp_path, fake_glue, fetcher):
    if shutil.which(fetcher) is None:
        pytest.skip(f"{fetcher} is not installed")
    urls, _ = fake_glue
    out = tmp_path / "out"
    sd.generate(str(out), scale=0.01)  # a sample already there must be replaced wholesale
    result = run_script(["--data_dir", str(out)], str(tmp_path), GLUE_FETCHER=fetcher, **urls)
    assert result.returncode == 0, f"download failed: {result.stdout} {result.stderr}"
    assert "real GLUE" in result.stdout and "SAMPLE" not in result.stdout, f"unexpected output: {result.stdout}"
    for task in ZIP_NAMES:
        for name, text in fake_task_files(task).items():
            assert (out / task / name).read_text() == text, f"{task}/{name} is not the downloaded file"
        assert (out / task / "original" / "README.txt").exists(), f"{task}: archive contents were not kept"
    train = (out / "MRPC" / "train.tsv").read_bytes()
    assert train.startswith(b"\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"), \
        f"MRPC train.tsv header/BOM wrong: {train[:60]!r}"
    assert b"\r" not in train, "MRPC train.tsv kept the source's CRLF line endings"
    assert train.count(b"\n") == 3, f"MRPC train.tsv should hold 2 rows plus header: {train!r}"
    dev = (out / "MRPC" / "dev.tsv").read_text(encoding="utf-8")
    assert dev.splitlines()[1:] == ["0\t21\t22\tIt rained .\tIt snowed ."], f"MRPC dev split wrong: {dev!r}"
    test = (out / "MRPC" / "test.tsv").read_bytes()
    assert test == b"index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t41\t42\tShe won .\tShe was the winner .\n", \
        f"MRPC test.tsv wrong: {test!r}"
    assert not (out / sd.MARKER_FILE).exists(), "the sample marker survived a real download"
    assert leftovers(tmp_path) == [], f"temporary download folders left: {leftovers(tmp_path)}"


def test_one_missing_task_gives_the_sample_not_a_mix(tmp_path, fake_glue):
    urls, _ = fake_glue
    env = dict(urls, GLUE_BASE_URL=urls["GLUE_BASE_URL"].replace("/glue/", "/no-rte/"))
    result = run_script(["--data_dir", "out"], str(tmp_path), **env)
    assert result.returncode == 0, f"run failed: {result.stderr}"
    assert "could not get RTE" in result.stdout and "NOT real GLUE" in result.stdout, \
        f"fallback not reported: {result.stdout}"
    fallback = next(line for line in result.stdout.splitlines() if "could not get RTE" in line)
    assert "404" in fallback and result.stderr == "", \
        f"curl's reason (HTTP 404) goes into the fallback line, not onto stderr: {fallback!r}, stderr {result.stderr!r}"
    out = tmp_path / "out"
    assert (out / sd.MARKER_FILE).exists(), "fallback did not write the sample"
    assert (out / "CoLA" / "train.tsv").read_text() != fake_task_files("CoLA")["train.tsv"], \
        "real and synthetic tasks were mixed"
    assert not (out / "CoLA" / "original").exists(), "a downloaded task folder leaked into the data dir"
    assert leftovers(tmp_path) == [], f"temporary download folders left: {leftovers(tmp_path)}"


def test_sample_never_overwrites_real_data(tmp_path):
    real = tmp_path / "out" / "CoLA" / "train.tsv"
    real.parent.mkdir(parents=True)
    real.write_text("gj04\t1\t\tA real sentence.\n")
    result = run_script(["--sample", "--data_dir", "out"], str(tmp_path))
    assert result.returncode == 2, f"expected exit 2, got {result.returncode}: {result.stdout}"
    assert "may be real GLUE" in result.stderr, f"no explanation on stderr: {result.stderr}"
    assert real.read_text() == "gj04\t1\t\tA real sentence.\n", "real data was overwritten"
