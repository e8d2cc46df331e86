"""The main job end to end at a tiny scale: data, three trainings, KD, export, tables."""

import json

import numpy as np

from mimokd.pipeline import run_pipeline
from mimokd.train import TrainConfig


def test_tiny_pipeline_writes_results_and_checked_artifacts(tmp_path):
    rows = run_pipeline(
        out_dir=tmp_path, cr=32, samples=(100, 50, 50), config=TrainConfig(epochs=1, batch_size=25),
    )
    assert [r["role"] for r in rows] == ["teacher", "student", "student, encoder-kd"]
    assert all(np.isfinite(r["nmse_db"]) for r in rows)

    results = json.loads((tmp_path / "results.json").read_text())
    exported = {a["format"]: a for a in results["exported"]}
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert exported == {a["format"]: a for a in manifest["artifacts"]}
    assert {"savedmodel", "onnx", "tflite-f32", "tflite-int8"} <= set(exported)
    for artifact in exported.values():
        assert artifact["part"] == "encoder"
        assert (tmp_path / "export").joinpath(artifact["path"].split("/")[-1]).exists()
        # the encoder artifact, run in its runtime and decoded by the Keras decoder, reproduces
        # the distilled student's NMSE on the test split
        assert abs(artifact["nmse_db_keras"] - rows[-1]["nmse_db"]) < 1e-3
        assert artifact["max_abs_diff"] <= artifact["allowed_abs_diff"]
    text = (tmp_path / "results.md").read_text()
    assert "tflite-int8" in text and "student, encoder-kd" in text
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
