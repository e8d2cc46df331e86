"""Run directories (issue 16): other settings refused, exact resume, crash-safe state, full disks."""

import errno
import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import mimokd.fileio
from mimokd.cli import main
from mimokd.fileio import DiskFullError, settings_differences
from mimokd.train import TrainConfig, fit_autoencoder
from mimokd.train.runs import RunConflictError, epoch_batches, fit_run, read_log

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

CONFIG = TrainConfig(epochs=3, batch_size=20, seed=5)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = (0.5 + 0.1 * rng.standard_normal((60, 2, 32, 32))).clip(0, 1).astype("float32")
    return x[:40], x[40:]


class Interrupt(keras.callbacks.Callback):
    """Stop the process's training (as a kill would) after epoch ``epoch`` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"simulated kill after epoch {epoch}")


def _train(data, out, config=CONFIG, **kwargs):
    return fit_autoencoder("csinet", *data, out_dir=out, config=config, verbose=0, cr=64, **kwargs)


def _weights(path):
    return keras.saving.load_model(path).get_weights()


def _same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _log_without_time(path):
    log = read_log(path)
    log.pop("seconds")
    return log


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    _train(data, out)
    return out


@pytest.fixture(scope="module")
def interrupted(data, tmp_path_factory):
    """``copy(stop_after, out)``: ``out`` becomes a copy of a run killed after epoch ``stop_after``
    (each state trained once per module; a run directory holds no path of its own, so a copy resumes
    as the original would)."""
    states = {}

    def copy(stop_after, out):
        if stop_after not in states:
            states[stop_after] = tmp_path_factory.mktemp(f"interrupted{stop_after}")
            with pytest.raises(KeyboardInterrupt):
                _train(data, states[stop_after], callbacks=[Interrupt(stop_after)])
        shutil.copytree(states[stop_after], out, dirs_exist_ok=True)

    return copy


# --- exact resume --------------------------------------------------------------------------------


def test_epoch_batches_follow_seed_and_epoch_only():
    x = np.arange(10, dtype=np.float32)[:, None]
    batches = epoch_batches(x, x, batch_size=4, seed=7)

    def order(epoch, fn=batches):
        return np.concatenate([b.numpy()[:, 0] for b, _ in fn(tf.constant(epoch, tf.int64))])

    assert sorted(order(0)) == list(range(10))
    np.testing.assert_array_equal(order(3), order(3))
    np.testing.assert_array_equal(order(3), order(3, epoch_batches(x, x, batch_size=4, seed=7)))
    assert not np.array_equal(order(0), order(1))  # each epoch its own order, not epoch 0's again
    assert not np.array_equal(order(0), order(0, epoch_batches(x, x, batch_size=4, seed=8)))


@pytest.mark.parametrize("stop_after", [pytest.param(0, marks=pytest.mark.slow), 1])
def test_interrupted_and_resumed_run_is_bit_identical(data, uninterrupted, interrupted, tmp_path, stop_after):
    interrupted(stop_after, tmp_path)
    assert not (tmp_path / "final.keras").exists()
    _, history = _train(data, tmp_path)
    assert history.epoch == list(range(stop_after + 1, CONFIG.epochs))
    for name in ("final.keras", "best.keras"):
        assert _same_weights(_weights(tmp_path / name), _weights(uninterrupted / name)), name
    assert _log_without_time(tmp_path / "log.csv") == _log_without_time(uninterrupted / "log.csv")


def _dropout_run(out, x, callbacks=()):
    """A model with a Dropout (a seed generator whose state save_weights leaves out) in fit_run."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dropout(0.5),
                              keras.layers.Dense(8)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return fit_run(model, epoch_batches(x[:32], x[:32], batch_size=8, seed=1),
                   tf.data.Dataset.from_tensor_slices((x[32:], x[32:])).batch(8), out_dir=out, epochs=3,
                   record={"model": "dropout"}, monitor="val_loss", callbacks=callbacks, verbose=0)


