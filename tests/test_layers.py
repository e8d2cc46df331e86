"""Straight-through sign, binarized dense kernel (BCRNet), ReZero (other backends: test_backends.py)."""

import keras
import numpy as np
import tensorflow as tf

from mimokd.zoo import BinarizedDense, ReZero, create_model, ste_sign


def test_ste_sign_forward_and_masked_gradient():
    x = tf.constant([-2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 1.5])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ste_sign(x)
        loss = tf.reduce_sum(y * tf.constant([1.0, 2, 3, 4, 5, 6, 7]))
    np.testing.assert_array_equal(y.numpy(), [-1, -1, -1, 1, 1, 1, 1])
    grad = tape.gradient(loss, x).numpy()
    # gradient passes straight through where |x| <= 1 and is masked outside
    np.testing.assert_array_equal(grad, [0, 2, 3, 4, 5, 6, 0])


def test_binarized_kernel_values_are_plus_minus_mean_abs():
    layer = BinarizedDense(16)
    layer.build((None, 64))
    w = layer.kernel.numpy()
    wb = keras.ops.convert_to_numpy(layer.binarized_kernel())
    alpha = np.abs(w).mean()
    np.testing.assert_allclose(np.abs(wb), alpha, rtol=1e-6)
    np.testing.assert_array_equal(np.sign(wb), np.where(w >= 0, 1.0, -1.0))
    x = np.random.default_rng(1).standard_normal((3, 64)).astype("float32")
    expected = x @ (alpha * np.where(w >= 0, 1.0, -1.0)) + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_binarized_dense_gradient_reaches_latent_kernel():
    layer = BinarizedDense(8)
    layer.build((None, 32))
    # push a few latent weights outside [-1, 1]: their STE gradient must be masked
    w = layer.kernel.numpy()
    w[0, :] = 3.0
    layer.kernel.assign(w)
    x = tf.random.stateless_normal((5, 32), seed=(1, 2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grad = tape.gradient(loss, layer.kernel).numpy()
    assert np.count_nonzero(grad) > 0
    # rows with |w| > 1 only get the (shared) gradient through alpha = mean|W|
    alpha_part = grad[0]
    assert np.allclose(alpha_part, alpha_part[0] * np.sign(w[0]))
    assert not np.allclose(grad[1], grad[1][0] * np.sign(w[1]))


def test_bcrnet_encoder_uses_binarized_kernel_only_in_dense():
    model = create_model("bcrnet", cr=32)
    dense = model.encoder.get_layer("enc_dense")
    assert isinstance(dense, BinarizedDense)
    assert not isinstance(model.decoder.get_layer("dec_dense"), BinarizedDense)


def test_rezero_starts_as_identity():
    layer = ReZero()
    x = np.ones((2, 3), "float32")
    r = np.full((2, 3), 7.0, "float32")
    np.testing.assert_array_equal(layer([x, r]).numpy(), x)
    layer.scale.assign(0.5)
    np.testing.assert_allclose(layer([x, r]).numpy(), x + 3.5)
