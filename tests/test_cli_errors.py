"""Bad command lines (issue 16, item 4): each is refused in argument parsing, before any data or
training, with argparse's usage status 2, one ``error:`` line that names the argument or the path,
and no traceback. (A run that fails later, on its data or files, exits 1: tests/test_cli.py.)"""

import os
from pathlib import Path

import pytest

from mimokd import argtypes
from mimokd.cli import main

# {file}: an existing file, {dir}: an existing folder, {missing}: a path that does not exist
CASES = [
    (["train", "--model", "crnet", "--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
    (["train", "--model", "crnet", "--epochs", "-3"], "--epochs: expected a positive integer"),
    (["train", "--model", "crnet", "--epochs", "2.5"], "--epochs: expected a positive integer, got '2.5'"),
    (["train", "--model", "crnet", "--batch-size", "0"], "--batch-size: expected a positive integer"),
    (["train", "--model", "crnet", "--lr", "0"], "--lr: expected a positive finite number, got '0'"),
    (["train", "--model", "crnet", "--lr=-1e-3"], "--lr: expected a positive finite number"),
    (["train", "--model", "crnet", "--lr", "nan"], "--lr: expected a positive finite number, got 'nan'"),
    (["train", "--model", "crnet", "--lr", "inf"], "--lr: expected a positive finite number, got 'inf'"),
    (["train", "--model", "crnet", "--cr", "0"], "--cr: expected a compression ratio that divides"),
    (["train", "--model", "crnet", "--cr", "3"], "--cr: expected a compression ratio that divides the 2048"),
    (["train", "--model", "crnet", "--cr", "four"], "--cr: expected a compression ratio"),
    (["train", "--model", "crnet", "--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
    (["train", "--model", "crnet", "--train-samples", "-5"], "--train-samples: expected an integer >= 0"),
    (["train", "--model", "crnet", "--val-samples", "1.5"], "--val-samples: expected an integer >= 0"),
    (["train", "--model", "crnet", "--out", "{file}"], "--out: {file} is a file; expected a folder"),
    (["train", "--model", "crnet", "--out", "{file}/run"], "--out: {file}/run cannot be created: {file} is a file"),
    (["train", "--model", "crnet", "--data", "{file}"], "--data: {file} is one file, but this command reads"),
    (["generate", "--out", "{dir}", "--data", "{file}"], "--data: {file} is one file"),
    (["pipeline", "--cr", "5"], "--cr: expected a compression ratio"),
    (["pipeline", "--train-samples", "0"], "--train-samples: expected a positive integer"),
    (["pipeline", "--out", "{file}"], "--out: {file} is a file"),
    (["pipeline", "--weights-dir", "{file}"], "--weights-dir: {file} is a file; expected a folder"),
    (["pipeline", "--formats", "tflite-int4"], "--formats: invalid choice: 'tflite-int4' (choose from 'savedmodel'"),
    (["models", "--cr", "4,7"], "--cr: expected a compression ratio"),
    (["generate", "--out", "{file}"], "--out: {file} is a file"),
    (["generate", "--out", "{dir}", "--test-samples", "x"], "--test-samples: expected an integer >= 0, got 'x'"),
    (["data", "generate", "cost2100-indoor", "--out", "{dir}", "--samples", "0"], "--samples: expected a positive"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--shards", "0"], "--shards: expected a positive"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--workers", "0"], "--workers: expected a positive"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--shard-ids", "1", "x"],
     "--shard-ids: expected an integer >= 0, got 'x'"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--shard-ids", "-1"], "--shard-ids: expected an"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--bandwidth", "0"], "--bandwidth: expected a positive"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--delay-offset", "nan"],
     "--delay-offset: expected a finite number >= 0, got 'nan'"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--delay-offset=-1e-9"],
     "--delay-offset: expected a finite number >= 0, got '-1e-9'"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--ue-annulus", "-1", "5"],
     "--ue-annulus: expected a finite number >= 0, got '-1'"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--scaling", "-2"],
     "--scaling: expected 'peak' or a positive finite number, got '-2'"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--scaling", "max"], "--scaling: expected 'peak'"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--steering-sign", "2"],
     "--steering-sign: invalid choice"),
    (["data", "generate", "cost2100-indoor", "--samples", "9", "--out", "{file}"], "--out: {file} is a file"),
    (["data", "stats", "{file}"], "dir: {file} is a file; expected a folder"),
    (["data", "stats", "{missing}"], "dir: {missing}: no such folder"),
    (["data", "stats", "{dir}", "--drops", "0"], "--drops: expected a positive integer"),
    (["data", "stats", "{dir}", "--png", "{dir}"], "--png: {dir} is a folder; expected a file name"),
    (["distill", "--method", "output-kd", "--teacher", "{file}", "--student", "bcrnet", "--weight", "1.5"],
     "--weight: expected a number in [0, 1], got '1.5'"),
    (["distill", "--method", "autoencoder-kd", "--alpha", "-0.1"], "--alpha: expected a number in [0, 1]"),
    (["distill", "--method", "autoencoder-kd", "--temperature", "0"], "--temperature: expected a positive"),
    (["distill", "--method", "codeword-mimic", "--mimic-epochs", "-1"], "--mimic-epochs: expected an integer >= 0"),
    (["distill", "--method", "codeword-mimic", "--alpha0", "-1"], "--alpha0: expected a finite number >= 0"),
    (["distill", "--method", "output-kd", "--teacher", "{dir}"], "--teacher: {dir} is a folder; expected a file"),
    (["distill", "--method", "output-kd", "--teacher", "{missing}"], "--teacher: {missing}: no such file"),
    (["ip-kd", "bs-export", "--model", "{file}", "--out", "p.npz", "--codeword-bits", "0"],
     "--codeword-bits: expected an integer from 1 to 16, got '0'"),
    (["ip-kd", "ue-export", "--csi-bits", "17"], "--csi-bits: expected an integer from 1 to 16, got '17'"),
    (["ip-kd", "bs-export", "--model", "{file}", "--out", "{dir}"], "--out: {dir} is a folder; expected a file"),
    (["ip-kd", "ue-train", "--pairs", "{missing}"], "--pairs: {missing}: no such file"),
    (["ip-kd", "bs-finetune", "--lr", "0"], "--lr: expected a positive finite number"),
    (["evaluate", "--checkpoint", "{dir}"], "--checkpoint: {dir} is a folder; expected a file"),
    (["evaluate", "--checkpoint", "{file}", "--test-samples", "-1"], "--test-samples: expected an integer >= 0"),
    (["export", "--models", "crnet", "--threads", "0"], "--threads: expected a positive integer"),
    (["export", "--models", "crnet", "--calibration-samples", "0"], "--calibration-samples: expected a positive"),
    (["export", "--models", "crnet", "--cr", "4,6"], "--cr: expected a compression ratio"),
    (["export", "--checkpoint", "{dir}"], "--checkpoint: {dir} is a folder without best.keras or final.keras; "
                                          "expected a .keras file or a run directory that holds one"),
    (["export", "--models", "crnet", "--out", "{file}"], "--out: {file} is a file"),
    (["report", "--models", "crnet", "--runs", "0"], "--runs: expected a positive integer"),
    (["report", "--models", "crnet", "--warmup", "-1"], "--warmup: expected an integer >= 0"),
    (["compress", "--checkpoint", "{file}", "--prune", "1"], "--prune: expected a fraction in [0, 1), got '1'"),
    (["compress", "--checkpoint", "{file}", "--prune", "-0.5"], "--prune: expected a fraction in [0, 1)"),
    (["compress", "--checkpoint", "{file}", "--epochs", "0"], "--epochs: expected a positive integer"),
    (["compress", "--checkpoint", "{missing}"], "--checkpoint: {missing}: no such file"),
    (["import", "torch", "--model", "crnet", "--checkpoint", "{file}", "--cr", "7"], "--cr: expected a compression"),
    (["import", "csinet-keras", "--json", "{dir}"], "--json: {dir} is a folder; expected a file"),
    (["import", "csinet-keras", "--json", "{file}", "--h5", "{file}", "--out", "{dir}"],
     "--out: {dir} is a folder; expected a file name"),
    (["pretrained", "register", "--cr", "0"], "--cr: expected a compression ratio"),
    (["pretrained", "register", "--weights", "{dir}"], "--weights: {dir} is a folder; expected a file"),
    (["pretrained", "register", "--paper-nmse", "nan"], "--paper-nmse: expected a finite number, got 'nan'"),
    (["pretrained", "build", "entry", "--work-dir", "{file}"], "--work-dir: {file} is a file"),
    (["pretrained", "build", "entry", "--workers", "0"], "--workers: expected a positive integer"),
    (["pretrained", "train", "--epochs", "0"], "--epochs: expected a positive integer"),
    (["pretrained", "train", "--data-dir", "{missing}"], "--data-dir: {missing}: no such folder"),
    (["pretrained", "download", "--cache-dir", "{file}"], "--cache-dir: {file} is a file"),
    (["pretrained", "verify", "--weights-dir", "{file}"], "--weights-dir: {file} is a file; expected a folder"),
    (["experiment", "lu-table1", "--cr", "4,5"], "--cr: expected a compression ratio"),
    (["experiment", "lu-table1", "--seed", "-1"], "--seed: expected an integer >= 0"),
    (["experiment", "lu-table1", "--epochs", "0"], "--epochs: expected a positive integer"),
    (["experiment", "lu-table1", "--train-samples", "x"], "--train-samples: expected a positive integer"),
    (["experiment", "lu-table1", "--out", "{file}"], "--out: {file} is a file"),
    (["experiment", "lu-table1", "--teachers", "{file}"], "--teachers: {file} is a file"),
    (["experiment", "kong-fig2", "--iterations", "0"], "--iterations: expected a positive integer"),
    (["experiment", "kong-fig2", "--width", "-1"], "--width: expected a positive finite number"),
    (["experiment", "kong-fig2", "--powers", "0,nan"], "--powers: expected a finite number, got 'nan'"),
    (["experiment", "zhang-fig5", "--users", "0"], "--users: expected a positive integer"),
    (["experiment", "zhang-fig5", "--max-delay", "0"], "--max-delay: expected a positive finite number"),
]


@pytest.fixture
def paths(tmp_path, monkeypatch):
    """``{file, dir, missing}`` paths, with the working folder in ``tmp_path`` (default outputs land there)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file.keras").write_bytes(b"not a model")
    (tmp_path / "a_dir").mkdir()
    return {"file": str(tmp_path / "a_file.keras"), "dir": str(tmp_path / "a_dir"), "missing": str(tmp_path / "nope")}


def run(argv, capsys):
    """``(exit status, stderr)`` of ``main(argv)``, which must exit in argument parsing."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err


def assert_one_error_line(err, message):
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err and "ZeroDivisionError" not in err and "invalid literal" not in err, err


def test_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({tuple(argv) for argv, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_a_bad_command_line_is_one_error_line(argv, message, paths, capsys):
    status, err = run([arg.format(**paths) for arg in argv], capsys)
    assert status == 2
    assert_one_error_line(err, message.format(**paths))
    assert sorted(p.name for p in Path(paths["dir"]).parent.iterdir()) == ["a_dir", "a_file.keras"]  # nothing written


@pytest.fixture
def unwritable(tmp_path):
    """A folder path that cannot be created: under a read-only folder, or (as root, whom permission bits
    do not stop) under /proc."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        yield str(locked / "out")
        locked.chmod(0o700)
    elif Path("/proc/self").is_dir():
        yield "/proc/mimokd-out"
    else:
        pytest.skip("no location here that root cannot write")


@pytest.mark.parametrize("argv", [["train", "--model", "crnet", "--out"], ["generate", "--out"],
                                  ["ip-kd", "bs-export", "--model", "{file}", "--out"]])
def test_an_unwritable_output_location_is_named(argv, paths, unwritable, capsys):
    status, err = run([arg.format(**paths) for arg in argv] + [unwritable + "/x.npz"], capsys)
    assert status == 2
    assert_one_error_line(err, f"--out: {unwritable}/x.npz cannot be written: ")
    assert "is not writable" in err


def test_a_type_error_is_a_value_error_to_python_callers():
    with pytest.raises(ValueError, match="expected a positive integer, got '0'"):
        argtypes.positive_int("0")
    assert argtypes.compression_ratio("64") == 64 and argtypes.scaling("peak") == "peak"
    assert argtypes.unit_interval("1") == 1.0 and argtypes.nonnegative_int("0") == 0
