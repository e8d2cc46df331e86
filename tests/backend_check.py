"""Every zoo model under one Keras backend, on weights and data written under TensorFlow.

``tests/test_backends.py`` calls :func:`write_reference` in its own (TensorFlow) process, then runs
this file as a script under ``KERAS_BACKEND=jax`` / ``torch`` (set before Keras is imported)::

    python tests/backend_check.py DIR

For each model of :data:`MODELS` the script builds it afresh under its backend, loads the reference
weights (``DIR/<model>.weights.h5``) and writes to ``DIR/<backend>/<model>.npz``:

- ``predict``: its prediction on the reference inputs;
- ``loaded``: the prediction of the TensorFlow ``.keras`` file loaded under this backend;
- ``reloaded``: the prediction after a ``.keras`` save / load under this backend;
- ``w0, w1, ...``: every weight after one ``fit`` step (SGD, one batch, no shuffling); ``loss``.

Errors are recorded per model, not raised, so one failing model does not hide the others; the
TensorFlow-only layers are built once to record their refusal. The script prints one JSON line:
``{"backend", "errors": {model: traceback}, "refusals": {layer: message}}``.
"""

import json
import sys
import traceback
from pathlib import Path

import keras
import numpy as np

from mimokd.zoo import create_model, list_models
from mimokd.zoo.beamforming import (
    BeamformingRecovery,
    MulticellZFRecovery,
    ReducedBeamformingRecovery,
    SLNRRecovery,
    ZFRecovery,
    build_csi_net,
    build_power_net,
)
from mimokd.zoo.precoding import build_receiver, build_transmitter

BATCH = 4
LEARNING_RATE = 0.01
CSI_GEOMETRY = dict(cr=4, height=16, width=16)  # the smallest the presets take: 2 x 16 x 16 -> 128


def _csi(rng):
    x = rng.uniform(size=(BATCH, 2, 16, 16)).astype("float32")
    return x, x


def _pilots(rng):  # receiver: 2NL = 8 reals -> B = 4 bits in {-1, +1}
    return rng.standard_normal((BATCH, 8)).astype("float32"), rng.choice([-1.0, 1.0], (BATCH, 4)).astype("float32")


def _feedback(rng):  # transmitter: K*B = 2*3 bits and P in dB -> V [batch, M=4, K*N=2, 2]
    bits = rng.choice([-1.0, 1.0], (BATCH, 6)).astype("float32")
    power_db = rng.uniform(0, 20, (BATCH, 1)).astype("float32")
    return [bits, power_db], 0.5 * rng.standard_normal((BATCH, 4, 2, 2)).astype("float32")


def _channels(rng):  # CSI-Net: h [batch, K=2, Nt=4, 2] -> h
    return rng.standard_normal((BATCH, 2, 4, 2)).astype("float32"), rng.standard_normal((BATCH, 2, 4, 2)).astype(
        "float32"
    )


def _powers(rng):  # Power-Net: h -> softmax [batch, 2K = 4]
    target = rng.uniform(size=(BATCH, 4))
    return rng.standard_normal((BATCH, 2, 4, 2)).astype("float32"), (target / target.sum(1, keepdims=True)).astype(
        "float32"
    )


MODELS = {
    **{name: (lambda name=name: create_model(name, **CSI_GEOMETRY), _csi) for name in list_models()},
    "kong_receiver_tanh": (lambda: build_receiver(8, 4, hidden=(16, 12), binarization="tanh-ste"), _pilots),
    "kong_receiver_sigmoid": (
        lambda: build_receiver(8, 4, hidden=(16, 12), binarization="sigmoid-ste",
                               binarization_kwargs={"initial_slope": 2.0}),
        _pilots,
    ),
    "kong_transmitter": (lambda: build_transmitter(2, 3, 4, 1, hidden=(16, 12), power_input=True), _feedback),
    "zhang_csi_net": (lambda: build_csi_net(4, 2, hidden=(16, 16)), _channels),
    "zhang_power_net_fc": (lambda: build_power_net(4, 2, hidden=(16, 16)), _powers),
    # dropout 0: a random mask would differ between backends (the fit step is compared with TensorFlow's)
    "zhang_power_net_cnn": (
        lambda: build_power_net(4, 2, variant="cnn", hidden=(16,), filters=(4, 2), dropout=0.0),
        _powers,
    ),
}
"""Model name -> (builder of a small instance, ``rng -> (inputs, targets)``)."""

