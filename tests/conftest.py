import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite runs without mimokd's XLA auto-clustering default: its compiles cost more than they save on
# tiny models (tests/test_train.py + test_distill.py: 225 s with it, 121 s without). tests/test_xla_default.py
# checks the default itself in fresh processes. Inherited by the CLI subprocesses of the tests.
os.environ.setdefault("MIMOKD_XLA_AUTOCLUSTER", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests marked ``eager`` run ``tf.function``s (Keras' train / test / predict steps) eagerly; the
    rest run them as graphs, as users do.

    The marked files test orchestration (experiments, the pipeline, runs and resumes, the CLI,
    ``pretrained build``): they fit tiny models for a few steps each, where TensorFlow tracing the
    steps is most of the time, and they measured 1.2-2.3x faster eagerly (one file at a time, on this
    project's 2 cores). The compiled steps themselves are tested in graph mode by the trainers' own
    files (test_train, test_distill, test_codeword_mimic, test_ip_kd, test_joint, test_hybrid,
    test_multicell_training), which stay unmarked: so do export, XLA and the backends. Set before the
    test's fixtures, so a module fixture that trains runs in its file's mode (a file is marked whole).
    """
    import tensorflow as tf

    tf.config.run_functions_eagerly(item.get_closest_marker("eager") is not None)


@pytest.fixture
def csi_batch():
    """A small batch of CSI-like data, float32 [4, 2, 32, 32] in [0, 1]."""
    rng = np.random.default_rng(0)
    return (0.5 + 0.1 * rng.standard_normal((4, 2, 32, 32))).clip(0, 1).astype("float32")
