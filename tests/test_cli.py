"""The installed package and the `mimokd` command."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from mimokd.cli import main

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
    args = ["--model", "crnet_se", "--cr", "32", "--epochs", "1", "--batch-size", "20",
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
    assert main(["train", "--model", "crnett", "--epochs", "1", "--train-samples", "10",
                 "--val-samples", "10", "--out", str(tmp_path)]) == 2
    assert "Unknown model name" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.keras")]) == 2
    assert "No checkpoint at" in capsys.readouterr().err
    (tmp_path / "notes.keras").write_text("not a model")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "notes.keras")]) == 2
    assert "is not a Keras .keras archive" in capsys.readouterr().err


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "mimokd.cli", "models", "--cr", "64"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "| bcrnet | 1/64 |" in out
