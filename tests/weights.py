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


def train_step_math(model, x, jit_compile=False):
    """One training-mode forward / backward of ``model`` on ``x`` under
    ``tf.function(jit_compile=...)`` (a train step without the optimizer's update).

    Returns:
        ``(output, gradients, moving_statistics)``: the output, the MSE gradients of every trainable
        weight and the BatchNorm moving means and variances the step leaves (numpy arrays).
    """
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def step(inp):
        with tf.GradientTape() as tape:
            out = model(inp, training=True)
            loss = tf.reduce_mean(tf.square(out - inp))
        return out, tape.gradient(loss, model.trainable_weights)

    out, grads = step(x)
    stats = [w.numpy() for w in model.non_trainable_weights if "moving" in w.path]
    return out.numpy(), [g.numpy() for g in grads], stats


def assert_same_step_math(plain, other, batchnorms):
    """Two :func:`train_step_math` results agree to float32 round-off: outputs to 1e-5, all gradients
    to 1e-4 relative (L2), and the moving statistics of all ``batchnorms`` layers to 1e-5, each moved
    away from its initial value (0 for means, 1 for variances) so that the comparison means something."""
    np.testing.assert_allclose(other[0], plain[0], atol=1e-5)
    flat = [np.concatenate([g.ravel() for g in run[1]]) for run in (plain, other)]
    assert np.linalg.norm(flat[0]) > 0
    assert np.linalg.norm(flat[1] - flat[0]) <= 1e-4 * np.linalg.norm(flat[0])
    assert len(plain[2]) == len(other[2]) == 2 * batchnorms
    for a, b, initial in zip(plain[2], other[2], (0.0, 1.0) * batchnorms):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        assert not np.allclose(a, initial)
