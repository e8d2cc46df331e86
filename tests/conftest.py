import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite runs without mimokd's XLA auto-clustering default: its compiles cost more than they save on
# tiny models (tests/test_train.py + test_distill.py: 225 s with it, 121 s without). tests/test_xla_default.py
# checks the default itself in fresh processes. Inherited by the CLI subprocesses of the tests.
os.environ.setdefault("MIMOKD_XLA_AUTOCLUSTER", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def csi_batch():
    """A small batch of CSI-like data, float32 [4, 2, 32, 32] in [0, 1]."""
    rng = np.random.default_rng(0)
    return (0.5 + 0.1 * rng.standard_normal((4, 2, 32, 32))).clip(0, 1).astype("float32")
