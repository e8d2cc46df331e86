"""Making entries: `mimokd pretrained register` (measure + store a trained model), `train` (a new
entry by a recipe, vanilla or KD from a registered teacher) and `build` (re-create an entry from its
recipe), on tiny models and splits."""

import keras
import numpy as np
import pytest

from mimokd.cli import main
from mimokd.pretrained import registry
from mimokd.channels.recipes import split_samples
from mimokd.pretrained.build import as_preset, build_entry, code_commit, describe_schedule, measure_entry, train_entry
from mimokd.pretrained.registry import Metrics, PretrainedEntry, Recipe, entry_file_name
from mimokd.pretrained.storage import file_digest, load_entry_weights
from mimokd.train.vanilla import evaluate_autoencoder
from mimokd.zoo import create_model

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

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
    old = measure_entry("csinet", 64, "cost2100-indoor", create_model("csinet", cr=64), recipe=RECIPE,
                        test_samples=6, out_dir=tmp_path / "old", log=lambda *_: None)
    monkeypatch.setattr(registry, "ENTRIES", (old,))
    new = build_entry(old.name, work_dir=tmp_path / "work", out_dir=tmp_path / "new", jit_compile=False,
                      log=lambda *_: None)
    assert new.name == old.name and new.recipe.epochs == 1 and new.metrics.test_samples == 6
    assert (tmp_path / "work" / "run" / "log.csv").exists()  # trained per the recipe
    assert (tmp_path / "new" / new.file).exists() and np.isfinite(new.metrics.nmse_db)
    assert new.sha256 != old.sha256  # trained weights, not the old file


def _registered_teacher(tmp_path, monkeypatch, model="crnet_cui"):
    """A tiny trained-looking teacher entry at 1/64, its file in $MIMOKD_WEIGHTS_DIR."""
    weights = tmp_path / "teacher-weights"
    teacher = measure_entry(model, 64, "cost2100-indoor", create_model(model, cr=64), recipe=RECIPE, test_samples=4,
                            out_dir=weights, log=lambda *_: None)
    monkeypatch.setattr(registry, "ENTRIES", (teacher,))
    monkeypatch.setenv("MIMOKD_WEIGHTS_DIR", str(weights))
    return teacher, weights / teacher.file


def test_train_entry_distills_a_student_from_the_registered_teacher_by_encoder_kd(tmp_path, monkeypatch):
    teacher, teacher_file = _registered_teacher(tmp_path, monkeypatch)
    before = file_digest(teacher_file)
    recipe = Recipe(**{**RECIPE.__dict__, "method": "encoder-kd", "teacher": teacher.name,
                       "schedule": describe_schedule("encoder-kd", 1)})
    entry = train_entry("crnet_se", 64, "cost2100-indoor", recipe, work_dir=tmp_path / "work", test_samples=6,
                        out_dir=tmp_path / "out", jit_compile=False, log=lambda *_: None)
    run = tmp_path / "work" / "run"
    assert (run / "distill" / "log.csv").exists() and (run / "finetune" / "log.csv").exists()  # both steps ran
    assert entry.recipe.method == "encoder-kd" and entry.recipe.teacher == teacher.name
    assert entry.recipe.commit == code_commit()  # the checkout's hash ("" in an installed copy outside git)
    # the stored file is a crnet_se preset: its encoder is the distilled one, its decoder the fine-tuned
    # copy of the teacher's (moved away from the teacher's by step 3), and its figures are its own
    stored = create_model("crnet_se", cr=64)
    load_entry_weights(stored, tmp_path / "out" / entry.file)
    finetuned = keras.saving.load_model(run / "finetune" / "best.keras")
    for got, want in zip(stored.weights, finetuned.encoder.weights + finetuned.decoder.weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-3)  # float16 storage
    test = split_samples("cost2100-indoor", "test", 6, 3)
    assert entry.metrics.nmse_db == pytest.approx(evaluate_autoencoder(stored, test["HT"])["nmse_db"], abs=1e-4)
    assert file_digest(teacher_file) == before  # the teacher's file is untouched


def test_train_entry_codeword_mimic_and_the_cli(tmp_path, monkeypatch, capsys):
    teacher, _ = _registered_teacher(tmp_path, monkeypatch, model="crnet")
    args = ["pretrained", "train", "--model", "bcrnet", "--cr", "64", "--dataset", "cost2100-indoor",
            "--method", "codeword-mimic", "--teacher", teacher.name, "--epochs", "1", "--batch-size", "20",
            "--train-samples", "40", "--val-samples", "10", "--seed", "3", "--test-samples", "6",
            "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path / "out"), "--machine", "a test"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    entry = eval(printed[printed.index("PretrainedEntry("):printed.rindex(")") + 1],
                 {"PretrainedEntry": PretrainedEntry, "Recipe": Recipe, "Metrics": Metrics})
    assert entry.model == "bcrnet" and entry.recipe.method == "codeword-mimic"
    assert entry.recipe.schedule.startswith("codeword mimic") and entry.recipe.machine == "a test"
    assert (tmp_path / "work" / "run" / "stages.json").exists()  # the mimic stage's codeword MSE
    stored = create_model("bcrnet", cr=64)
    load_entry_weights(stored, tmp_path / "out" / entry.file)


