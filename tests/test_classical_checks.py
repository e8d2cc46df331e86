"""The classical APIs refuse NaN / infinite channels and negative powers, naming the argument
(issue 16, item 4), through the shared checks of mimokd.classical.checks."""

import numpy as np
import pytest
import tensorflow as tf

from mimokd.classical.block_diag import bd_precoder, infinite_feedback_rbd_sum_rate, rbd_precoder
from mimokd.classical.checks import check_channel, check_power
from mimokd.classical.miso import mrt_beamformer, wmmse, zf_beamformer
from mimokd.classical.multicell_wmmse import multicell_wmmse
from mimokd.classical.slnr import slnr_beamformer
from mimokd.classical.sum_rate import sum_rate_np, sum_rate_tf

RNG = np.random.default_rng(0)
MIMO = RNG.normal(size=(2, 2, 4, 2)) + 1j * RNG.normal(size=(2, 2, 4, 2))  # [batch, K, M, N], K N = M
MISO = RNG.normal(size=(2, 2, 4)) + 1j * RNG.normal(size=(2, 2, 4))  # [batch, K, Nt]
CELLS = RNG.normal(size=(2, 2, 2, 4)) + 1j * RNG.normal(size=(2, 2, 2, 4))  # [batch, num_bs, K_total, Nt]
V = bd_precoder(MIMO)

# name -> (call(channel, power), the clean channel, the channel's argument name, the power's or None)
APIS = {
    "sum_rate_np": (lambda H, P: sum_rate_np(H, V, P), MIMO, "H", "P"),
    "sum_rate_tf": (lambda H, P: sum_rate_tf(tf.constant(H, tf.complex64), V, P), MIMO, "H", "P"),
    "bd_precoder": (lambda H, P: bd_precoder(H), MIMO, "H_hat", None),
    "rbd_precoder": (lambda H, P: rbd_precoder(H, 0.1), MIMO, "H_hat", None),
    "infinite_feedback_rbd_sum_rate": (lambda H, P: infinite_feedback_rbd_sum_rate(H, MIMO, P, 0.1), MIMO,
                                       "H_true", "P"),
    "zf_beamformer": (zf_beamformer, MISO, "h", "P"),
    "mrt_beamformer": (mrt_beamformer, MISO, "h", "P"),
    "wmmse": (lambda h, P: wmmse(h, P, 1.0, max_iter=2), MISO, "h", "P"),
    "wmmse noise": (lambda h, noise: wmmse(h, 1.0, noise, max_iter=2), MISO, "h", "noise"),
    "slnr_beamformer": (lambda h, P: slnr_beamformer(h, P, 1.0, iterations=2), MISO, "h", "P"),
    "multicell_wmmse": (lambda h, P: multicell_wmmse(h, P, 1.0, 1, max_iter=2), CELLS, "h", "P"),
}


def _spoiled(H, value):
    H = np.array(H)
    H.flat[3] = value
    return H


@pytest.mark.parametrize("value", [np.nan, np.inf, complex(0, -np.inf)], ids=["nan", "inf", "-inf imaginary"])
@pytest.mark.parametrize("api", APIS)
def test_a_non_finite_channel_is_refused_naming_it(api, value):
    call, H, channel, _ = APIS[api]
    call(H, 1.0)  # the clean channel passes
    with pytest.raises(ValueError, match=rf"`{channel}` holds 1 NaN or infinite value\(s\) of {H.size}"):
        call(_spoiled(H, value), 1.0)


@pytest.mark.parametrize("power", [-1.0, np.nan, np.inf])
@pytest.mark.parametrize("api", [api for api, (*_, power) in APIS.items() if power])
def test_a_negative_or_non_finite_power_is_refused_naming_it(api, power):
    call, H, _, name = APIS[api]
    with pytest.raises(ValueError, match=rf"`{name}` must be a finite number >=? 0 \(linear power"):
        call(H, power)


def test_the_shared_checks():
    assert check_channel("H", [[1 + 2j]]).dtype == np.complex128
    with pytest.raises(ValueError, match="`H` must be a numeric"):
        check_channel("H", np.array(["a"]))
    assert check_power("P", 0.0, scalar=True) == 0.0 and check_power("P", [1, 2]).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="`noise` must be a finite number > 0"):
        check_power("noise", 0.0, positive=True)
    for bad in (True, np.array([1.0]), "1"):
        with pytest.raises(ValueError, match="`P` must be a finite number >= 0"):
            check_power("P", bad, scalar=True)
