"""The installed package and the `mimokd` command."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import mimokd
from mimokd import cli
from mimokd.cli import main

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

REPO = Path(__file__).parents[1]


def test_installed_package_imports_under_one_namespace():
    import mimokd
    import mimokd.channels
    import mimokd.export
    import mimokd.train
    import mimokd.zoo

    assert mimokd.__version__
    # the generic folders are reachable only as mimokd.<name>
    for name in ("zoo", "train", "export", "channels"):
        assert getattr(mimokd, name).__name__ == f"mimokd.{name}"


def test_console_script_help():
    exe = shutil.which("mimokd")
    assert exe, "the `mimokd` console script is not installed (pip install -e .)"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("pipeline", "models", "generate", "train", "evaluate"):
        assert command in out


def test_models_table(capsys):
    assert main(["models", "--cr", "16"]) == 0
    out = capsys.readouterr().out
    assert "| crnet_cui | 1/16 |" in out and "11,407,232" in out


def test_train_then_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--model", "csinet", "--cr", "32", "--epochs", "1", "--batch-size", "20",
            "--train-samples", "40", "--val-samples", "20", "--test-samples", "20", "--out", str(run)]
    assert main(["train", *args]) == 0
    assert "NMSE" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["cr"] == 32 and config["train"]["epochs"] == 1
    assert main(["evaluate", "--checkpoint", str(run / "best.keras"), "--test-samples", "20"]) == 0
    out = capsys.readouterr().out
    assert "dB (global mean)" in out and "rho" in out


def test_generate_writes_cost2100_files(tmp_path):
    from mimokd.channels import load_csi

    assert main(["generate", "--out", str(tmp_path), "--train-samples", "30",
                 "--val-samples", "10", "--test-samples", "10"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["DATA_Htestin.mat", "DATA_Htrainin.mat", "DATA_Hvalin.mat", "generate.json"]
    assert load_csi(tmp_path / "DATA_Htrainin.mat").shape == (30, 2, 32, 32)


def test_errors_are_reported_not_raised(tmp_path, capsys):
    """A usage error exits in the parser with status 2; a run that fails with a message returns 1."""
    assert main(["train", "--model", "crnett", "--epochs", "1", "--train-samples", "10",
                 "--val-samples", "10", "--out", str(tmp_path)]) == cli.FAILED == 1
    err = capsys.readouterr().err
    assert "Unknown model name" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:  # the parser checks that the file exists
        main(["evaluate", "--checkpoint", str(tmp_path / "missing.keras")])
    assert exit_.value.code == 2 and f"{tmp_path / 'missing.keras'}: no such file" in capsys.readouterr().err
    (tmp_path / "notes.keras").write_text("not a model")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "notes.keras")]) == cli.FAILED
    assert "is not a Keras .keras archive" in capsys.readouterr().err


def test_debug_shows_a_failed_runs_traceback(tmp_path, capsys):
    (tmp_path / "notes.keras").write_text("not a model")
    assert main(["--debug", "evaluate", "--checkpoint", str(tmp_path / "notes.keras")]) == cli.FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a Keras .keras archive" in err
    assert "Traceback (most recent call last)" in err and "in cmd_evaluate" in err


def test_module_entry_point_is_quiet():
    """The table on stdout; on stderr only our own status line, none of TensorFlow's start-up log."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "mimokd.cli", "models", "--cr", "64"],
                          capture_output=True, text=True, check=True, cwd=REPO, env=env)
    assert "| bcrnet | 1/64 |" in done.stdout
    assert re.fullmatch(r"done in \d+\.\d s\n", done.stderr), done.stderr


