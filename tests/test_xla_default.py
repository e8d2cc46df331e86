"""mimokd's XLA auto-clustering default (src/mimokd/__init__.py): on unless opted out, and the same
math as TensorFlow without it, in two fresh processes (the setting is process-wide)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xla_step_check
from weights import assert_same_step_math

SCRIPT = Path(xla_step_check.__file__)
COMPILED = "Compiled cluster using XLA"  # TensorFlow's log line when a cluster runs through XLA


def _step_math(tmp_path, opt_out):
    """Run the worker; returns ``({model: (out, grads, stats)}, stderr)``."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", "MIMOKD_XLA_AUTOCLUSTER")}
    env.update(TF_CPP_MIN_LOG_LEVEL="0", PYTHONPATH=os.pathsep.join([str(SCRIPT.parent), env.get("PYTHONPATH", "")]))
    if opt_out:
        env["MIMOKD_XLA_AUTOCLUSTER"] = "0"
    path = tmp_path / f"opt_out_{opt_out}.npz"
    done = subprocess.run([sys.executable, str(SCRIPT), str(path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    data = np.load(path)
    runs = {}
    for model in xla_step_check.MODELS:
        pick = lambda kind: [data[k] for k in sorted(data.files) if k.startswith(f"{model}/{kind}")]  # noqa: E731
        runs[model] = (data[f"{model}/out"], pick("grad"), pick("stat"))
    return runs, done.stderr


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xla")
    return _step_math(tmp, opt_out=False), _step_math(tmp, opt_out=True)


def test_autoclustering_is_on_by_default_and_can_be_turned_off(both):
    (_, default_log), (_, opted_out_log) = both
    assert COMPILED in default_log  # XLA compiled the fusible clusters of the step
    assert COMPILED not in opted_out_log


@pytest.mark.parametrize("model", list(xla_step_check.MODELS))
def test_autoclustering_keeps_the_step_math(both, model):
    """Outputs, gradients and BatchNorm statistics with the default equal TensorFlow's plain graph."""
    (default, _), (plain, _) = both
    assert_same_step_math(plain[model], default[model], batchnorms=xla_step_check.MODELS[model])
