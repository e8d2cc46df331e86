"""Experiments: configs are consistent, a tiny table runs end to end, resumes, refuses mixed scales;
``fit_method`` dispatches every method."""

import json
import logging

import keras
import numpy as np
import pytest

from mimokd.experiments import EXPERIMENTS, Experiment, Run, Scale, get_experiment, run_experiment
from mimokd.metrics import nmse_db
from mimokd.train import TrainConfig
from mimokd.train.methods import METHODS, NEEDS_TEACHER, fit_method
from mimokd.zoo import create_model, list_models

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

TINY = Scale(train=40, val=20, test=20, epochs=1, batch_size=20, teacher_epochs=2)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_configs_name_registered_models_and_paper_numbers(name):
    experiment = get_experiment(name)
    assert experiment.name == name
    assert experiment.teacher in list_models()
    assert set(experiment.ratios) <= set(experiment.teacher_paper)  # the teacher row has its paper number
    for run in experiment.runs:
        assert run.model in list_models() and run.method in METHODS
        assert set(run.paper) <= set(experiment.ratios)  # paper numbers only for the table's ratios
        for numbers in run.paper.values():
            assert isinstance(numbers["nmse_db"], float)
    slugs = [run.slug for run in experiment.runs]
    labels = [run.label for run in experiment.runs]
    assert len(set(slugs)) == len(slugs) and len(set(labels)) == len(labels)
    if experiment.sweep:
        assert all(experiment.sweep in run.params for run in experiment.runs if run.method != "vanilla")


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="Unknown experiment 'lu-table9'"):
        get_experiment("lu-table9")
    with pytest.raises(ValueError, match="Unknown method 'magic'"):
        Run("x", "crnet_se", "magic")
    with pytest.raises(ValueError, match="Unknown training method"):
        fit_method("magic", "crnet_se", 32, None, None, out_dir=None)
    with pytest.raises(ValueError, match="needs a trained teacher"):
        fit_method("encoder-kd", "crnet_se", 32, None, None, out_dir=None)
    assert set(NEEDS_TEACHER) < set(METHODS)


def test_scale_overrides():
    scale = TINY.with_overrides(epochs=4, train=None)
    assert (scale.epochs, scale.train) == (4, TINY.train)
    assert scale.finetune_epochs() == 1


SWEEP = Experiment(
    name="tiny-sweep",
    title="tiny",
    source="none",
    teacher="csinet",
    teacher_paper={32: {"nmse_db": -7.9}},
    ratios=(32,),
    runs=(
        Run("vanilla", "csinet", paper={32: {"nmse_db": -7.11}}),
        Run("a=0.3", "csinet", "autoencoder-kd", {"alpha": 0.3, "temperature": 5.0}),
    ),
    small=TINY,
    paper=TINY,
    sweep="alpha",
)


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """SWEEP run once, whole, in one folder (trained once for the tests of this file):
    (folder, rows, the messages it logged)."""
    out = tmp_path_factory.mktemp("single")
    logger, handler = logging.getLogger("mimokd"), _Messages()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        rows = run_experiment(SWEEP, out_dir=out, verbose=0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, rows, handler.messages


def test_tiny_experiment_writes_table_plots_and_resumes(single_run):
    tmp_path, rows, messages = single_run
    assert [m for m in messages if m.startswith("-- ")] == [  # a progress line per row
        "-- 1/32: teacher csinet", f"-- 1/32: vanilla ({SWEEP.runs[0].method})", "-- 1/32: a=0.3 (autoencoder-kd)"]
    assert [r["network"] for r in rows] == ["csinet (teacher)", "vanilla", "a=0.3"]
    for name in ("results.md", "results.json", "curves_cr32.png", "sweep.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scale"]["train"] == TINY.train and len(saved["rows"]) == 3
    by_label = {r["network"]: r for r in saved["rows"]}
    assert by_label["vanilla"]["paper_nmse_db"] == -7.11 and "paper_nmse_db" not in by_label["a=0.3"]
    # the gain is the vanilla row's NMSE minus the row's
    assert by_label["a=0.3"]["gain_db"] == pytest.approx(by_label["vanilla"]["nmse_db"] - by_label["a=0.3"]["nmse_db"])
    # the reported NMSE is that of the saved student on the test split
    from mimokd.channels import load_csi

    test = load_csi("builtin-indoor", split="test", num_samples=TINY.test)
    student = keras.saving.load_model(tmp_path / "cr32" / SWEEP.runs[1].slug / "best.keras")
    assert by_label["a=0.3"]["nmse_db"] == pytest.approx(nmse_db(test, student.predict(test, verbose=0)), abs=1e-4)
    assert "| a=0.3 |" in (tmp_path / "results.md").read_text()
    # the teacher trains for its own budget, the students for theirs
    assert len((tmp_path / "teachers" / "csinet_cr32" / "log.csv").read_text().splitlines()) == 1 + 2
    assert len((tmp_path / "cr32" / SWEEP.runs[1].slug / "log.csv").read_text().splitlines()) == 1 + 1

    logs = sorted(tmp_path.rglob("log.csv"))
    stamps = [p.stat().st_mtime_ns for p in logs]
    again = run_experiment(SWEEP, out_dir=tmp_path, verbose=0)  # every row done: nothing retrained
    assert [p.stat().st_mtime_ns for p in logs] == stamps
    assert [r["nmse_db"] for r in again] == [r["nmse_db"] for r in rows]
    with pytest.raises(ValueError, match="another scale or dataset"):
        run_experiment(SWEEP, out_dir=tmp_path, scale=TINY.with_overrides(epochs=2), verbose=0)


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(1)
    x = (0.5 + 0.1 * rng.standard_normal((60, 2, 32, 32))).clip(0, 1).astype("float32")
    return x[:40], x[40:]


@pytest.mark.parametrize("method", ["codeword-mimic", "ip-kd", "sequential"])
def test_fit_method_returns_the_deployable_autoencoder(method, tiny_data, tmp_path):
    train, val = tiny_data
    teacher = create_model("csinet", cr=32)
    before = [w.copy() for w in teacher.get_weights()]
    model, extras, logs = fit_method(method, "csinet", 32, train, val, out_dir=tmp_path, teacher=teacher,
                                     config=TrainConfig(epochs=2, batch_size=20))
    assert model.input_shape == (None, 2, 32, 32) and model.output_shape == (None, 2, 32, 32)
    assert model.codeword_dim == 64
    # every stage's log in training order (one run on one epoch axis); the autoencoder's NMSE is tracked
    assert [log.parent.name for log in logs] == {"codeword-mimic": [tmp_path.name], "ip-kd": ["ue", "bs"],
                                                 "sequential": ["bs", "ue"]}[method]
    tracking = logs[0] if method == "sequential" else logs[-1]
    assert all(log.is_file() for log in logs) and "val_nmse" in tracking.read_text().splitlines()[0]
    assert all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights()))
    if method == "codeword-mimic":
        assert np.isfinite(extras["mse_cm_mid"])
    else:
        assert extras["distill_s"] > 0


