"""Tests of mimokd.channels.transforms against explicit DFT matrices and closed forms."""

import numpy as np
import pytest

from mimokd.channels import layout
from mimokd.channels.transforms import (
    complex_to_csi,
    csi_to_complex,
    csi_to_frequency,
    peak_scale,
    to_angular_delay,
)


def _random_complex(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _dft_matrices(nt, nsub):
    """Eq. (4)'s F_a (orthonormal DFT) and F_d (orthonormal inverse DFT), built element by element."""
    t = np.arange(nt)
    n = np.arange(nsub)
    f_a = np.exp(-2j * np.pi * np.outer(t, t) / nt) / np.sqrt(nt)
    f_d = np.exp(+2j * np.pi * np.outer(n, n) / nsub) / np.sqrt(nsub)
    return f_a, f_d


@pytest.mark.parametrize("nt, nsub, n_delay", [(8, 64, 10), (32, 1024, 32)])
def test_to_angular_delay_matches_explicit_dft_matrices(nt, nsub, n_delay):
    rng = np.random.default_rng(0)
    h = _random_complex(rng, (3, nt, nsub))
    f_a, f_d = _dft_matrices(nt, nsub)
    expected = np.einsum("ka,bas,sm->bkm", f_a, h, f_d[:, :n_delay])
    got = to_angular_delay(h, n_delay)
    assert got.dtype == np.complex64
    assert got.shape == (3, nt, n_delay)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_to_angular_delay_keeps_energy_parseval():
    rng = np.random.default_rng(1)
    h = _random_complex(rng, (2, 32, 128))
    full = to_angular_delay(h, n_delay=128)
    np.testing.assert_allclose(
        np.sum(np.abs(full) ** 2, axis=(1, 2)), np.sum(np.abs(h) ** 2, axis=(1, 2)), rtol=1e-5
    )


@pytest.mark.parametrize("bin_index, tap", [(0, 0), (3, 5), (-3, 17), (15, 31)])
def test_single_path_on_the_grid_lands_in_one_bin_and_one_tap(bin_index, tap):
    nt, nsub = 32, 1024
    # Eq. (2) with d / lambda = 1/2: spatial frequency sin(theta) / 2 = bin_index / nt.
    theta = np.arcsin(2.0 * bin_index / nt)
    steering = np.exp(2j * np.pi * 0.5 * np.sin(theta) * np.arange(nt))
    # A delay of `tap` taps: tau * bandwidth = tap, i.e. n df tau = n tap / nsub.
    gains = 0.7 * np.exp(-2j * np.pi * np.arange(nsub) * tap / nsub)
    h = (steering[:, None] * gains[None, :])[None]

    got = np.abs(to_angular_delay(h, 32)[0])
    expected_bin = bin_index % nt  # negative angles wrap to the second half of the bins
    assert np.unravel_index(np.argmax(got), got.shape) == (expected_bin, tap)
    assert got[expected_bin, tap] == pytest.approx(0.7 * np.sqrt(nt * nsub), rel=1e-5)
    got[expected_bin, tap] = 0.0
    assert got.max() < 1e-3


@pytest.mark.parametrize("bin_index", [-16, -5, 0, 7, 15])
def test_centered_angle_order_puts_spatial_frequency_u_in_row_16_plus_16u(bin_index):
    # centered: row k holds spatial frequency (k - 16) / 32, so u = 2 * bin_index / 32 lands in row
    # 16 + bin_index: endfire u = -1 in row 0, broadside in row 16.
    nt, nsub, tap = 32, 64, 2
    steering = np.exp(2j * np.pi * bin_index / nt * np.arange(nt))
    gains = np.exp(-2j * np.pi * np.arange(nsub) * tap / nsub)
    h = (steering[:, None] * gains[None, :])[None]
    got = np.abs(to_angular_delay(h, 32, angle_order="centered")[0])
    assert np.unravel_index(np.argmax(got), got.shape) == (16 + bin_index, tap)
    np.testing.assert_allclose(to_angular_delay(h, 32, angle_order="centered"),
                               np.roll(to_angular_delay(h, 32), 16, axis=1), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="angle_order"):
        to_angular_delay(h, 32, angle_order="shifted")


def test_fractional_delay_spreads_over_neighbouring_taps():
    nsub = 1024
    h = np.exp(-2j * np.pi * np.arange(nsub) * 4.5 / nsub)[None, None, :].repeat(32, axis=1)
    power = np.abs(to_angular_delay(h, 32)[0, 0]) ** 2
    assert power[4] == pytest.approx(power[5], rel=1e-4)  # symmetric around 4.5
    assert power[4] > 10 * power[7]


def test_complex_to_csi_layout_and_round_trip():
    rng = np.random.default_rng(2)
    h = _random_complex(rng, (4, 32, 32)).astype(np.complex64)
    scale = 0.05
    csi = complex_to_csi(h, scale)
    assert csi.dtype == np.float32
    assert csi.shape == (4, *layout.CSI_SHAPE)
    # [batch, plane, angle, delay] with plane 0 = real, 1 = imaginary; 0.5 means zero.
    assert csi[1, 0, 7, 3] == pytest.approx(0.5 + scale * h[1, 7, 3].real, abs=1e-6)
    assert csi[1, 1, 7, 3] == pytest.approx(0.5 + scale * h[1, 7, 3].imag, abs=1e-6)
    np.testing.assert_allclose(csi_to_complex(csi, scale), h, atol=1e-4)


def test_peak_scale_fills_the_unit_range_per_sample():
    rng = np.random.default_rng(3)
    h = _random_complex(rng, (5, 32, 32)) * np.array([1e-3, 1.0, 10.0, 1e3, 1e5])[:, None, None]
    scale = peak_scale(h)
    csi = complex_to_csi(h, scale)
    peak = np.abs(csi - 0.5).reshape(5, -1).max(axis=1)
    np.testing.assert_allclose(peak, 0.5, atol=1e-6)
    assert csi.min() >= 0.0 and csi.max() <= 1.0
    np.testing.assert_allclose(csi_to_complex(csi, scale), h, rtol=0, atol=1e-5 * np.abs(h).max())


def test_peak_scale_of_a_zero_sample_is_one():
    h = np.zeros((2, 32, 32), np.complex64)
    h[1, 0, 0] = 2.0
    np.testing.assert_allclose(peak_scale(h), [1.0, 0.25])
    np.testing.assert_array_equal(complex_to_csi(h, peak_scale(h))[0], 0.5)


def test_complex_to_csi_rejects_a_scale_that_leaves_the_range():
    h = np.full((1, 32, 32), 2.0 + 0j)
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*Received: scale"):
        complex_to_csi(h, 1.0)
    with pytest.raises(ValueError, match=r"one value per sample.*Received: scale.shape"):
        complex_to_csi(h, np.ones(3))
    with pytest.raises(ValueError, match="finite and positive"):
        complex_to_csi(h, -1.0)


def test_csi_to_frequency_matches_the_explicit_zero_padded_dft():
    rng = np.random.default_rng(4)
    csi = rng.uniform(0, 1, (3, 2, 32, 32)).astype(np.float32)
    h = (csi[:, 0].astype(np.float64) - 0.5) + 1j * (csi[:, 1].astype(np.float64) - 0.5)
    m = np.arange(32)
    f = np.arange(125)
    padded_dft = np.exp(-2j * np.pi * np.outer(m, f) / 257)  # rows beyond 32 multiply the zero padding
    expected = h @ padded_dft
    got = csi_to_frequency(csi)
    assert got.shape == (3, 32, 125) and got.dtype == np.complex64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_csi_to_frequency_of_one_delay_tap_is_a_pure_phase_ramp():
    csi = np.full((1, 2, 32, 32), 0.5, np.float32)
    csi[0, 0, 4, 3] = 0.75  # real 0.25 at angle 4, delay tap 3
    got = csi_to_frequency(csi)[0]
    f = np.arange(125)
    np.testing.assert_allclose(got[4], 0.25 * np.exp(-2j * np.pi * 3 * f / 257), atol=1e-6)
    assert np.abs(np.delete(got, 4, axis=0)).max() == 0.0


def test_transforms_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"3 axes.*Received: h_freq.shape=\(32, 1024\)"):
        to_angular_delay(np.ones((32, 1024), np.complex64))
    with pytest.raises(ValueError, match="cannot exceed the number of subcarriers"):
        to_angular_delay(np.ones((1, 32, 16), np.complex64), n_delay=32)
    with pytest.raises(ValueError, match="positive integer"):
        to_angular_delay(np.ones((1, 32, 64), np.complex64), n_delay=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        to_angular_delay(np.full((1, 32, 64), np.nan, np.complex64))
    with pytest.raises(TypeError, match="complex"):
        to_angular_delay(np.ones((1, 32, 64), np.int32))
    with pytest.raises(ValueError, match=r"\[batch, 2, rows, columns\].*Received: csi.shape=\(4, 32, 32\)"):
        csi_to_complex(np.ones((4, 32, 32), np.float32))
    with pytest.raises(TypeError, match="real floating"):
        csi_to_complex(np.ones((4, 2, 32, 32), np.complex64))
    with pytest.raises(ValueError, match="n_sub"):
        csi_to_frequency(np.full((1, 2, 32, 32), 0.5, np.float32), n_fft=64, n_sub=65)
    with pytest.raises(ValueError, match="n_fft"):
        csi_to_frequency(np.full((1, 2, 32, 32), 0.5, np.float32), n_fft=16, n_sub=8)


def test_check_csi_names_the_problem():
    good = np.full((2, 2, 32, 32), 0.5, np.float32)
    assert layout.check_csi(good.astype(np.float64)).dtype == np.float32
    with pytest.raises(TypeError, match=r"Received: csi.dtype=int64"):
        layout.check_csi(good.astype(np.int64))
    with pytest.raises(ValueError, match=r"Received: csi.shape=\(2, 32, 32, 2\)"):
        layout.check_csi(good.transpose(0, 2, 3, 1))
    bad = good.copy()
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        layout.check_csi(bad)
    bad[0, 0, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\].*max=1.5"):
        layout.check_csi(bad)
    with pytest.raises(ValueError, match="no sample"):
        layout.check_csi(good[:0])
