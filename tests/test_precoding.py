"""Kong et al.'s receiver / transmitter DNNs (zoo/precoding.py): binarizations, shapes, h(.), saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mimokd.zoo.precoding import (
    BINARIZATIONS,
    KongSystem,
    SigmoidSTE,
    TanhSTE,
    build_receiver,
    build_transmitter,
    make_binarization,
    receiver_logits,
    to_complex,
    transmit,
)

K, M, N, B, L = 2, 4, 1, 3, 4
HIDDEN = (16, 16)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _values(seed=0, shape=(64, 5), scale=2.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype("float32")


def _grad(layer, u, upstream):
    u = tf.constant(u)
    with tf.GradientTape() as tape:
        tape.watch(u)
        y = layer(u)
        objective = tf.reduce_sum(y * upstream)
    return y.numpy(), tape.gradient(objective, u).numpy()


# --- binarizations --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BINARIZATIONS))
def test_binarization_outputs_exact_signs(kind):
    u = _values()
    u[0, :3] = [0.0, -0.0, 1e-30]  # zero maps to +1: the feedback is always ±1
    y = keras.ops.convert_to_numpy(make_binarization(kind)(u))
    assert set(np.unique(y)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(y, np.where(u >= 0, 1.0, -1.0))


def test_tanh_ste_gradient_is_that_of_tanh():
    """Eq. (8): the backward pass of sign(tanh(u)) is d tanh(u) / du = 1 - tanh(u)^2."""
    u, upstream = _values(1), _values(2)
    y, grad = _grad(TanhSTE(), u, upstream)
    np.testing.assert_array_equal(y, np.sign(np.tanh(u)))
    np.testing.assert_allclose(grad, upstream * (1.0 - np.tanh(u) ** 2), rtol=1e-5, atol=5e-6)  # float32


def test_sigmoid_ste_gradient_follows_the_slope():
    """Sohrabi et al.: the backward pass is d(2 sigmoid(a u) - 1)/du = 2a sigmoid(au)(1 - sigmoid(au))."""
    u, upstream = _values(3), _values(4)
    layer = SigmoidSTE(initial_slope=1.0)
    layer(u)  # builds the slope weight
    grads = {}
    for slope in (1.0, 4.0):
        layer.slope.assign(slope)
        y, grads[slope] = _grad(layer, u, upstream)
        np.testing.assert_array_equal(y, np.where(u >= 0, 1.0, -1.0))  # the forward pass ignores the slope
        s = _sigmoid(slope * u)
        np.testing.assert_allclose(grads[slope], upstream * 2 * slope * s * (1 - s), rtol=1e-5, atol=5e-6)
    assert not np.allclose(grads[1.0], grads[4.0])
    assert not layer.slope.trainable and layer.trainable_weights == []


def test_binarization_arguments_are_checked():
    with pytest.raises(ValueError, match="Received: binarization='sign'"):
        make_binarization("sign")
    with pytest.raises(ValueError, match="initial_slope"):
        SigmoidSTE(initial_slope=0.0)
    with pytest.raises(ValueError, match="Received: bits=0"):
        build_receiver(8, 0)
    with pytest.raises(ValueError, match="hidden"):
        build_transmitter(K, B, M, N, hidden=())


# --- receiver -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BINARIZATIONS))
def test_receiver_outputs_bits_and_exposes_logits(kind):
    keras.utils.set_random_seed(0)
    receiver = build_receiver(2 * N * L, B, HIDDEN, binarization=kind)
    x = _values(5, (32, 2 * N * L))
    bits = keras.ops.convert_to_numpy(receiver(x))
    assert bits.shape == (32, B) and set(np.unique(bits)) <= {-1.0, 1.0}
    logits = receiver_logits(receiver)
    assert len(receiver.outputs) == 1  # the deployable UE part outputs the bits only
    assert {id(w) for w in logits.weights} <= {id(w) for w in receiver.weights}  # same layers
    u = keras.ops.convert_to_numpy(logits(x))
    np.testing.assert_array_equal(bits, np.where(u >= 0, 1.0, -1.0))
    dense = [layer for layer in receiver.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [*HIDDEN, B]
    assert all(np.all(d.bias.numpy() == 0) for d in dense)  # zero biases


# --- transmitter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("power_input", [True, False])
def test_transmitter_columns_have_unit_norm(power_input):
    keras.utils.set_random_seed(1)
    tx = build_transmitter(K, B, M, N, hidden=HIDDEN, power_input=power_input)
    feedback = np.sign(_values(6, (16, K * B))).astype("float32")
    v = keras.ops.convert_to_numpy(transmit(tx, feedback, 20.0))
    assert v.shape == (16, M, K * N, 2) and v.dtype == np.float32
    vc = to_complex(v)
    assert vc.shape == (16, M, K * N) and vc.dtype == np.complex64
    np.testing.assert_allclose(np.linalg.norm(vc, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(to_complex(tf.constant(v)).numpy(), vc)
    assert len(tx.inputs) == (2 if power_input else 1)


def test_transmitter_power_input_is_db_and_matters():
    keras.utils.set_random_seed(2)
    tx = build_transmitter(K, B, M, N, hidden=HIDDEN)
    feedback = np.sign(_values(7, (4, K * B))).astype("float32")
    at_10 = keras.ops.convert_to_numpy(transmit(tx, feedback, 10.0))
    per_sample = keras.ops.convert_to_numpy(tx([feedback, np.full((4, 1), 10.0, "float32")]))
    np.testing.assert_allclose(at_10, per_sample, rtol=1e-6)
    assert not np.allclose(at_10, keras.ops.convert_to_numpy(transmit(tx, feedback, 30.0)))


# --- the system -----------------------------------------------------------------------------------


def _system(shared=True, binarization="tanh-ste"):
    keras.utils.set_random_seed(3)
    return KongSystem.build(
        num_users=K, num_tx=M, num_rx=N, pilot_length=L, bits=B, shared_receiver=shared,
        binarization=binarization, receiver_hidden=HIDDEN, transmitter_hidden=HIDDEN,
    )


def test_shared_and_per_user_receivers():
    pilots = _values(8, (10, K, 2 * N * L))
    shared = _system(shared=True)
    assert shared.shared_receiver and len(shared.unique_receivers) == 1 and shared.receivers[1] is shared.receiver
    fb = keras.ops.convert_to_numpy(shared.feedback(pilots))
    expected = np.concatenate([keras.ops.convert_to_numpy(shared.receiver(pilots[:, k])) for k in range(K)], -1)
    np.testing.assert_array_equal(fb, expected)  # user k's bits at [k*B, (k+1)*B)
    u = keras.ops.convert_to_numpy(shared.logits(pilots))
    np.testing.assert_array_equal(fb, np.where(u >= 0, 1.0, -1.0))

    per_user = _system(shared=False)
    assert not per_user.shared_receiver and len(per_user.unique_receivers) == K
    fb = keras.ops.convert_to_numpy(per_user.feedback(pilots))
    per_user_bits = [keras.ops.convert_to_numpy(r(pilots[:, k])) for k, r in enumerate(per_user.receivers)]
    expected = np.concatenate(per_user_bits, -1)
    np.testing.assert_array_equal(fb, expected)
    with pytest.raises(ValueError, match="receivers\\[k\\]"):
        _ = per_user.receiver
    dims = (per_user.num_users, per_user.num_tx, per_user.num_rx, per_user.pilot_length, per_user.bits)
    assert dims == (K, M, N, L, B)
    v = keras.ops.convert_to_numpy(per_user.precoders(pilots, 10.0))
    v_aux = keras.ops.convert_to_numpy(per_user.aux_precoders(pilots, 10.0))
    assert v.shape == v_aux.shape == (10, M, K * N, 2)


def test_paper_sizes_are_the_default():
    """M=8, N=2, K=4: receiver 640-480-320 (40MN, 30MN, 20MN), transmitters 1280-1920-2560 -> 2MNK."""
    system = KongSystem.build(num_users=4, num_tx=8, num_rx=2, pilot_length=8, bits=6)
    units = [d.units for d in system.receiver.layers if isinstance(d, keras.layers.Dense)]
    assert units == [640, 480, 320, 6] and system.receiver.input_shape == (None, 32)
    for tx in (system.transmitter, system.aux_transmitter):
        units = [d.units for d in tx.layers if isinstance(d, keras.layers.Dense)]
        assert units == [1280, 1920, 2560, 128]
        assert tx.output_shape == (None, 8, 8, 2)
    assert system.transmitter is not system.aux_transmitter


def test_system_rejects_mismatched_parts():
    system = _system()
    other = build_transmitter(K + 1, B, M, N, hidden=HIDDEN)
    with pytest.raises(ValueError, match="feedback values"):
        KongSystem(system.receivers, other, other)
    with pytest.raises(ValueError, match="auxiliary transmitter"):
        KongSystem(system.receivers, system.transmitter, build_transmitter(K, B, M, N, HIDDEN, power_input=False))


# --- saving ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("binarization", sorted(BINARIZATIONS))
def test_receiver_and_transmitter_keras_round_trip(tmp_path, binarization):
    system = _system(binarization=binarization)
    binarize = system.receiver.get_layer("binarize")
    if binarization == "sigmoid-ste":
        binarize.slope.assign(3.5)  # an annealed slope is saved with the weights
    pilots = _values(9, (8, 2 * N * L))
    feedback = np.sign(_values(10, (8, K * B))).astype("float32")
    power = np.full((8, 1), 20.0, "float32")
    for model, x in ((system.receiver, pilots), (system.transmitter, [feedback, power])):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    loaded = keras.saving.load_model(tmp_path / "receiver.keras")
    assert type(loaded.get_layer("binarize")) is type(binarize)
    if binarization == "sigmoid-ste":
        assert float(loaded.get_layer("binarize").slope.numpy()) == 3.5
    # a loaded receiver still exposes u
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(receiver_logits(loaded)(pilots)),
        keras.ops.convert_to_numpy(receiver_logits(system.receiver)(pilots)),
    )


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx", "tflite-f32"])
def test_receiver_exports_and_gives_the_same_bits_in_its_runtime(tmp_path, fmt):
    from mimokd.classical.mimo import dft_pilots, pilots_to_real, rayleigh_channels, received_pilots
    from mimokd.export.formats import FORMATS, Endpoint, write_artifact
    from mimokd.export.parity import check_parity
    from mimokd.export.runtimes import load_runner

    receiver = build_receiver(2 * 1 * 4, 3, hidden=(16, 16))
    H = rayleigh_channels(64, 1, 4, 1, rng=0)
    pilots = pilots_to_real(received_pilots(H, dft_pilots(4, 4), 10.0, 1))[:, 0]
    endpoint = Endpoint("receive", "pilots", "bits")
    path = write_artifact(receiver, FORMATS[fmt], tmp_path / f"receiver{FORMATS[fmt].suffix}", endpoint)
    runner = load_runner(path, fmt, endpoint)
    check_parity(receiver, runner, FORMATS[fmt], pilots)  # raises on any flipped bit
    np.testing.assert_array_equal(runner(pilots), np.asarray(receiver(pilots)))
