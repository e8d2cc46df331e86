"""An export folder is replaced whole or not at all (issue 16, exports): built beside it and swapped
in, a failure or a real SIGKILL leaves the old export byte-identical, a folder that is not an export
is refused, and a checkpoint with NaN weights is named before any export work. A report's model
folder (``mimokd report``) is replaced the same way."""

import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mimokd.channels import load_csi
from mimokd.cli import main
from mimokd.export import artifacts, report
from mimokd.export.artifacts import export_model
from mimokd.export.report import report_model
from mimokd.fileio import atomic_dir
from mimokd.zoo import create_model

ONNX = {"parts": ["encoder"], "formats": ["onnx"]}


def tree(path):
    """``{relative name: bytes}`` of every file under ``path``."""
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def check():
    return load_csi("builtin-indoor", split="test", num_samples=16)


@pytest.fixture(scope="module")
def old_export(tmp_path_factory, check):
    """A 1/32 crnet_se export (encoder and decoder, ONNX) and its files: (folder, tree)."""
    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("exports") / "export"
    export_model(create_model("crnet_se", cr=32), out, calibration=None, check=check, formats=["onnx"])
    return out, tree(out)


@pytest.fixture
def export(old_export, tmp_path):
    folder, files = old_export
    copy = tmp_path / "export"
    copy.mkdir()
    for name, raw in files.items():
        (copy / name).write_bytes(raw)
    return copy, files


def test_another_model_replaces_the_export_whole(export, check):
    out, _ = export
    manifest = export_model(create_model("crnet_se", cr=16), out, calibration=None, check=check, **ONNX)
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "manifest.json"]  # no 1/32 decoder left
    assert manifest["model"] == "crnet_se_cr16" and manifest["artifacts"][0]["path"] == str(out / "encoder.onnx")
    assert hidden(out.parent) == []


def test_a_failure_mid_export_leaves_the_old_export(export, check, monkeypatch):
    out, files = export
    real = artifacts.write_artifact
    calls = []

    def dies_on_the_second(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C between two artifacts
        return real(*args, **kwargs)

    monkeypatch.setattr(artifacts, "write_artifact", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        export_model(create_model("crnet_se", cr=16), out, calibration=None, check=check, formats=["onnx"])
    assert calls[0].parent != out  # built beside the export, not in it
    assert tree(out) == files and hidden(out.parent) == []


KILLED = textwrap.dedent("""
    import sys, time
    from mimokd.channels import load_csi
    from mimokd.export import artifacts, report
    from mimokd.zoo import create_model

    real = artifacts.write_artifact
    def write_then_wait(*args, **kwargs):
        path = real(*args, **kwargs)
        print("written", flush=True)
        time.sleep(120)
        return path
    artifacts.write_artifact = write_then_wait
    check = load_csi("builtin-indoor", split="test", num_samples=16)
    artifacts.export_model(create_model("crnet_se", cr=16), sys.argv[1], calibration=None, check=check,
                           formats=["onnx"])
""")


def test_sigkill_during_an_export_leaves_the_old_export(export, check):
    out, files = export
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "written"  # one artifact of the new model is on disk
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert tree(out) == files
    manifest = export_model(create_model("crnet_se", cr=16), out, calibration=None, check=check, **ONNX)
    assert manifest["model"] == "crnet_se_cr16" and sorted(tree(out)) == ["encoder.onnx", "manifest.json"]


def test_a_kill_between_the_two_renames_is_undone_by_the_next_swap(tmp_path, monkeypatch):
    from mimokd import fileio

    path = tmp_path / "export"
    path.mkdir()
    (path / "manifest.json").write_text("old")
    monkeypatch.setattr(fileio, "_exchange", lambda a, b: False)  # a system without renameat2
    real = os.replace

    def killed_after_the_first(src, dst):
        real(src, dst)
        if str(dst).endswith(".old"):
            raise SystemExit("killed")

    monkeypatch.setattr(fileio.os, "replace", killed_after_the_first)
    with pytest.raises(SystemExit):
        with atomic_dir(path) as tmp:
            (tmp / "manifest.json").write_text("new")
    monkeypatch.setattr(fileio.os, "replace", real)
    assert not path.exists() and (tmp_path / ".export.old" / "manifest.json").read_text() == "old"
    with pytest.raises(RuntimeError):
        with atomic_dir(path):  # puts the old folder back first
            raise RuntimeError("another failed export")
    assert tree(path) == {"manifest.json": b"old"} and hidden(tmp_path) == []


def test_a_folder_that_is_not_an_export_is_refused(tmp_path, check):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"weights")
    with pytest.raises(ValueError, match=f"{run} holds files that are not an export's \\(best.keras\\)"):
        export_model(create_model("crnet_se", cr=32), run, calibration=None, check=check, **ONNX)
    assert tree(run) == {"best.keras": b"weights"}


def test_a_checkpoint_with_nan_weights_is_named_before_any_export(tmp_path, capsys):
    model = create_model("crnet_se", cr=32)
    weight = model.decoder.weights[0]
    values = np.array(weight.numpy())
    values.flat[3] = np.nan
    weight.assign(values)
    checkpoint = tmp_path / "diverged.keras"
    model.save(checkpoint)
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--data", "no-such-source"]) == 1
    err = capsys.readouterr().err  # the checkpoint is named, not the (bad) data nor an artifact
    assert f"error: checkpoint {checkpoint} is broken: weight {weight.path} holds 1 NaN or infinite value(s)" in err
    assert not out.exists()
    with pytest.raises(ValueError, match=f"model '{model.name}' is broken: weight {weight.path}"):
        export_model(model, out, calibration=None, check=np.full((4, 2, 32, 32), 0.5, np.float32), **ONNX)
    assert not out.exists()


REPORT = {"calibration": None, "formats": ["onnx"], "warmup": 0, "runs": 1}


def test_a_report_replaces_its_model_folder_whole(export, check):
    out, _ = export  # what an earlier report or export left: a 1/32 encoder and decoder
    _, rows = report_model(create_model("crnet_se", cr=16), out, check=check, **REPORT)
    assert sorted(tree(out)) == ["encoder.onnx"]  # no 1/32 decoder, nor the old manifest, left
    assert rows[0]["path"] == str(out / "encoder.onnx") and hidden(out.parent) == []


def test_a_failure_mid_report_leaves_the_old_folder(export, check, monkeypatch):
    out, files = export
    paths = []

    def interrupted(runner, sample, **kwargs):
        paths.append(sorted(out.parent.glob(".export.*/encoder.onnx")))
        raise KeyboardInterrupt  # a Ctrl-C while timing the first artifact

    monkeypatch.setattr(report, "measure_latency", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report_model(create_model("crnet_se", cr=16), out, check=check, **REPORT)
    assert len(paths[0]) == 1  # the new artifact was built beside the folder, not in it
    assert tree(out) == files and hidden(out.parent) == []


def test_a_report_refuses_a_folder_that_is_not_a_report(tmp_path, check):
    run = tmp_path / "crnet4"  # `mimokd report --checkpoint runs/crnet4/best.keras --out runs` would aim here
    run.mkdir()
    (run / "best.keras").write_bytes(b"weights")
    with pytest.raises(ValueError, match=f"{run} holds files that are not an export's \\(best.keras\\)"):
        report_model(create_model("crnet_se", cr=32), run, check=check, **REPORT)
    assert tree(run) == {"best.keras": b"weights"}
