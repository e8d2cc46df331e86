"""Train a zoo autoencoder on a generated CSI dataset under any Keras 3 backend, in wall-clock slices.

``mimokd train`` needs TensorFlow (tf.data, tf.distribute); the GPU machines lent to this project
have JAX but no TensorFlow. This script runs the same recipe (CRNet's: MSE, Adam, batch 200,
warm-up cosine 2e-3 -> 5e-5 over ``--epochs``, :class:`mimokd.train.TrainConfig`) with plain
``model.fit`` on numpy arrays, so ``KERAS_BACKEND=jax`` works, and stops cleanly after
``--time-budget`` seconds. A later call with the same ``--out`` resumes from ``last.keras`` (model,
optimizer state and step: the schedule continues where it stopped), so a long run can be spread over
calls of a few minutes. The weights load under any backend (``keras.saving.load_model``).

Data: the train, val and test splits are read into memory with
:func:`mimokd.channels.shards.load_shards`, the reader of ``shard_dataset`` (each shard memory-mapped,
its sha256 and sample count checked against the manifest and its values checked, the ``HT`` member
viewed in place and copied once into the float32 ``[N, 2, 32, 32]`` array; numpy only, no
TensorFlow). ``benchmarks/input_pipeline.py`` measures it beside the tf.data paths; 100,000 samples
(800 MB) load in about 1-2 s on 2 cores. Larger splits than memory holds need ``shard_dataset``
(TensorFlow backend).

Writes to ``--out``: ``last.keras`` (atomically, at the end of the slice), ``model.weights.h5`` (the
weights alone, for ``model.load_weights`` on a ``create_model`` of the same name and ratio), ``log.csv`` (appended;
epoch, loss, val NMSE in dB), ``result.json`` (epochs done, test NMSE / rho, seconds).

Example (GPU machine, after ``mimokd data generate cost2100-indoor ... --out data/indoor``)::

    KERAS_BACKEND=jax python tools/train_portable.py --data data/indoor --model crnet --cr 4 \\
        --epochs 300 --time-budget 500 --out runs/crnet4-cost2100
"""

import argparse
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from mimokd.channels.shards import load_shards
from mimokd.fileio import atomic_path, write_json
from mimokd.metrics import NMSE, nmse_db
from mimokd.train.vanilla import TrainConfig, evaluate_autoencoder
from mimokd.zoo import create_model


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the first epoch that would not finish within the budget."""

    def __init__(self, seconds):
        super().__init__()
        self.deadline = time.monotonic() + seconds
        self.started = time.monotonic()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        per_epoch = (time.monotonic() - self.started) / self.epochs
        if time.monotonic() + per_epoch > self.deadline:
            self.model.stop_training = True


class ValNMSE(keras.callbacks.Callback):
    """Adds the validation NMSE in dB (the global convention) to the logs of every epoch."""

    def __init__(self, val):
        super().__init__()
        self.val = val

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_nmse_db"] = nmse_db(self.val, self.model.predict(self.val, batch_size=1000, verbose=0))


def _build(args, steps_per_epoch):
    last = Path(args.out) / "last.keras"
    if last.exists():
        model = keras.saving.load_model(last)
        print(f"resumed {last} at step {int(model.optimizer.iterations.numpy())}")
        return model
    keras.utils.set_random_seed(args.seed)
    model = create_model(args.model, cr=args.cr)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(config.schedule(steps_per_epoch)), loss="mse",
                  metrics=[NMSE()], jit_compile=True)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a dataset folder of `mimokd data generate` (npz)")
    parser.add_argument("--model", default="crnet")
    parser.add_argument("--cr", type=int, default=4)
    parser.add_argument("--epochs", type=int, required=True, help="epochs of the whole run (the schedule's length)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--time-budget", type=float, default=1e9, help="seconds of training in this call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, val = load_shards(args.data, "train"), load_shards(args.data, "val")
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    model = _build(args, steps_per_epoch)
    done = int(model.optimizer.iterations.numpy()) // steps_per_epoch
    if done < args.epochs:
        started = time.monotonic()
        model.fit(train, train, batch_size=args.batch_size, epochs=args.epochs, initial_epoch=done, shuffle=True,
                  verbose=2, callbacks=[ValNMSE(val), TimeBudget(args.time_budget),
                                        keras.callbacks.CSVLogger(str(out / "log.csv"), append=True)])
        print(f"trained {time.monotonic() - started:.0f} s")
        with atomic_path(out / "last.keras") as tmp:
            model.save(tmp)
        with atomic_path(out / "model.weights.h5") as tmp:  # weights only: a third of last.keras
            model.save_weights(tmp)
    done = int(model.optimizer.iterations.numpy()) // steps_per_epoch
    test = load_shards(args.data, "test")
    hf = load_shards(args.data, "test", key="HF")
    result = {"model": args.model, "cr": args.cr, "epochs_done": done, "epochs": args.epochs,
              "backend": keras.backend.backend(), "train_samples": len(train),
              "test": evaluate_autoencoder(model, test, hf=hf)}
    write_json(out / "result.json", result)
    print(json.dumps(result))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
