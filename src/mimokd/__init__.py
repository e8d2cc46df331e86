"""mimokd: a Keras 3 model zoo for CSI feedback and MU-MIMO precoding trained with knowledge distillation.

Subpackages (each a top-level folder of the repository, installed under this namespace):

- ``mimokd.channels``: channel generators, the COST2100 ``.mat`` format, tf.data pipelines.
- ``mimokd.zoo``: the model registry (``create_model``, ``list_models``) and the model families.
- ``mimokd.train``: trainers and learning-rate schedules.
- ``mimokd.export``: complexity counts (params, multiplications, FLOPs) and, later, artifacts.
- ``mimokd.pretrained``: the registry of pretrained weights.
- ``mimokd.metrics``: NMSE and cosine similarity rho.
"""

import os

# TensorFlow leaves its oneDNN CPU kernels off on some CPUs; with them the zoo trains about twice
# as fast on CPU (benchmarks/train_speed.py). Set TF_ENABLE_ONEDNN_OPTS=0 to opt out. This only
# takes effect when mimokd is imported before TensorFlow.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

# Every custom Keras object is registered once Keras is imported, so that
# keras.saving.load_model reads any mimokd checkpoint after `import mimokd` alone (without
# importing TensorFlow here: see mimokd.registration).
from mimokd import registration  # noqa: E402

registration.install()
