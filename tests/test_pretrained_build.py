"""Making entries: `mimokd pretrained register` (measure + store a trained model) and `build`
(re-create an entry from its recipe), on tiny models and splits."""

import numpy as np
import pytest

from mimokd.cli import main
from mimokd.pretrained import registry
from mimokd.channels.recipes import split_samples
from mimokd.pretrained.build import build_entry, measure_entry
from mimokd.pretrained.registry import Metrics, PretrainedEntry, Recipe, entry_file_name
from mimokd.pretrained.storage import file_digest, load_entry_weights
from mimokd.train.vanilla import evaluate_autoencoder
from mimokd.zoo import create_model

RECIPE = Recipe(data="cost2100-indoor", data_seed=3, train_samples=40, val_samples=10, epochs=1, batch_size=20,
                schedule="warm-up cosine")


def test_register_stores_the_model_and_measures_the_stored_file(tmp_path, capsys):
    trained = create_model("crnet", cr=64)
    source = tmp_path / "trained.weights.h5"
    trained.save_weights(source)
    out = tmp_path / "weights"
    args = ["pretrained", "register", "--model", "crnet", "--cr", "64", "--dataset", "cost2100-indoor",
            "--weights", str(source), "--seed", "3", "--test-samples", "12", "--train-samples", "40",
            "--epochs", "1", "--batch-size", "20", "--schedule", "warm-up cosine", "--out-dir", str(out),
            "--paper-nmse", "-6.49", "--paper-source", "Lu et al. (CRNet), indoor"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    stanza = printed[printed.index("PretrainedEntry("):printed.rindex(")") + 1]
    entry = eval(stanza, {"PretrainedEntry": PretrainedEntry, "Recipe": Recipe, "Metrics": Metrics})
    path = out / entry_file_name("crnet", 64, "cost2100-indoor")
    assert entry.file == path.name and (entry.sha256, entry.size) == file_digest(path)
    assert entry.metrics.paper_nmse_db == -6.49 and entry.metrics.test_samples == 12
    # the figures are those of the stored file, measured independently here
    stored = create_model("crnet", cr=64)
    load_entry_weights(stored, path)
    test = split_samples("cost2100-indoor", "test", 12, 3)
    expected = evaluate_autoencoder(stored, test["HT"], hf=test["HF"])
    assert entry.metrics.nmse_db == pytest.approx(expected["nmse_db"], abs=1e-4)
    assert entry.metrics.rho == pytest.approx(expected["rho"], abs=1e-5)
    # float16 storage was kept because it cost at most 0.01 dB
    assert entry.dtype == "float16"
    assert abs(evaluate_autoencoder(trained, test["HT"])["nmse_db"] - expected["nmse_db"]) <= 0.01


def test_measure_entry_falls_back_to_float32_when_float16_costs_more_than_the_tolerance(tmp_path, monkeypatch):
    from mimokd.pretrained import build

    monkeypatch.setattr(build, "FLOAT16_TOLERANCE_DB", -1.0)  # nothing is close enough
    entry = measure_entry("crnet", 64, "cost2100-indoor", create_model("crnet", cr=64), recipe=RECIPE,
                          test_samples=4, out_dir=tmp_path, log=lambda *_: None)
    assert entry.dtype == "float32"


def test_build_re_creates_an_entry_from_its_recipe(tmp_path, monkeypatch):
    old = measure_entry("crnet", 64, "cost2100-indoor", create_model("crnet", cr=64), recipe=RECIPE,
                        test_samples=6, out_dir=tmp_path / "old", log=lambda *_: None)
    monkeypatch.setattr(registry, "ENTRIES", (old,))
    new = build_entry(old.name, work_dir=tmp_path / "work", out_dir=tmp_path / "new", log=lambda *_: None)
    assert new.name == old.name and new.recipe.epochs == 1 and new.metrics.test_samples == 6
    assert (tmp_path / "work" / "run" / "log.csv").exists()  # trained per the recipe
    assert (tmp_path / "new" / new.file).exists() and np.isfinite(new.metrics.nmse_db)
    assert new.sha256 != old.sha256  # trained weights, not the old file
    student = PretrainedEntry(**{**old.__dict__, "recipe": Recipe(**{**RECIPE.__dict__, "method": "encoder-kd",
                                                                          "teacher": "crnet_cui-cr64-x"})})
    monkeypatch.setattr(registry, "ENTRIES", (student,))
    with pytest.raises(ValueError, match="only vanilla recipes"):
        build_entry(old.name, work_dir=tmp_path / "w2")
