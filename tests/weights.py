"""Helpers shared by the trainer tests: model outputs and weight snapshots."""

import keras
import numpy as np


def model_output(model, x):
    """The model's output in inference mode (a direct call: cheaper than tracing ``predict``)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def snapshot(weights):
    """Copies of ``weights`` (a list of Keras variables) as numpy arrays."""
    return [w.numpy().copy() for w in weights]


def unchanged(before, weights):
    """Per weight: is it still equal to its ``snapshot``?"""
    return [np.array_equal(a, w.numpy()) for a, w in zip(before, weights)]
