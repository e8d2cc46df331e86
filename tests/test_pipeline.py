"""The main job end to end at a tiny scale: data, the teacher (pretrained or trained), KD, export, tables."""

import json
import logging

import numpy as np
import pytest

from mimokd.pipeline import run_pipeline
from mimokd.pretrained import registry
from mimokd.pretrained.registry import Metrics, Recipe, entry_file_name
from mimokd.pretrained.storage import make_entry, save_entry_weights
from mimokd.train import TrainConfig
from mimokd.train.vanilla import evaluate_autoencoder
from mimokd.zoo import create_model

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py


# the formats of each runtime (TensorFlow, ONNX Runtime, LiteRT float and int8); tests/test_export.py
# checks every format, the default of run_pipeline
FORMATS = ["savedmodel", "onnx", "tflite-f32", "tflite-int8"]


def test_tiny_pipeline_writes_results_and_checked_artifacts(tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO, logger="mimokd")
    rows = run_pipeline(
        out_dir=tmp_path, teacher="crnet", student="bcrnet", cr=32, samples=(100, 50, 50),
        config=TrainConfig(epochs=1, batch_size=25), formats=FORMATS,
    )
    # no pretrained crnet at 1/32: the teacher is trained here
    assert [r["role"] for r in rows] == ["teacher", "student", "student, encoder-kd"]
    assert all(np.isfinite(r["nmse_db"]) for r in rows)
    # the papers' figures (Lu et al. Table I, indoor COST2100) beside ours
    assert [r["paper_nmse_db"] for r in rows] == [-8.93, -7.87, None]

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["data"] == "cost2100-indoor" and results["teacher_entry"] is None
    exported = {a["format"]: a for a in results["exported"]}
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert exported == {a["format"]: a for a in manifest["artifacts"]}
    assert list(exported) == FORMATS  # the formats asked for, in that order
    for artifact in exported.values():
        assert artifact["part"] == "encoder"
        assert (tmp_path / "export").joinpath(artifact["path"].split("/")[-1]).exists()
        # the encoder artifact, run in its runtime and decoded by the Keras decoder, reproduces
        # the distilled student's NMSE on the test split
        assert abs(artifact["nmse_db_keras"] - rows[-1]["nmse_db"]) < 1e-3
        assert artifact["max_abs_diff"] <= artifact["allowed_abs_diff"]
    text = (tmp_path / "results.md").read_text()
    assert "tflite-int8" in text and "student, encoder-kd" in text and "lower is better" in text
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # progress goes to the mimokd loggers, a step at a time; the library prints nothing
    steps = [m[:5] for m in caplog.messages if m.startswith("[")]
    assert steps == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    n = len(exported)  # and a line per exported artifact
    assert [m for m in caplog.messages if m.startswith("encoder [")] == [
        f"encoder [{k}/{n}] {a['format']}: converting, then checking in {a['runtime']}"
        for k, a in enumerate(results["exported"], 1)]
    assert capsys.readouterr().out.count("\n") < 10  # Keras' progress bars at most, no tables


def test_pipeline_starts_from_a_registered_pretrained_teacher(tmp_path, monkeypatch):
    # registered crnet and bcrnet 1/64 entries whose files lie in an offline weights folder
    weights = tmp_path / "weights"
    recipe = Recipe(data="cost2100-indoor", data_seed=0, train_samples=10, epochs=1, batch_size=5, schedule="test")
    metrics = Metrics(nmse_db=0.0, nmse_db_per_batch=0.0, rho=0.0, test_samples=1)
    models, entries = {name: create_model(name, cr=64) for name in ("crnet", "bcrnet")}, []
    for name, model in models.items():
        path = weights / entry_file_name(name, 64, "cost2100-indoor")
        save_entry_weights(model, path)
        entries.append(make_entry(name, 64, "cost2100-indoor", path, recipe=recipe, metrics=metrics))
    monkeypatch.setattr(registry, "ENTRIES", tuple(entries))
    teacher = models["crnet"]
    out = tmp_path / "run"
    rows = run_pipeline(out_dir=out, cr=64, samples=(60, 30, 30), config=TrainConfig(epochs=1, batch_size=30),
                        teacher="crnet", student="bcrnet", weights_dir=weights, method="output-kd",
                        formats=["tflite-int8"])
    assert [r["role"] for r in rows] == ["teacher (pretrained)", "student", "student (pretrained)", "student, output-kd"]
    assert not (out / "teacher_crnet_cr64").exists()  # not trained here
    # the pretrained teacher's row is the stored weights' NMSE on the test split (float16 storage)
    from mimokd.channels import load_csi

    csi = load_csi(out / "data" / "DATA_Htestin.mat")
    expected = evaluate_autoencoder(teacher, csi, batch_size=30)["nmse_db"]
    assert abs(rows[0]["nmse_db"] - expected) < 0.05
    results = json.loads((out / "results.json").read_text())
    assert results["teacher_entry"] == "crnet-cr64-cost2100-indoor"
    assert [a["format"] for a in results["exported"]] == ["tflite-int8"]
