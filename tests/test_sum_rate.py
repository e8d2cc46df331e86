"""Eq. (1) of Kong et al. (mimokd.classical.sum_rate): numpy and TensorFlow sum rates."""

import numpy as np
import pytest
import tensorflow as tf

from mimokd.classical.mimo import rayleigh_channels
from mimokd.classical.sum_rate import db_to_linear, sum_rate_np, sum_rate_tf, user_rates_np, user_rates_tf

M, N, K = 8, 2, 4


def _cn(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def _unit_columns(rng, batch, m, cols):
    """Random precoders [batch, m, cols] with unit-norm columns (tr(V_k^H V_k) = N), as the DNN emits."""
    V = _cn(rng, (batch, m, cols))
    return V / np.linalg.norm(V, axis=1, keepdims=True)


@pytest.fixture
def system():
    rng = np.random.default_rng(0)
    H = rayleigh_channels(32, K, M, N, rng=rng)
    V = _unit_columns(rng, 32, M, K * N).astype(np.complex64)
    return H, V


def test_db_to_linear():
    assert db_to_linear(0) == 1.0 and db_to_linear(30) == pytest.approx(1000.0)
    np.testing.assert_allclose(db_to_linear(np.array([-10.0, 10.0, 20.0])), [0.1, 10.0, 100.0])


@pytest.mark.parametrize("p_db", [0.0, 10.0, 20.0, 30.0])
def test_tf_matches_numpy(system, p_db):
    H, V = system
    P = db_to_linear(p_db)
    expected = sum_rate_np(H, V, P)
    assert expected.shape == (32,) and expected.dtype == np.float64
    got = sum_rate_tf(tf.constant(H), tf.constant(V), P)
    assert got.shape == (32,) and got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(user_rates_tf(H, V, P).numpy(), user_rates_np(H, V, P), rtol=1e-4, atol=1e-5)


def test_per_sample_power(system):
    H, V = system
    P = db_to_linear(np.linspace(0.0, 30.0, 32))
    expected = np.array([sum_rate_np(H[b : b + 1], V[b : b + 1], P[b])[0] for b in range(32)])
    np.testing.assert_allclose(sum_rate_np(H, V, P), expected, rtol=1e-12)
    np.testing.assert_allclose(sum_rate_np(H, V, P[:, None]), expected, rtol=1e-12)
    np.testing.assert_allclose(sum_rate_tf(H, V, P.astype(np.float32)).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(sum_rate_tf(H, V, tf.constant(P[:, None], tf.float32)).numpy(), expected, rtol=1e-4)


def test_single_antenna_single_user_closed_form():
    rng = np.random.default_rng(1)
    m, P = 4, 10.0
    h = _cn(rng, (16, m))
    v = _unit_columns(rng, 16, m, 1)[..., 0]
    H, V = h[:, None, :, None], v[:, :, None]  # [16, 1, m, 1], [16, m, 1]
    expected = np.log2(1 + P / m * np.abs(np.sum(h.conj() * v, axis=1)) ** 2)
    np.testing.assert_allclose(sum_rate_np(H, V, P), expected, rtol=1e-12)
    np.testing.assert_allclose(sum_rate_tf(H.astype(np.complex64), V.astype(np.complex64), P).numpy(), expected,
                               rtol=1e-5)


def test_orthogonal_users_have_no_interference():
    rng = np.random.default_rng(2)
    batch, P = 8, 100.0
    Q, _ = np.linalg.qr(_cn(rng, (batch, M, M)))  # unitary per sample
    H = np.empty((batch, K, M, N), complex)
    V = np.empty((batch, M, K * N), complex)
    for k in range(K):
        Q_k = Q[:, :, k * N : (k + 1) * N]  # user k lives in its own N-dim subspace
        H[:, k] = Q_k @ _cn(rng, (batch, N, N))
        V[:, :, k * N : (k + 1) * N] = Q_k @ _cn(rng, (batch, N, N))
    for k in range(K):
        for j in range(K):
            if j != k:
                np.testing.assert_allclose(H[:, k].conj().transpose(0, 2, 1) @ V[:, :, j * N : (j + 1) * N], 0,
                                           atol=1e-12)
    expected = np.zeros((batch, K))
    for k in range(K):
        G = H[:, k].conj().transpose(0, 2, 1) @ V[:, :, k * N : (k + 1) * N]
        expected[:, k] = np.log2(np.linalg.det(np.eye(N) + P / M * G @ G.conj().transpose(0, 2, 1)).real)
    np.testing.assert_allclose(user_rates_np(H, V, P), expected, rtol=1e-10)
    np.testing.assert_allclose(sum_rate_tf(H, V, P).numpy(), expected.sum(axis=1), rtol=1e-4)


def test_rates_are_nonnegative_and_increase_with_power(system):
    H, V = system
    powers = [0.0, 0.1, 1.0, 10.0, 100.0, 1000.0]
    users = np.stack([user_rates_np(H, V, p) for p in powers])  # [P, batch, K]
    np.testing.assert_allclose(users[0], 0.0, atol=1e-12)
    assert np.all(users >= -1e-12)
    assert np.all(np.diff(users, axis=0) >= -1e-12)  # each R_k is nondecreasing in P
    assert np.all(np.diff(users.sum(axis=-1), axis=0) > 0)
    tf_rates = np.stack([sum_rate_tf(H, V, p).numpy() for p in powers])
    assert np.all(tf_rates >= -1e-5) and np.all(np.diff(tf_rates, axis=0) > 0)


def test_gradients_flow_and_match_finite_differences(system):
    H, V = system
    P = 100.0
    v_re = tf.Variable(V.real.astype(np.float32))
    v_im = tf.Variable(V.imag.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(sum_rate_tf(H, tf.complex(v_re, v_im), P))
    g_re, g_im = tape.gradient(loss, [v_re, v_im])
    assert g_re is not None and g_im is not None
    assert np.all(np.isfinite(g_re.numpy())) and np.all(np.isfinite(g_im.numpy()))
    assert np.abs(g_re.numpy()).max() > 0 and np.abs(g_im.numpy()).max() > 0

    # central differences of the float64 numpy rate, one entry each of Re(V) and Im(V)
    V64, eps, index = V.astype(complex), 1e-6, (3, 5, 2)
    for grad, direction in ((g_re, 1.0), (g_im, 1j)):
        plus, minus = V64.copy(), V64.copy()
        plus[index] += eps * direction
        minus[index] -= eps * direction
        numeric = -(sum_rate_np(H, plus, P).mean() - sum_rate_np(H, minus, P).mean()) / (2 * eps)
        assert grad.numpy()[index] == pytest.approx(numeric, rel=2e-3, abs=1e-6)

    # w.r.t. a complex variable TensorFlow returns dL/dRe + j dL/dIm
    v = tf.Variable(V)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(sum_rate_tf(H, v, P))
    np.testing.assert_allclose(tape.gradient(loss, v).numpy(), g_re.numpy() + 1j * g_im.numpy(), rtol=1e-4,
                               atol=1e-7)


def test_tf_works_in_a_graph_with_unknown_batch(system):
    H, V = system
    fn = tf.function(sum_rate_tf, input_signature=[
        tf.TensorSpec([None, K, M, N], tf.complex64),
        tf.TensorSpec([None, M, K * N], tf.complex64),
        tf.TensorSpec([None], tf.float32),
    ])
    P = np.full(32, 10.0, np.float32)
    np.testing.assert_allclose(fn(H, V, P).numpy(), sum_rate_np(H, V, 10.0), rtol=1e-4)


def test_shape_errors(system):
    H, V = system
    for fn in (sum_rate_np, sum_rate_tf):
        with pytest.raises(ValueError, match=r"`V` must be \[batch, M, K\*N\]"):
            fn(H, V[:, :, :6], 1.0)
        with pytest.raises(ValueError, match="same batch size"):
            fn(H, V[:5], 1.0)
        with pytest.raises(ValueError, match=r"`H` must be complex \[batch, K, M, N\]"):
            fn(H[:, 0], V, 1.0)
        with pytest.raises(ValueError, match="`P` must be a scalar"):
            fn(H, V, np.ones(5))
        with pytest.raises(ValueError, match="`P` must be a scalar"):
            fn(H, V, np.ones((32, 2)))
    with pytest.raises(ValueError, match=">= 0"):
        sum_rate_np(H, V, -1.0)


@pytest.mark.parametrize("P", [-1.0, np.nan, np.inf, np.array([10.0] * 31 + [-0.5])])
def test_a_negative_or_non_finite_power_is_refused_naming_it(system, P):
    H, V = system
    in_a_graph = tf.function(lambda H, V: sum_rate_tf(H, V, tf.constant(P, tf.float32)))  # P a constant
    for fn in (sum_rate_np, sum_rate_tf, lambda H, V, P: in_a_graph(H, V)):
        with pytest.raises(ValueError, match=r"`P` must be a finite number >= 0 \(linear power"):
            fn(H, V, P)