def test_train_entry_refuses_a_missing_or_mismatched_teacher_and_data(tmp_path, monkeypatch):
    teacher, _ = _registered_teacher(tmp_path, monkeypatch)
    kd = {**RECIPE.__dict__, "method": "encoder-kd"}
    with pytest.raises(ValueError, match="needs a teacher"):
        train_entry("crnet_se", 64, "cost2100-indoor", Recipe(**kd), work_dir=tmp_path / "w")
    with pytest.raises(ValueError, match="1/64 on cost2100-indoor; the student is 1/32"):
        train_entry("crnet_se", 32, "cost2100-indoor", Recipe(**{**kd, "teacher": teacher.name}),
                    work_dir=tmp_path / "w")
    with pytest.raises(registry.UnknownEntryError):
        train_entry("crnet_se", 64, "cost2100-indoor", Recipe(**{**kd, "teacher": "crnet_cui-cr64-nowhere"}),
                    work_dir=tmp_path / "w")
    from mimokd.channels.shards import write_dataset

    write_dataset("cost2100-indoor", tmp_path / "seed0", samples=4, split="train", seed=0, progress=False)
    with pytest.raises(ValueError, match="seed 0; the entry is of cost2100-indoor seed 3"):
        train_entry("crnet", 64, "cost2100-indoor", Recipe(**RECIPE.__dict__), work_dir=tmp_path / "w",
                    data_dir=tmp_path / "seed0")


def test_train_entry_starts_from_the_init_entry_and_refuses_another_model(tmp_path, monkeypatch):
    """``Recipe.init`` (``--init``): the run starts from that entry's stored weights (loaded with its
    checksum verified), the recipe and the table say so; another model is refused."""
    from mimokd.train import methods

    start, start_file = _registered_teacher(tmp_path, monkeypatch, model="csinet")
    stored = create_model("csinet", cr=64)
    load_entry_weights(stored, start_file)
    seen = []
    real = methods.fit_method

    def spy(*args, init=None, **kwargs):
        seen.append(init)
        return real(*args, init=init, **kwargs)

    monkeypatch.setattr(methods, "fit_method", spy)
    recipe = Recipe(**{**RECIPE.__dict__, "init": start.name})
    entry = train_entry("csinet", 64, "cost2100-indoor", recipe, work_dir=tmp_path / "work", test_samples=6,
                        out_dir=tmp_path / "out", jit_compile=False, log=lambda *_: None)
    assert len(seen) == 1
    for got, want in zip(seen[0].weights, stored.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert entry.recipe.init == start.name
    monkeypatch.setattr(registry, "ENTRIES", (start, entry.__class__(**{**entry.__dict__, "dataset": "other"})))
    assert f"started from {start.name}" in registry.registry_table(dataset="other")
    with pytest.raises(ValueError, match="are of csinet; the entry is crnet 1/64: init must be an entry of the same"):
        train_entry("crnet", 64, "cost2100-indoor", recipe, work_dir=tmp_path / "w")


def test_as_preset_copies_encoder_and_decoder_and_refuses_other_shapes():
    source = create_model("crnet_cui", cr=64)
    se = create_model("crnet_se", cr=64)
    from mimokd.zoo import ComposedAutoencoder

    joined = ComposedAutoencoder.from_parts(se.encoder, source.decoder)
    preset = as_preset(joined, "crnet_se", 64)
    csi = np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(preset.predict(csi, verbose=0), joined.predict(csi, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="does not fit crnet 1/64's encoder"):
        as_preset(joined, "crnet", 64)


def test_describe_schedule_names_each_method_and_refuses_unknown_ones():
    assert describe_schedule("vanilla", 3) == "Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE"
    assert "then 1 epoch(s) fine-tuning" in describe_schedule("encoder-kd", 4)
    assert "over the first 2" in describe_schedule("codeword-mimic", 10)
    with pytest.raises(ValueError, match="Unknown training method"):
        describe_schedule("magic", 1)


def test_measure_entry_reads_the_test_split_from_a_dataset_folder_as_it_would_generate_it(tmp_path):
    from mimokd.channels.shards import write_dataset

    write_dataset("cost2100-indoor", tmp_path / "data", samples=6, split="test", seed=3, progress=False)
    model = create_model("crnet", cr=64)
    lines = []
    read = measure_entry("crnet", 64, "cost2100-indoor", model, recipe=RECIPE, test_samples=6,
                         out_dir=tmp_path / "a", data_dir=tmp_path / "data", log=lines.append)
    generated = measure_entry("crnet", 64, "cost2100-indoor", model, recipe=RECIPE, test_samples=6,
                              out_dir=tmp_path / "b", log=lines.append)
    assert lines[0].startswith("reading 6 test samples") and any(line.startswith("generating") for line in lines)
    assert read.metrics == generated.metrics
    lines.clear()  # a folder with too few test samples is not used
    measure_entry("crnet", 64, "cost2100-indoor", model, recipe=RECIPE, test_samples=8, out_dir=tmp_path / "c",
                  data_dir=tmp_path / "data", log=lines.append)
    assert lines[0].startswith("generating 8 test samples")