def test_resume_restores_the_seed_generators_of_dropout(tmp_path):
    x = np.random.default_rng(0).standard_normal((40, 8)).astype("float32")
    _dropout_run(tmp_path / "whole", x)
    with pytest.raises(KeyboardInterrupt):
        _dropout_run(tmp_path / "resumed", x, callbacks=[Interrupt(0)])
    _dropout_run(tmp_path / "resumed", x)
    assert _same_weights(_weights(tmp_path / "resumed" / "final.keras"), _weights(tmp_path / "whole" / "final.keras"))


def test_finished_run_again_trains_nothing_and_writes_nothing(data, uninterrupted, monkeypatch):
    before = _snapshot(uninterrupted)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mimokd.fileio.os, "fsync", full)  # a full disk: any write would fail
    model, history = _train(data, uninterrupted)
    assert history.epoch == []
    assert _same_weights(model.get_weights(), _weights(uninterrupted / "final.keras"))
    assert _snapshot(uninterrupted) == before


# --- other settings --------------------------------------------------------------------------------


def test_settings_differences_name_each_key():
    old = {"model": {"cr": 4}, "train": {"epochs": 3, "lr": 1e-3}}
    new = {"model": {"cr": 16}, "train": {"epochs": 3}, "teacher": "crnet"}
    assert settings_differences(old, new) == [
        "model.cr: 4 -> 16", 'train.lr: 0.001 -> "(absent)"', 'teacher: "(absent)" -> "crnet"']


def test_other_settings_are_refused_and_overwrite_replaces(data, uninterrupted, tmp_path):
    out = tmp_path / "run"
    _train(data, out, config=TrainConfig(epochs=1, batch_size=20, seed=5))
    before = _snapshot(out)
    with pytest.raises(RunConflictError, match=r"train\.epochs: 1 -> 3") as err:
        _train(data, out)
    assert str(out) in str(err.value) and "--overwrite" in str(err.value)
    with pytest.raises(RunConflictError, match=r"data\.train\.sha256"):
        _train((data[0][::-1].copy(), data[1]), out, config=TrainConfig(epochs=1, batch_size=20, seed=5))
    assert _snapshot(out) == before  # nothing written
    _, history = _train(data, out, overwrite=True)
    assert history.epoch == [0, 1, 2]  # afresh, not resumed from the 1-epoch run
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 3
    assert _same_weights(_weights(out / "final.keras"), _weights(uninterrupted / "final.keras"))


def test_run_files_without_config_are_refused(data, tmp_path):
    (tmp_path / "best.keras").write_bytes(b"someone's model")
    with pytest.raises(RunConflictError, match="best.keras but no config.json"):
        _train(data, tmp_path)
    assert (tmp_path / "best.keras").read_bytes() == b"someone's model"
    (tmp_path / "best.keras").unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunConflictError, match="is a file"):
        _train(data, tmp_path / "file")


def test_cli_train_refuses_other_settings_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "csinet", "--cr", "64", "--batch-size", "20", "--train-samples", "40",
            "--val-samples", "20", "--test-samples", "20", "--out", str(out)]
    assert main([*args, "--epochs", "1"]) == 0
    best = (out / "best.keras").read_bytes()
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--lr", "0.001"]) != 0
    err = capsys.readouterr().err
    assert "train.epochs: 1 -> 2" in err and "train.peak_lr: 0.002 -> 0.001" in err and str(out) in err
    assert (out / "best.keras").read_bytes() == best
    assert main([*args, "--epochs", "2", "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 2


# --- damaged state, kills, full disks --------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate-weights", *(pytest.param(d, marks=pytest.mark.slow)
                                                          for d in ("truncate-json", "delete-weights"))])
def test_damaged_latest_state_resumes_from_the_one_before(data, uninterrupted, interrupted, tmp_path, damage):
    interrupted(1, tmp_path)
    latest = tmp_path / "backup" / ("epoch-00002.json" if damage == "truncate-json" else "epoch-00002.weights.h5")
    if damage == "delete-weights":
        latest.unlink()
    else:
        latest.write_bytes(latest.read_bytes()[:96])  # what a kill during a write in place left
    with pytest.warns(UserWarning, match="epoch-00002.json is damaged"):
        _, history = _train(data, tmp_path)
    assert history.epoch == [1, 2]
    assert _same_weights(_weights(tmp_path / "final.keras"), _weights(uninterrupted / "final.keras"))
    assert _log_without_time(tmp_path / "log.csv") == _log_without_time(uninterrupted / "log.csv")