def test_closed_stdout_is_not_an_error():
    """``mimokd models | head -1``: the reader closes the pipe; the command stops quietly (141, as a
    shell reports SIGPIPE) instead of an internal error, and no 'Exception ignored' at exit."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the CLI's own default
    child = subprocess.Popen([sys.executable, "-m", "mimokd.cli", "models", "--cr", "64"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()  # long before the table is printed (importing TensorFlow takes seconds)
    err = child.stderr.read()
    assert child.wait() == cli.BROKEN_PIPE and err == "", err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"mimokd {mimokd.__version__}\n"


def test_quiet_and_verbose(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # -q sets it; restored after the test
    try:
        assert main(["-q", "models", "--cr", "64"]) == 0
        captured = capsys.readouterr()
        assert "| bcrnet | 1/64 |" in captured.out and captured.err == ""  # results only
        assert main(["-v", "models", "--cr", "64"]) == 0
        assert "done in" in capsys.readouterr().err
        assert logging.getLogger("mimokd").getEffectiveLevel() == logging.DEBUG
    finally:
        keras.config.enable_interactive_logging()  # -q turned Keras' progress bars off
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "-v", "models"])
    assert exit_.value.code == 2


def _crash(args):
    raise RuntimeError("Attempt to convert a value (PerReplica:{\n  0: <tf.Tensor: [[0.1, 0.2]]>\n})")


def test_internal_errors_are_one_line_and_not_the_usage_code(capsys, monkeypatch):
    monkeypatch.setattr(cli, "cmd_models", _crash)
    assert main(["models"]) == cli.INTERNAL_ERROR != 2
    err = capsys.readouterr().err
    assert err == ("error: internal error: RuntimeError: Attempt to convert a value (PerReplica:{ (rerun with "
                   "--debug for the traceback)\n")
    for flag in ("-v", "--debug"):
        assert main([flag, "models"]) == cli.INTERNAL_ERROR
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "in _crash" in err and "0: <tf.Tensor" in err


def test_list_options_take_spaces_and_commas():
    parse = cli.build_parser().parse_args
    assert parse(["models", "--cr", "4,16", "32"]).cr == [4, 16, 32]
    assert parse(["models", "--cr", "4", "16"]).cr == [4, 16]
    args = parse(["export", "--models", "crnet,crnet_se", "--cr", "4,8", "--formats", "onnx", "tflite-f32"])
    assert (args.models, args.cr, args.formats) == (["crnet", "crnet_se"], [4, 8], ["onnx", "tflite-f32"])
    assert parse(["report", "--models", "crnet", "crnet_se", "--cr", "4", "8"]).cr == [4, 8]
    args = parse(["experiment", "zhang-fig5", "--cr", "4,8", "--users", "2,6", "--powers", "0", "10,20"])
    assert (args.cr, args.users, args.powers) == ([4, 8], [2, 6], [0.0, 10.0, 20.0])


def test_bad_list_values_are_usage_errors(capsys):
    for argv, message in ((["models", "--cr", "4,x"], "--cr: expected a compression ratio that divides the 2048"),
                          (["models", "--cr", "0"], "expected a compression ratio that divides the 2048 CSI values "
                           "(4, 8, 16, 32, 64, ...), got '0'"),
                          (["experiment", "x", "--users", "2,0"], "--users: expected a positive integer, got '0'"),
                          (["export", "--formats", "onnx,tflite-int4"], "invalid choice: 'tflite-int4'"),
                          (["models", "--cr", ","], "expected at least one value")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_experiment_help_lists_every_experiment(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["experiment", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    names = list(cli._experiment_titles())
    assert len(names) == 20 and all(f"\n{name} " in out for name in names)


def test_a_library_basicconfig_does_not_print_each_line_twice():
    # tf2onnx calls logging.basicConfig() on export; the CLI's handler on the root logger makes it a
    # no-op, so a `mimokd` line is printed once, and other libraries' warnings still show
    code = ("import logging; from mimokd import cli; cli._configure_output(0); logging.basicConfig(); "
            "logging.getLogger('mimokd.x').info('progress line'); logging.getLogger('other').info('chatter'); "
            "logging.getLogger('other').warning('a warning')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err.splitlines() == ["progress line", "warning: a warning"]


def test_pipeline_options_reach_run_pipeline(tmp_path, monkeypatch, capsys):
    """`mimokd pipeline` hands its options to run_pipeline (which tests/test_pipeline.py runs) and prints
    the results.md it wrote."""
    import mimokd.pipeline

    seen = {}

    def fake_run_pipeline(**kwargs):
        seen.update(kwargs)
        Path(kwargs["out_dir"], "results.md").write_text("| role |\n")

    monkeypatch.setattr(mimokd.pipeline, "run_pipeline", fake_run_pipeline)
    out = tmp_path / "run"
    out.mkdir()
    assert main(["pipeline", "--out", str(out), "--formats", "onnx,tflite-int8", "--cr", "32", "--no-pretrained",
                 "--train-samples", "40", "--epochs", "2"]) == 0
    assert capsys.readouterr().out == "| role |\n"
    assert seen["formats"] == ["onnx", "tflite-int8"] and seen["cr"] == 32 and seen["pretrained"] is False
    assert seen["samples"] == (40, 500, 1000) and seen["config"].epochs == 2
    assert main(["pipeline", "--out", str(out)]) == 0 and seen["formats"] is None  # every format by default
