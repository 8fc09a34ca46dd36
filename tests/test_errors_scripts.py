"""Bad input to scripts/compare_runs.py, scripts/make_results.py and the bench/ scripts: one `error:` line on
stderr naming the flag or file, exit status 2, no traceback, and nothing run (each script is run for real, as a
user would; every bad value is refused before a model is built, data is generated or a run is trained)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def run_script(script: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)


def assert_one_error_line(result: subprocess.CompletedProcess, *named: str) -> str:
    """Exit 2, exactly one stderr line, starting with `error:`, no traceback, naming each of `named`."""
    assert "Traceback" not in result.stderr, f"no traceback: {result.stderr}"
    assert result.returncode == 2, f"exit status 2 for bad input, not {result.returncode}: {result.stderr!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"exactly one line on stderr: {result.stderr!r}"
    assert lines[0].startswith("error: "), f"the line starts with 'error: ': {lines[0]!r}"
    for text in named:
        assert text in lines[0], f"the line names {text!r}: {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------- F11 scripts/compare_runs.py

COMPARE = os.path.join("scripts", "compare_runs.py")


def gpp_run(path, model_config: dict):
    """A finished-looking GPP run directory (dev metrics, settings, model/config.json and the export's report)."""
    (path / "model").mkdir(parents=True)
    (path / "model_pruned").mkdir()
    (path / "dev_metrics.json").write_text(json.dumps({"rte": {"ACC": 61.5}}))
    (path / "config.json").write_text(json.dumps({"pruner": "gpp"}))
    (path / "model" / "config.json").write_text(json.dumps(model_config))
    (path / "model_pruned" / "structured_export.json").write_text(
        json.dumps({"layer_heads": [6, 6], "layer_intermediate_sizes": [1536, 1536]}))
    return path


SHAPE = {"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 2, "intermediate_size": 3072}


def test_compare_runs_reads_a_well_formed_fake_gpp_run(tmp_path):
    result = run_script(COMPARE, str(gpp_run(tmp_path / "good", SHAPE)))
    assert result.returncode == 0 and result.stderr == "", f"a complete run reads: {result.returncode} {result.stderr}"
    assert "61.50" in result.stdout and "%" in result.stdout, f"its metric and share: {result.stdout}"


def test_compare_runs_deeply_nested_dev_metrics_is_one_line(tmp_path):
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "dev_metrics.json").write_text("[" * 100000 + "]" * 100000)
    line = assert_one_error_line(run_script(COMPARE, str(deep)), str(deep), "dev_metrics.json")
    assert "nested too deeply" in line, f"says what is wrong with the file: {line}"


@pytest.mark.parametrize("key, value", [("hidden_size", "big"), ("num_attention_heads", 0),
                                        ("num_hidden_layers", None), ("intermediate_size", -3),
                                        ("hidden_size", True), ("hidden_size", 100)])
def test_compare_runs_damaged_model_config_is_one_line(tmp_path, key, value):
    run = gpp_run(tmp_path / "g3", {**SHAPE, key: value})
    line = assert_one_error_line(run_script(COMPARE, str(run)), str(run), "model/config.json")
    assert key in line, f"names the bad field: {line}"


def test_compare_runs_damaged_export_report_is_one_line(tmp_path):
    run = gpp_run(tmp_path / "g4", SHAPE)
    (run / "model_pruned" / "structured_export.json").write_text(
        json.dumps({"layer_heads": ["six", 6], "layer_intermediate_sizes": [1536, 1536]}))
    assert_one_error_line(run_script(COMPARE, str(run)), str(run), "GPP export")
    (run / "model_pruned" / "structured_export.json").write_text("[1, 2]")
    assert_one_error_line(run_script(COMPARE, str(run)), str(run), "structured_export.json")


def test_compare_runs_settings_that_are_not_an_object_is_one_line(tmp_path):
    run = gpp_run(tmp_path / "g5", SHAPE)
    (run / "config.json").write_text("[]")
    assert_one_error_line(run_script(COMPARE, str(run)), str(run), "config.json")


def test_compare_runs_a_file_is_called_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = assert_one_error_line(run_script(COMPARE, str(afile)), str(afile))
    assert "a file, not a run directory" in line and "no such directory" not in line, \
        f"a file is called a file: {line}"


def test_compare_runs_help_prints_help():
    result = run_script(COMPARE, "--help")
    assert result.returncode == 0, f"--help exits 0: {result.returncode} {result.stderr}"
    assert result.stdout.startswith("usage:") and "RUN_DIR" in result.stdout, f"--help prints usage: {result.stdout}"
    assert result.stderr == "", f"nothing on stderr: {result.stderr!r}"


def test_compare_runs_unknown_flag_is_one_line():
    assert_one_error_line(run_script(COMPARE, "--bogus"), "--bogus")


# ---------------------------------------------------------------- F12 scripts/make_results.py

MAKE = os.path.join("scripts", "make_results.py")


@pytest.mark.parametrize("flag, value", [
    ("--seeds", "abc"), ("--seeds", ""), ("--seeds", "1,1"), ("--seeds", "-1"), ("--seeds", "1.5"),
    ("--ratios", "0.1,x"), ("--ratios", ""), ("--ratios", "0"), ("--ratios", "1.5"), ("--ratios", "nan"),
    ("--kd_lrs", "nope"), ("--kd_lrs", "-1e-3"), ("--kd_lrs", "inf"), ("--soft_score_lrs", "0,x"),
    ("--signed_dfd_seeds", "1.5"), ("--signed_dfd_seeds", "7"), ("--longer_epochs", "12,x"), ("--longer_epochs", "0"),
    ("--scale", "nan"), ("--scale", "-1"), ("--scale", "0"), ("--scale", "51"),
    ("--epochs", "0"), ("--batch_size", "0"), ("--jobs", "0"), ("--jobs", "100000"), ("--max_seq_len", "4"),
    ("--max_seq_len", "100000"), ("--learning_rate", "nan"), ("--learning_rate", "0"), ("--final_lambda", "-1"),
    ("--final_lambda", "inf"), ("--tasks", "nosuch"), ("--tasks", ""), ("--tasks", "rte,rte"),
    ("--methods", "platonn"), ("--epochs", "abc"), ("--precision", "fp8")])
def test_make_results_bad_flag_is_one_line_before_anything_runs(tmp_path, flag, value):
    result = run_script(MAKE, "--data_dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                        "--results", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png"), "--no_train",
                        f"{flag}={value}", timeout=120)
    assert_one_error_line(result, flag)
    assert os.listdir(tmp_path) == [], f"nothing generated or written: {os.listdir(tmp_path)}"


