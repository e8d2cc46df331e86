"""The `mimokd export` and `mimokd report` commands."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from mimokd.cli import main
from mimokd.export import formats
from mimokd.export.artifacts import ENCODER
from mimokd.export.runtimes import load_runner

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

DATA = ["--calibration-samples", "64", "--test-samples", "32"]


def test_export_models(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--models", "crnet_se", "--cr", "32", "--formats", "onnx", "tflite-f32",
                 "--out", str(out), *DATA]) == 0
    folder = out / "crnet_se_cr32"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == "crnet_se_cr32"
    assert (manifest["check_samples"], manifest["calibration_samples"]) == (32, 64)
    assert [(a["part"], a["format"]) for a in manifest["artifacts"]] == [
        ("encoder", "onnx"), ("encoder", "tflite-f32"), ("decoder", "onnx"), ("decoder", "tflite-f32")]
    assert sorted(p.name for p in folder.iterdir()) == [
        "decoder.f32.tflite", "decoder.onnx", "encoder.f32.tflite", "encoder.onnx", "manifest.json"]
    printed = capsys.readouterr()
    for a in manifest["artifacts"]:  # the results on stdout, the progress on stderr
        assert f"{a['path']}: {a['size_bytes']:,} B" in printed.out
        assert f"{a['part']} [" in printed.err and f"] {a['format']}: converting" in printed.err
    assert f"wrote {folder / 'manifest.json'}" in printed.err and "done in" in printed.err


def test_export_checkpoint(tmp_path, capsys):
    from mimokd.channels import load_csi
    from mimokd.zoo import create_model

    keras.utils.set_random_seed(7)
    model = create_model("csinet", cr=32)
    checkpoint = tmp_path / "run" / "best.keras"
    checkpoint.parent.mkdir()
    model.save(checkpoint)
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(checkpoint), "--parts", "encoder", "--formats", "onnx",
                 "--out", str(out), *DATA]) == 0
    # one checkpoint: straight into --out (no per-model folder)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == model.name
    assert [(a["part"], a["format"]) for a in manifest["artifacts"]] == [("encoder", "onnx")]
    test = load_csi("builtin-indoor", split="test", num_samples=32)
    runner = load_runner(out / "encoder.onnx", "onnx", ENCODER)
    np.testing.assert_allclose(runner(test), keras.ops.convert_to_numpy(model.encoder(test, training=False)),
                               rtol=1e-5, atol=1e-5)
    capsys.readouterr()


def test_export_errors(tmp_path, capsys):
    out = tmp_path / "export"
    with pytest.raises(SystemExit) as exit_:  # the parser checks that the file exists
        main(["export", "--checkpoint", str(tmp_path / "missing.keras"), "--out", str(out), *DATA])
    assert exit_.value.code == 2 and f"{tmp_path / 'missing.keras'}: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # a usage error, refused before any work
        main(["export", "--out", str(out), *DATA])
    assert exit_.value.code == 2 and "export: error: give the models to export" in capsys.readouterr().err
    assert main(["export", "--models", "crnett", "--out", str(out), *DATA]) == 1
    assert "Unknown model name" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses an unknown format
        main(["export", "--models", "crnet_se", "--formats", "tflite-int4", "--out", str(out)])
    assert "invalid choice: 'tflite-int4'" in capsys.readouterr().err
    assert not out.exists()


def test_export_parity_failure_is_exit_code_3(tmp_path, monkeypatch, capsys):
    # an NMSE budget no artifact can keep: the parity check must fail, and the command with it
    monkeypatch.setitem(formats.FORMATS, "onnx", dataclasses.replace(formats.FORMATS["onnx"], max_nmse_loss_db=-1.0))
    out = tmp_path / "export"
    assert main(["export", "--models", "crnet_se", "--cr", "32", "--parts", "encoder", "--formats", "onnx",
                 "--out", str(out), *DATA]) == 3
    err = capsys.readouterr().err
    assert "error: The onnx artifact" in err and "the format allows -1 dB" in err
    failed = out / "crnet_se_cr32.failed"
    assert f"({out / 'crnet_se_cr32'} is unchanged; the artifacts are kept in {failed} for inspection)" in err
    assert sorted(p.name for p in out.iterdir()) == ["crnet_se_cr32.failed"]  # nothing in the export's place
    assert (failed / "encoder.onnx").is_file() and not (failed / "manifest.json").exists()


def test_report(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--models", "crnet_se", "--cr", "32", "--formats", "onnx", "tflite-f32",
                 "--runs", "10", "--warmup", "1", "--out", str(out), *DATA]) == 0
    text = (out / "report.md").read_text()
    assert text.startswith("# Deployment report")
    assert "latency: single sample, median / p90 of 10 calls after 1 warm-up calls" in text
    report = json.loads((out / "report.json").read_text())
    assert [(c["model"], c["part"]) for c in report["complexity"]] == [("crnet_se_cr32", "encoder")]
    assert report["complexity"][0]["flops"] == 339_904  # Cui et al. Table III
    assert [(a["model"], a["format"], a["latency_runs"]) for a in report["artifacts"]] == [
        ("crnet_se_cr32", "onnx", 10), ("crnet_se_cr32", "tflite-f32", 10)]
    assert all(a["latency_median_us"] > 0 for a in report["artifacts"])
    assert (out / "crnet_se_cr32" / "encoder.onnx").is_file()
    for name in ("nmse_vs_flops.png", "latency.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr()
    assert "## Fastest artifact per part" in printed.out and "wrote" in printed.err


def test_threads_option_after_tensorflow_has_started(tmp_path):
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # the runtime has started, as after any earlier command in this process
    assert main(["export", "--models", "crnet_se", "--cr", "32", "--parts", "encoder", "--formats", "onnx",
                 "--out", str(tmp_path), *DATA, "--threads", "3"]) == 0


def test_compress_prunes_and_quantizes_a_checkpoint(tmp_path, capsys):
    from mimokd.train.checkpoints import load_checkpoint
    from mimokd.zoo import create_model

    checkpoint = tmp_path / "model.keras"
    create_model("crnet_se", cr=32).save(checkpoint)
    out = tmp_path / "compressed"
    assert main(["compress", "--checkpoint", str(checkpoint), "--prune", "0.5", "--qat", "--epochs", "1",
                 "--out", str(out), "--train-samples", "64", "--test-samples", "32"]) == 0
    summary = json.loads((out / "compress.json").read_text())
    assert summary["pruning"]["sparsity"] == {"enc_dense": 0.5}
    assert summary["pruning"]["encoder_zlib_bytes"] < summary["encoder_zlib_bytes"]  # zeros compress
    pruned = load_checkpoint(out / "pruned.keras")
    kernel = keras.ops.convert_to_numpy(pruned.encoder.get_layer("enc_dense").kernel)
    assert np.mean(kernel == 0) == 0.5
    qat = summary["qat"]
    assert qat["failure"] is None and qat["format"] == "tflite-int8"
    assert (out / "encoder.qat-int8.tflite").stat().st_size == qat["size_bytes"]
    assert qat["latency_median_us"] > 0
    printed = capsys.readouterr()
    assert "QAT int8 encoder" in printed.out
    for label in ("pruning to sparsity 0.5", "quantization-aware training"):  # a line per fine-tuning epoch
        assert f"{label}: epoch 1/1, codeword MSE" in printed.err


def test_compress_needs_something_to_do(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(b"never read")
    with pytest.raises(SystemExit) as exit_:
        main(["compress", "--checkpoint", str(tmp_path / "model.keras")])
    assert exit_.value.code == 2 and "compress: error: nothing to do: give --prune" in capsys.readouterr().err