RUN = """
import os, signal, sys
import numpy as np
import mimokd.train.backup as backup
from mimokd.train import TrainConfig, fit_autoencoder

out, data, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
calls = []
real = backup.write_json

def write_json_then_die(path, data):
    calls.append(path)
    if len(calls) == kill_at:  # SIGKILL after this epoch's weights are written, before its .json
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, data)

backup.write_json = write_json_then_die
x = np.load(data)
fit_autoencoder("csinet", x[:40], x[40:], out_dir=out, config=TrainConfig(epochs=3, batch_size=20, seed=5),
                verbose=0, cr=64)
"""


@pytest.mark.slow
def test_sigkill_while_the_state_is_written_resumes_exactly(data, tmp_path):
    # every run in a fresh process of its own, so that all share TensorFlow's start-up settings
    np.save(tmp_path / "x.npy", np.concatenate(data))

    def run(out, kill_at=0):
        return subprocess.run([sys.executable, "-c", RUN, str(out), str(tmp_path / "x.npy"), str(kill_at)],
                              capture_output=True, text=True, timeout=600)

    assert run(tmp_path / "whole").returncode == 0
    out = tmp_path / "run"
    proc = run(out, kill_at=2)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (out / "backup" / "epoch-00002.weights.h5").is_file() and not (out / "backup" / "epoch-00002.json").exists()
    assert run(out).returncode == 0
    assert _same_weights(_weights(out / "final.keras"), _weights(tmp_path / "whole" / "final.keras"))
    assert _log_without_time(out / "log.csv") == _log_without_time(tmp_path / "whole" / "log.csv")
    assert sorted(p.name for p in (out / "backup").iterdir()) == [
        "epoch-00002.json", "epoch-00002.weights.h5", "epoch-00003.json", "epoch-00003.weights.h5"]


@pytest.mark.parametrize("failing_write", [1, pytest.param(2, marks=pytest.mark.slow), 3,
                                           pytest.param(4, marks=pytest.mark.slow)])
def test_full_disk_names_the_file_and_leaves_earlier_files_intact(data, uninterrupted, interrupted, tmp_path,
                                                                  monkeypatch, failing_write):
    interrupted(0, tmp_path)
    before = _snapshot(tmp_path)
    real_fsync, calls = mimokd.fileio.os.fsync, []

    def fsync(fd):  # the disk fills up at the n-th file written: best.keras, weights, .json, log.csv
        calls.append(fd)
        if len(calls) == failing_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(mimokd.fileio.os, "fsync", fsync)
    with pytest.raises(DiskFullError, match="No space left on the device to write") as err:
        _train(data, tmp_path)
    assert err.value.errno == errno.ENOSPC and str(tmp_path) in str(err.value)
    after = _snapshot(tmp_path)
    if failing_write == 1:
        assert after == before
    for name, content in before.items():  # each earlier file is as it was, or replaced whole
        assert name in after and (after[name] == content or name in ("best.keras", "log.csv"))
    assert not [name for name in after if name.startswith(".") or "/." in name]  # no temporary left
    monkeypatch.setattr(mimokd.fileio.os, "fsync", real_fsync)
    _train(data, tmp_path)  # with space again, the run resumes and ends as it would have
    assert _same_weights(_weights(tmp_path / "final.keras"), _weights(uninterrupted / "final.keras"))
    assert _log_without_time(tmp_path / "log.csv") == _log_without_time(uninterrupted / "log.csv")


# --- checkpoints load after `import mimokd` ---------------------------------------------------------


def test_run_checkpoints_load_after_import_mimokd_alone(uninterrupted):
    code = ("import mimokd, keras, sys; "
            "[print(type(keras.saving.load_model(p)).__name__) for p in sys.argv[1:]]")
    proc = subprocess.run([sys.executable, "-c", code, str(uninterrupted / "best.keras"),
                           str(uninterrupted / "final.keras")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["CsiNet", "CsiNet"]
