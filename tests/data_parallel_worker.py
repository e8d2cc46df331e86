"""One process of the two-process data-parallel test (tests/test_distribute.py), or the one-process run
it is compared with: ``python data_parallel_worker.py {one,two} OUT``.

Under ``KERAS_BACKEND=jax``: trains CRNet-SE 1/4 (vanilla, BatchNorm over the global batch), then a
CsiNet student by output KD from it, on 32 random CSI samples in batches of 8, into the run directories
``OUT/<mode>-<process>/vanilla`` and ``.../kd``; writes the trained weights of both to
``OUT/weights-<mode>-<process>.npz`` (outside the run directories). ``two`` joins the job described by
the ``KERAS_DISTRIBUTION_*`` environment variables.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"

import numpy as np  # noqa: E402

from mimokd.train.distribute import process_index, start_data_parallel  # noqa: E402

mode, out = sys.argv[1], sys.argv[2]
if mode == "two":
    start_data_parallel()

import keras  # noqa: E402

from mimokd.train import TrainConfig, fit_autoencoder  # noqa: E402
from mimokd.train.distill import fit_distillation  # noqa: E402
from mimokd.zoo import create_model  # noqa: E402

csi = np.random.default_rng(0).uniform(0.4, 0.6, (40, 2, 32, 32)).astype("float32")
config = TrainConfig(epochs=2, batch_size=8, seed=3)
run = f"{out}/{mode}-{process_index()}"
teacher, _ = fit_autoencoder("crnet_se", csi[:32], csi[32:], out_dir=f"{run}/vanilla", config=config, cr=4,
                             verbose=0)
keras.utils.set_random_seed(4)
student = create_model("csinet", cr=4)
fit_distillation("output-kd", teacher, student, csi[:32], csi[32:], out_dir=f"{run}/kd",
                 config=TrainConfig(epochs=1, batch_size=8, seed=5), verbose=0)
np.savez(f"{out}/weights-{mode}-{process_index()}.npz",
         *[np.asarray(v.value) for model in (teacher, student) for v in model.weights])