def test_rows_split_across_machines_merge_into_the_single_run_table(single_run, tmp_path, monkeypatch, caplog):
    """--rows i/N on two "machines" (own --out, shared --teachers), copied together, --merge: the table of
    a single run over the same run directories; missing rows and teachers are named, nothing trained."""
    import shutil

    from mimokd.cli import main
    from mimokd.experiments import merge_experiment, parse_rows, table_rows

    monkeypatch.setitem(EXPERIMENTS, SWEEP.name, SWEEP)
    assert [(cr, run.label) for cr, run in table_rows(SWEEP)] == [(32, "vanilla"), (32, "a=0.3")]
    assert parse_rows("1/2") == (1, 2) and parse_rows("teachers") == "teachers"
    for bad in ("2/2", "1", "a/2", "-1/2"):
        with pytest.raises(ValueError, match="--rows takes i/N"):
            parse_rows(bad)
    teachers, merged = tmp_path / "teachers", tmp_path / "merged"
    common = ["--teachers", str(teachers)]

    def experiment(out, *options):
        return main(["experiment", SWEEP.name, "--out", str(out), *options, *common])

    caplog.set_level(logging.ERROR, logger="mimokd")
    assert experiment(tmp_path / "a", "--rows", "0/2") == 1  # no teacher yet: refused, nothing trained
    assert "needs trained teachers, missing: teacher 'csinet (teacher)' at 1/32" in caplog.text
    assert not (tmp_path / "a").exists() and not teachers.exists()
    with pytest.raises(SystemExit) as exit_:  # a usage error
        experiment(tmp_path / "a", "--rows", "0/2", "--merge")
    assert exit_.value.code == 2
    assert experiment(tmp_path / "t", "--rows", "teachers") == 0
    assert (teachers / "csinet_cr32" / "result.json").is_file() and not (tmp_path / "t" / "cr32").exists()
    assert experiment(tmp_path / "a", "--rows", "0/2") == 0
    assert experiment(tmp_path / "b", "--rows", "1/2") == 0
    assert [p.name for p in (tmp_path / "a" / "cr32").iterdir()] == [SWEEP.runs[0].slug]
    assert [p.name for p in (tmp_path / "b" / "cr32").iterdir()] == [SWEEP.runs[1].slug]
    assert not (tmp_path / "a" / "results.md").exists()  # a share of the rows writes no table

    shutil.copytree(tmp_path / "a", merged)  # the run directories, copied from the machines
    shutil.copytree(teachers, merged / "teachers")
    caplog.clear()
    assert experiment(merged, "--merge") == 1
    assert f"1 row(s) not finished: row 1 'a=0.3' at 1/32 (cr32/{SWEEP.runs[1].slug})" in caplog.text
    assert not (merged / "results.md").exists()
    shutil.copytree(tmp_path / "b", merged, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "a")  # the copies are self-contained: no path into the machines' folders
    shutil.rmtree(tmp_path / "b")
    shutil.rmtree(teachers)
    rows = merge_experiment(SWEEP, out_dir=merged)
    assert [r["network"] for r in rows] == ["csinet (teacher)", "vanilla", "a=0.3"]
    outputs = ("results.md", "results.json", "curves_cr32.png", "sweep.png")
    merged_files = {name: (merged / name).read_bytes() for name in outputs}
    logs = sorted(merged.rglob("log.csv"))
    stamps = [p.stat().st_mtime_ns for p in logs]
    single = run_experiment(SWEEP, out_dir=merged, verbose=0)  # a single run over the same rows: trains nothing
    assert [p.stat().st_mtime_ns for p in logs] == stamps
    assert single == rows
    for name in ("results.md", "results.json"):
        assert (merged / name).read_bytes() == merged_files[name]
    # the split rows are the rows of a single run (same data, same seeds): the teacher trained by
    # --rows teachers is the single run's, and so is every student trained from it
    _, fresh, _ = single_run
    assert len(fresh) == len(rows)
    for ours, theirs in zip(rows, fresh):
        assert ours["network"] == theirs["network"]
        assert ours["nmse_db"] == pytest.approx(theirs["nmse_db"], abs=1e-3)
