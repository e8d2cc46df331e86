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


def loss_term_gradients(model, x, y, powers, fn):
    """Gradients of ``fn(model.loss_terms(x, y, powers, training=True))`` w.r.t. the trainable
    variables, as numpy arrays (``None`` where a variable gets no gradient)."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = fn(model.loss_terms(x, y, powers, training=True))
    return [g if g is None else g.numpy() for g in tape.gradient(value, model.trainable_variables)]


def assert_same_gradients(ga, gb):
    """Two gradient lists agree: the same variables get none, the others are equal to 1e-4."""
    assert len(ga) == len(gb)
    for a, b in zip(ga, gb):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
