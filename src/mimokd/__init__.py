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

#: XLA auto-clustering of the fusible ops only: TensorFlow compiles the element-wise chains of a graph
#: (BatchNorm, activations, losses, the optimizer's update) into fused XLA kernels and leaves
#: convolutions and matmuls on oneDNN. Measured 1.3-1.6x faster training on a 2-core CPU than
#: without it, where compiling whole steps with ``jit_compile=True`` was not faster
#: (benchmarks/trainer_speed.py, README "Performance notes"); the math is the same to float32
#: round-off (tests/test_xla_default.py). The first step of each graph pays a few seconds of compile.
XLA_AUTOCLUSTER_FLAGS = "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit --tf_xla_ops_to_cluster=FUSIBLE"

# On by default; MIMOKD_XLA_AUTOCLUSTER=0, or TF_XLA_FLAGS set by you (even empty), leaves TensorFlow's
# own setting. Process-wide; TensorFlow reads the flags when it runs its first graph, so importing
# mimokd after TensorFlow but before any training still sets it.
if os.environ.get("MIMOKD_XLA_AUTOCLUSTER", "1") != "0":
    os.environ.setdefault("TF_XLA_FLAGS", XLA_AUTOCLUSTER_FLAGS)

__version__ = "0.1.0"

# Every custom Keras object is registered once Keras is imported, so that
# keras.saving.load_model reads any mimokd checkpoint after `import mimokd` alone (without
# importing TensorFlow here: see mimokd.registration).
from mimokd import registration  # noqa: E402

registration.install()
