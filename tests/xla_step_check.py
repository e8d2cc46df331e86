"""The worker process of tests/test_xla_default.py: imports mimokd before TensorFlow (so mimokd's
XLA auto-clustering default applies unless the environment opts out), computes one training step's
math of CRNet (BatchNorm) and BCRNet (the sign STE) with :func:`weights.train_step_math` and writes
it to the ``.npz`` named by its argument."""

import sys

import mimokd  # noqa: F401  (first: its TF_XLA_FLAGS default must precede TensorFlow)
import keras
import numpy as np

from mimokd.zoo import create_model
from weights import train_step_math

MODELS = {"crnet": 18, "bcrnet": 18}  # model -> its BatchNorm layers


def main(path):
    x = np.random.default_rng(1).random((8, 2, 16, 16), dtype=np.float32)
    arrays = {}
    for name in MODELS:
        keras.utils.set_random_seed(0)
        out, grads, stats = train_step_math(create_model(name, cr=4, height=16, width=16), x)
        arrays[f"{name}/out"] = out
        arrays.update({f"{name}/grad{i:03d}": g for i, g in enumerate(grads)})
        arrays.update({f"{name}/stat{i:03d}": s for i, s in enumerate(stats)})
    np.savez(path, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