@pytest.mark.parametrize("flag", ["--results", "--plot", "--out", "--data_dir"])
def test_make_results_bad_paths_are_one_line(tmp_path, flag):
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = str(tmp_path) if flag in ("--results", "--plot") else str(afile)
    assert_one_error_line(run_script(MAKE, "--no_train", flag, bad, timeout=120), flag)
    assert_one_error_line(run_script(MAKE, "--no_train", f"{flag}=", timeout=120), flag)


# ---------------------------------------------------------------- F13 bench/

@pytest.mark.parametrize("script, args, flag", [
    ("prepro_throughput.py", ["--repeat", "0"], "--repeat"),
    ("prepro_throughput.py", ["--max_seq_len", "0"], "--max_seq_len"),
    ("prepro_throughput.py", ["--data_dir", "NONEXISTENT_GLUE_DIR"], "--data_dir"),
    ("pruner_overhead.py", ["--total_steps", "0"], "--total_steps"),
    ("pruner_overhead.py", ["--final_threshold", "5", "--total_steps", "2"], "--final_threshold"),
    ("pruner_overhead.py", ["--pruner_threads", "-3", "--total_steps", "2"], "--pruner_threads"),
    ("pruner_overhead.py", ["--deltaT", "10", "0"], "--deltaT"),
    ("pruner_overhead.py", ["--warmup_steps", "30"], "--warmup_steps"),
    ("pruner_overhead.py", ["--initial_warmup", "-1"], "--initial_warmup"),
    ("structured_speedup.py", ["--tiny", "--batch_size", "0"], "--batch_size"),
    ("structured_speedup.py", ["--tiny", "--runs", "0"], "--runs"),
    ("structured_speedup.py", ["--tiny", "--head_fraction", "2"], "--head_fraction"),
    ("structured_speedup.py", ["--tiny", "--ffn_fraction", "nan"], "--ffn_fraction"),
    ("structured_speedup.py", ["--tiny", "--seq_len", "0"], "--seq_len"),
    ("structured_speedup.py", ["--tiny", "--warmup", "-1"], "--warmup"),
    ("structured_speedup.py", ["--tiny", "--threads", "-2"], "--threads"),
    ("train_padding.py", ["--tasks", "nosuch"], "--tasks"),
    ("train_padding.py", ["--tasks", "rte", "--steps", "0"], "--steps"),
    ("train_padding.py", ["--batch_size", "0"], "--batch_size"),
    ("train_padding.py", ["--max_seq_len", "4"], "--max_seq_len"),
    ("train_padding.py", ["--data_dir", "NONEXISTENT_CANONICAL_DIR"], "--data_dir"),
    ("train_step.py", ["--batch_size", "0"], "--batch_size"),
    ("train_step.py", ["--rounds", "0"], "--rounds"),
    ("train_step.py", ["--warmup_rounds", "-1"], "--warmup_rounds"),
    ("train_step.py", ["--max_seq_len", "1000"], "--max_seq_len"),
    ("train_step.py", ["--grad_clipping", "nan"], "--grad_clipping"),
    ("train_step.py", ["--global_grad_clipping", "-1"], "--global_grad_clipping"),
    ("train_step.py", ["--seed", "-1"], "--seed"),
])
def test_bench_bad_flag_is_one_line_before_anything_runs(script, args, flag):
    assert_one_error_line(run_script(os.path.join("bench", script), *args, timeout=120), flag)


def test_bench_file_as_data_dir_is_called_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for script in ("prepro_throughput.py", "train_padding.py"):
        line = assert_one_error_line(run_script(os.path.join("bench", script), "--data_dir", str(afile),
                                                timeout=120), "--data_dir", str(afile))
        assert "is a file" in line, f"{script}: a file is called a file: {line}"
