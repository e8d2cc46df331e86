"""Data-parallel training (mimokd.train.distribute): the pieces here, two processes on 127.0.0.1 (slow)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mimokd.cli import main
from mimokd.train import TrainConfig, fit_autoencoder
from mimokd.train import runs
from mimokd.train.distribute import (
    MULTIWORKER_REFUSAL,
    check_batches,
    check_processes,
    make_strategy,
    process_share,
    require_tensorflow,
    start_data_parallel,
)

WORKER = Path(__file__).with_name("data_parallel_worker.py")


def test_check_processes():
    assert check_processes(None, None, None) == (None, 1, 0)
    assert check_processes(None, 1, None) == (None, 1, 0)
    assert check_processes("10.0.0.1:1234,10.0.0.2:1234", 2, 1) == ("10.0.0.1:1234", 2, 1)
    with pytest.raises(ValueError, match=r"HOST:PORT .*Received: None"):
        check_processes(None, 2, 0)
    with pytest.raises(ValueError, match=r"HOST:PORT .*Received: '127.0.0.1'"):
        check_processes("127.0.0.1", 2, 0)
    with pytest.raises(ValueError, match=r"process id must be 0 \.\. 1 .*Received: 2"):
        check_processes("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match=r"number of processes.*Received: None"):
        check_processes("127.0.0.1:1234", None, 0)


def test_refusals_under_tensorflow():
    with pytest.raises(ValueError, match=r"keras-team/keras#20585"):
        make_strategy("multiworker")
    with pytest.raises(RuntimeError, match=r"JAX backend.*KERAS_BACKEND=jax"):
        start_data_parallel()
    require_tensorflow("codeword-mimic")  # this process runs TensorFlow: nothing refused


def test_require_tensorflow_names_trainer_and_reason(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match=r"Codeword mimic trains under TensorFlow only: .*tf\.GradientTape.*two "
                                         r"optimizers.*runs Keras on 'jax'.*KERAS_BACKEND=tensorflow"):
        require_tensorflow("codeword-mimic")
    with pytest.raises(ValueError, match=r"Kong et al.'s joint trainer"):
        require_tensorflow("kong")


def test_process_share_cuts_each_batch_in_contiguous_shares():
    x = np.arange(10, dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, {"y": -x})).batch(4)  # batches of 4, 4, 2
    shares = [[(a.numpy().tolist(), b["y"].numpy().tolist()) for a, b in process_share(dataset, index=i, count=2)]
              for i in range(2)]
    assert [a for a, _ in shares[0]] == [[0, 1], [4, 5], [8]]
    assert [a for a, _ in shares[1]] == [[2, 3], [6, 7], [9]]
    assert [b for _, b in shares[1]] == [[-2, -3], [-6, -7], [-9]]
    check_batches(dataset, 2)
    with pytest.raises(ValueError, match=r"split evenly over the 3 .*batches of \[2, 4\] samples"):
        check_batches(dataset, 3)


def test_only_the_chief_writes_the_run(monkeypatch, tmp_path, csi_batch):
    """A non-chief process trains but writes nothing in its run directory (nor creates it)."""
    monkeypatch.setattr(runs, "is_chief", lambda: False)
    monkeypatch.setattr(runs, "on_chief", lambda fn, what: None)
    csi = np.concatenate([csi_batch] * 3)
    model, history = fit_autoencoder("csinet", csi[:8], csi[8:], out_dir=tmp_path / "run",
                                     config=TrainConfig(epochs=1, batch_size=4), cr=16, verbose=0)
    assert len(history.history["loss"]) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "csinet", "--strategy", "multiworker"], "keras-team/keras#20585"),
    (["distill", "--method", "codeword-mimic", "--teacher", __file__, "--student", "bcrnet",
      "--strategy", "data-parallel"], "Codeword mimic trains under TensorFlow only"),
    (["experiment", "kong-fig2", "--strategy", "data-parallel"], "Kong et al.'s joint trainer trains under"),
    (["train", "--model", "csinet", "--strategy", "data-parallel", "--num-processes", "2", "--process-id", "0"],
     "HOST:PORT"),
    (["train", "--model", "csinet", "--strategy", "data-parallel"], "runs Keras on 'tensorflow'"),
    (["distill", "--method", "output-kd", "--teacher", __file__, "--student", "csinet", "--strategy", "mirrored"],
     "invalid choice: 'mirrored'"),
])
def test_cli_refusals(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    """Two processes on 127.0.0.1 end with identical weights, equal to one process's up to round-off
    (vanilla CRNet-SE with BatchNorm, then output KD); only process 0 writes its run directories."""
    pytest.importorskip("jax")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
           "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{_free_port()}"}
    workers = [subprocess.Popen([sys.executable, str(WORKER), "two", str(tmp_path)],
                                env={**env, "KERAS_DISTRIBUTION_PROCESS_ID": str(i)}, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    one = subprocess.run([sys.executable, str(WORKER), "one", str(tmp_path)], env=env, capture_output=True, text=True)
    errors = [w.communicate(timeout=1200)[1] for w in workers]
    for process, err in zip([*workers, one], [*errors, one.stderr]):
        assert process.returncode == 0, err[-3000:]
    weights = {name: list(np.load(tmp_path / f"weights-{name}.npz").values()) for name in ("two-0", "two-1", "one-0")}
    for a, b, c in zip(weights["two-0"], weights["two-1"], weights["one-0"]):
        np.testing.assert_array_equal(a, b)
        # round-off only: Adam divides by the root of the second moment, so the few near-zero gradients that
        # round-off flips move by up to ~lr; measured 2 of 1,048,576 entries (CsiNet's dense) over 1e-3, at 1.1e-3.
        # Wrong shares or an unsynchronized update move most entries by more than 1e-3.
        difference = np.abs(a - c)
        assert difference.max() < 5e-3 and np.mean(difference > 1e-3) < 1e-4, (difference.max(), a.shape)
    for run in ("vanilla", "kd"):
        assert {p.name for p in (tmp_path / "two-0" / run).iterdir()} == set(runs.RUN_FILES)
    assert not (tmp_path / "two-1").exists()
