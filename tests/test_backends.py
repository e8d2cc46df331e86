"""Every zoo model under the JAX and PyTorch backends, against TensorFlow on the same weights.

The zoo (the CSI-feedback presets, Kong et al.'s receiver / transmitter, Zhang et al.'s CSI-Net and
Power-Net) is plain Keras. This process (TensorFlow) writes each model's weights, ``.keras`` file,
prediction and one-step-trained weights (``backend_check.write_reference``); one subprocess per
backend (``KERAS_BACKEND`` set before Keras is imported) runs ``backend_check.py`` on them, and the
tests compare, model by model: the prediction with the loaded weights, the TensorFlow ``.keras``
file loaded there, its own ``.keras`` save / load, and the weights after one ``fit`` step (which
must have changed every trainable weight, the same way as under TensorFlow). Zhang et al.'s
recovery layers are TensorFlow only (complex ``tf.linalg``): they must refuse other backends.

A backend that is not installed is skipped with the reason: ``jax[cpu]`` is in the test extra;
torch is not (PyPI's Linux x86_64 wheel is the CUDA build, 2.7 GB of downloads: the README's
"Backends"), so CI tests it where torch is installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import backend_check

BACKENDS = ("jax", "torch")
SCRIPT = Path(backend_check.__file__)
RTOL, ATOL = 1e-5, 1e-5  # float32 round-off (values of order 1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The folder of TensorFlow's weights, ``.keras`` files and results for every model."""
    assert keras.backend.backend() == "tensorflow"
    directory = tmp_path_factory.mktemp("backends")
    backend_check.write_reference(directory)
    return directory


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, reference):
    """``(backend, summary)`` after running the check script under that backend in a subprocess."""
    name = request.param
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (jax: the test extra; torch: pip install torch)")
    env = {**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3",
           # XLA's LLVM optimizations off: JAX compiles each model's fit step in a third of the time
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()}
    done = subprocess.run([sys.executable, str(SCRIPT), str(reference)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["backend"] == name
    return name, summary


@pytest.mark.parametrize("model", list(backend_check.MODELS))
def test_model_matches_tensorflow(model, backend, reference):
    name, summary = backend
    assert model not in summary["errors"], f"{model} under {name}:\n{summary['errors'].get(model)}"
    tf_result = np.load(reference / f"{model}.npz")
    result = np.load(reference / name / f"{model}.npz")
    for key in ("predict", "loaded", "reloaded"):
        np.testing.assert_allclose(result[key], tf_result["predict"], rtol=RTOL, atol=ATOL, err_msg=key)
    np.testing.assert_allclose(result["loss"], tf_result["loss"], rtol=1e-4)
    paths = list(tf_result["paths"])
    assert len(paths) == len([key for key in result.files if key.startswith("w")])
    changed = []
    for i, path in enumerate(paths):
        before = tf_result[f"before{i}"]
        update, tf_update = result[f"w{i}"] - before, tf_result[f"w{i}"] - before
        np.testing.assert_allclose(update, tf_update, rtol=1e-3, atol=1e-6, err_msg=f"the fit step's {path}")
        changed.append(bool(np.any(update)))
        # TensorFlow changed it too, or neither did (a ReZero branch gets no gradient while its scale is 0)
        assert changed[-1] == bool(np.any(tf_update)), path
    assert any(changed), "the fit step changed no weight"


@pytest.mark.parametrize("layer", list(backend_check.TENSORFLOW_ONLY))
def test_tensorflow_only_layer_refuses_the_backend(layer, backend):
    """Zhang et al.'s recovery layers stay TensorFlow (complex tf.linalg, the beamforming module's
    docstring): built under another backend, each says so instead of failing inside a trace."""
    name, summary = backend
    message = summary["refusals"][layer]
    assert message is not None, f"{layer} built under {name}"
    assert f"{layer} runs on the TensorFlow backend only" in message and repr(name) in message
