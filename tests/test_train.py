"""Vanilla training: what must change changes, checkpoints, resume, strategies, evaluation."""

import csv

import keras
import numpy as np
import pytest

from mimokd.metrics import nmse_db, rho
from mimokd.train import TrainConfig, evaluate_autoencoder, fit_autoencoder
from mimokd.train.callbacks import BestCheckpoint
from mimokd.zoo import create_model
from weights import assert_same_step_math, train_step_math

TINY = TrainConfig(epochs=2, batch_size=20, seed=3)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (0.5 + 0.1 * rng.standard_normal((60, 2, 32, 32))).clip(0, 1).astype("float32")
    return x[:40], x[40:]


def _epochs(log):
    with open(log, newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_fit_trains_logs_and_checkpoints(data, tmp_path):
    train, val = data
    before = create_model("csinet", cr=16)
    initial = [w.numpy().copy() for w in before.trainable_weights]
    model, history = fit_autoencoder(
        lambda: before, train, val, out_dir=tmp_path, config=TINY, verbose=0
    )
    moved = [not np.allclose(a, w.numpy()) for a, w in zip(initial, model.trainable_weights)]
    assert all(moved)  # every trainable weight of encoder and decoder moved
    for key in ("loss", "nmse", "rho", "val_loss", "val_nmse", "val_rho", "lr"):
        assert key in history.history and len(history.history[key]) == 2
    assert history.history["lr"][0] > 0
    assert _epochs(tmp_path / "log.csv") == [0, 1]
    for name in ("best.keras", "final.keras", "config.json"):
        assert (tmp_path / name).is_file()
    # the state of the last two epochs stays, so that running it again trains nothing
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "epoch-00001.json", "epoch-00001.weights.h5", "epoch-00002.json", "epoch-00002.weights.h5"]

    final = keras.saving.load_model(tmp_path / "final.keras")
    np.testing.assert_allclose(final.predict(val, verbose=0), model.predict(val, verbose=0), atol=1e-6)
    best = keras.saving.load_model(tmp_path / "best.keras")
    best_val = min(history.history["val_nmse"])
    assert evaluate_autoencoder(best, val, batch_size=20)["nmse_db"] == pytest.approx(best_val, abs=1e-3)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill after epoch 2")


def test_interrupted_run_resumes_from_backup(data, tmp_path):
    train, val = data
    config = TrainConfig(epochs=3, batch_size=20, seed=1)
    with pytest.raises(KeyboardInterrupt):
        fit_autoencoder("csinet", train, val, out_dir=tmp_path, config=config,
                        callbacks=[_Interrupt()], verbose=0, cr=16)
    assert (tmp_path / "backup").is_dir()
    assert (tmp_path / "best.keras").is_file()
    model, history = fit_autoencoder("csinet", train, val, out_dir=tmp_path, config=config,
                                     verbose=0, cr=16)
    assert history.epoch == [2]  # only the epoch left
    assert _epochs(tmp_path / "log.csv") == [0, 1, 2]
    # the optimizer step counter carried over: 3 epochs of 2 steps
    assert int(model.optimizer.iterations.numpy()) == 6


def test_one_device_strategy(data, tmp_path):
    train, val = data
    model, history = fit_autoencoder("csinet", train, val, out_dir=tmp_path, strategy="cpu",
                                     config=TrainConfig(epochs=1, batch_size=20), verbose=0, cr=32)
    assert np.isfinite(history.history["val_nmse"][0])


def test_evaluate_matches_numpy(data):
    _, val = data
    model = create_model("crnet_se", cr=32)
    pred = model.predict(val, verbose=0)
    out = evaluate_autoencoder(model, val, batch_size=8)
    assert out["nmse_db"] == pytest.approx(nmse_db(val, pred), abs=1e-4)
    assert out["nmse_db_per_batch"] == pytest.approx(
        nmse_db(val, pred, convention="per_batch", batch_size=8), abs=1e-4)
    assert out["rho"] == pytest.approx(rho(pred, val), abs=1e-5)
    assert out["samples"] == len(val)


def test_best_checkpoint_only_on_improvement(tmp_path):
    model = create_model("csinet", cr=64)
    cb = BestCheckpoint(tmp_path / "b.keras")
    cb.set_model(model)
    cb.on_epoch_end(0, {"val_nmse": -5.0})
    first = (tmp_path / "b.keras").stat().st_mtime_ns
    cb.on_epoch_end(1, {"val_nmse": -4.0})
    assert (tmp_path / "b.keras").stat().st_mtime_ns == first
    cb.on_epoch_end(2, {"val_nmse": -6.0})
    assert cb.best == -6.0
    assert [p.name for p in tmp_path.iterdir()] == ["b.keras"]  # no temporary left behind
    with pytest.raises(KeyError, match="val_nmse"):
        cb.on_epoch_end(3, {"loss": 1.0})


@pytest.mark.parametrize("value, message", [(np.nan, "1 NaN or infinite"), (np.inf, "1 NaN or infinite"),
                                            (1.5, r"values in \[0, 1\]"), (-0.1, r"values in \[0, 1\]")])
def test_evaluate_refuses_bad_csi(data, value, message):
    csi = data[1].copy()
    csi[3, 1, 4, 5] = value
    with pytest.raises(ValueError, match=f"`csi` .*{message}"):
        evaluate_autoencoder(create_model("crnet", cr=4), csi)


def test_xla_step_computes_the_plain_step_math():
    """``TrainConfig(jit_compile=True)`` changes speed, not math: XLA's outputs, gradients and BatchNorm
    statistics equal the plain graph's to float32 round-off (CRNet 1/4 on 16 x 16 CSI, 18 BatchNorms)."""
    x = np.random.default_rng(1).random((8, 2, 16, 16), dtype=np.float32)
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        runs.append(train_step_math(create_model("crnet", cr=4, height=16, width=16), x, jit_compile=jit))
    assert_same_step_math(*runs, batchnorms=18)


@pytest.mark.parametrize("eager", [False, pytest.param(True, marks=pytest.mark.eager)])
def test_tf_functions_are_graphs_unless_the_test_is_marked_eager(eager):
    """tests/conftest.py: this file tests the compiled steps users run, so its ``tf.function``s are
    traced into graphs; only tests marked ``eager`` run them as Python."""
    import tensorflow as tf

    assert tf.config.functions_run_eagerly() is eager
    step = tf.function(lambda x: x + 1)
    assert step(tf.constant(1.0)).numpy() == 2.0
    assert step.experimental_get_tracing_count() == (0 if eager else 1)


def test_jit_compile_defaults_to_keras_auto_rule(data, tmp_path):
    """The default leaves XLA to Keras' rule (on with a GPU, off on a CPU-only machine, where it was
    measured slower); ``mimokd train --jit`` / ``--jit off`` choose it."""
    from mimokd.cli import JIT_CHOICES, _train_config, build_parser

    assert TrainConfig().jit_compile == "auto"
    parse = build_parser().parse_args
    for argv, expected in (([], "auto"), (["--jit"], True), (["--jit", "off"], False), (["--jit", "on"], True)):
        args = parse(["train", "--model", "csinet", "--out", str(tmp_path), *argv])
        assert _train_config(args).jit_compile == expected == JIT_CHOICES[args.jit]
    model, _ = fit_autoencoder(lambda: create_model("csinet", cr=64), *data, out_dir=tmp_path / "run",
                               config=TrainConfig(epochs=1, batch_size=20), verbose=0)
    assert model.jit_compile is False  # this CI machine has no GPU: Keras' rule turns XLA off
