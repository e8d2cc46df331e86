"""Binarized weights for deployment: folded into a plain dense layer, or stored as bits.

:func:`fold_binarized` gives the inference copy of a model in which each
:class:`~mimokd.zoo.layers.BinarizedDense` is a plain ``Dense`` holding ``sign(W) * alpha``, so
exported artifacts do not binarize the latent kernel at every call (the outputs are identical).

A :class:`~mimokd.zoo.layers.BinarizedDense` computes with ``sign(W) * alpha``, ``alpha = mean|W|``,
so a device needs one bit per weight and one float per layer, not the float latent ``W`` that
training keeps (and that SavedModel / ONNX / TFLite artifacts store). :func:`write_packed` writes
the inference weights of a model with each binarized kernel as ``numpy.packbits`` of its signs
plus ``alpha``; every other weight (biases, convolutions, BatchNorm statistics) stays float32.
:func:`read_packed` loads them back into a model of the same architecture, whose outputs are then
the same up to float32 rounding (the latent kernel is rebuilt as ``alpha * sign``, which binarizes
to itself; the layer recomputes ``mean|W|`` in float32, about 1e-6 relative).
"""

import keras
import numpy as np

from mimokd.zoo.layers import BinarizedDense


def _layers(model):
    """Every layer with weights, nested models flattened, in a fixed order."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _layers(layer)
        elif layer.weights:
            yield layer


def fold_binarized(model):
    """An inference copy of ``model`` with each BinarizedDense folded into a plain Dense.

    Args:
        model: a functional ``keras.Model`` (e.g. a BCRNet encoder); left unchanged.

    Returns:
        ``model`` itself when it has no binarized layer, else a clone whose binarized layers are
        ``keras.layers.Dense`` with kernel ``sign(W) * mean|W|`` and the same bias and name.
    """
    if not any(isinstance(layer, BinarizedDense) for layer in _layers(model)):
        return model

    def clone(layer):
        if isinstance(layer, BinarizedDense):
            return keras.layers.Dense.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    folded = keras.models.clone_model(model, clone_function=clone)
    for source, target in zip(_layers(model), _layers(folded)):
        weights = source.get_weights()
        if isinstance(source, BinarizedDense):
            weights[0] = np.asarray(source.binarized_kernel())
        target.set_weights(weights)
    return folded


def write_packed(model, path):
    """Write ``model``'s inference weights with binarized kernels packed to bits (``.npz``, atomic).

    Returns:
        int, the file's size in bytes.
    """
    from mimokd.fileio import atomic_path

    arrays = {}
    for i, layer in enumerate(_layers(model)):
        weights = [np.asarray(w) for w in layer.get_weights()]
        if isinstance(layer, BinarizedDense):
            kernel = weights[0]
            arrays[f"{i}/signs"] = np.packbits(kernel >= 0)
            arrays[f"{i}/alpha"] = np.float32(np.mean(np.abs(kernel)))
            weights = weights[1:]
        for j, w in enumerate(weights):
            arrays[f"{i}/{j}"] = w.astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return tmp.stat().st_size


def read_packed(model, path):
    """Load weights written by :func:`write_packed` into ``model`` (same architecture), in place.

    Raises:
        ValueError: the file does not hold the weights of this architecture.
    """
    with np.load(path) as data:
        stored = dict(data)
    for i, layer in enumerate(_layers(model)):
        shapes = [tuple(w.shape) for w in layer.weights]
        weights = []
        if isinstance(layer, BinarizedDense):
            if f"{i}/signs" not in stored:
                raise ValueError(f"{path} holds no packed kernel for binarized layer {layer.name!r}")
            count = int(np.prod(shapes[0]))
            signs = np.unpackbits(stored[f"{i}/signs"], count=count).reshape(shapes[0])
            weights.append(stored[f"{i}/alpha"] * (2.0 * signs - 1.0).astype(np.float32))
        weights += [stored.get(f"{i}/{j}") for j in range(len(shapes) - len(weights))]
        if any(w is None for w in weights) or [tuple(w.shape) for w in weights] != shapes:
            raise ValueError(
                f"{path} does not hold the weights of layer {layer.name!r}: expected shapes {shapes}, "
                f"found {[None if w is None else tuple(w.shape) for w in weights]}"
            )
        layer.set_weights(weights)
    return model