TENSORFLOW_ONLY = {
    "BeamformingRecovery": lambda: BeamformingRecovery(power=1.0, noise=1.0),
    "ReducedBeamformingRecovery": lambda: ReducedBeamformingRecovery(power=1.0, noise=1.0),
    "ZFRecovery": lambda: ZFRecovery(power=1.0),
    "SLNRRecovery": lambda: SLNRRecovery(power=1.0, noise=1.0, users_per_cell=1),
    "MulticellZFRecovery": lambda: MulticellZFRecovery(power=1.0, users_per_cell=1),
}
"""The layers of :mod:`mimokd.zoo.beamforming` that run under TensorFlow only (its docstring)."""


def build(name):
    """A fresh instance of model ``name`` with seeded weights."""
    keras.utils.set_random_seed(0)
    return MODELS[name][0]()


def data(name):
    """The model's reference ``(inputs, targets)``, numpy float32 (the same under every backend)."""
    return MODELS[name][1](np.random.default_rng(1))


def fit_step(model, inputs, targets):
    """One SGD step on the whole batch (no shuffling); returns the loss before the update."""
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss="mse")
    return model.fit(inputs, targets, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history["loss"][0]


def predict(model, inputs):
    """The model's output in inference mode, numpy (a direct call: no ``predict`` function to trace)."""
    return keras.ops.convert_to_numpy(model(inputs, training=False))


def write_reference(directory):
    """Under TensorFlow: every model's weights (``.weights.h5``), ``.keras`` file and, in
    ``<model>.npz``, its prediction, its weights before (``before0, ...``) and after (``w0, ...``)
    :func:`fit_step`, their ``paths`` and the loss."""
    directory = Path(directory)
    for name in MODELS:
        model = build(name)
        inputs, targets = data(name)
        model.save_weights(directory / f"{name}.weights.h5")
        model.save(directory / f"{name}.keras")
        prediction = predict(model, inputs)
        before = {f"before{i}": w for i, w in enumerate(model.get_weights())}
        loss = fit_step(model, inputs, targets)
        np.savez(directory / f"{name}.npz", predict=prediction, loss=loss, paths=[w.path for w in model.weights],
                 **before, **{f"w{i}": w for i, w in enumerate(model.get_weights())})


def check(name, directory, out):
    """This backend's results for model ``name`` (module docstring) into ``out/<name>.npz``."""
    model = build(name)
    inputs, targets = data(name)
    model.load_weights(directory / f"{name}.weights.h5")
    results = {"predict": predict(model, inputs)}
    results["loaded"] = predict(keras.saving.load_model(directory / f"{name}.keras"), inputs)
    model.save(out / f"{name}.keras")
    results["reloaded"] = predict(keras.saving.load_model(out / f"{name}.keras"), inputs)
    results["loss"] = fit_step(model, inputs, targets)
    np.savez(out / f"{name}.npz", **results, **{f"w{i}": w for i, w in enumerate(model.get_weights())})


def refusal(layer):
    """The message a TensorFlow-only layer raises when built under this backend (``None``: it built)."""
    try:
        TENSORFLOW_ONLY[layer]()
    except NotImplementedError as err:
        return str(err)
    return None


def main(directory):
    directory = Path(directory)
    backend = keras.backend.backend()
    out = directory / backend
    out.mkdir(exist_ok=True)
    errors = {}
    for name in MODELS:
        try:
            check(name, directory, out)
        except Exception:  # noqa: BLE001  (reported per model by the test)
            errors[name] = traceback.format_exc()
    refusals = {layer: refusal(layer) for layer in TENSORFLOW_ONLY}
    print(json.dumps({"backend": backend, "errors": errors, "refusals": refusals}))


if __name__ == "__main__":
    main(sys.argv[1])
