"""NMSE (both conventions) and rho against direct numpy computations."""

import numpy as np
import pytest

from mimokd.metrics import NMSE, Rho, nmse, nmse_db, rho, rho_per_sample


def _pair(n=10, seed=0):
    rng = np.random.default_rng(seed)
    y = (0.5 + 0.2 * rng.standard_normal((n, 2, 32, 32))).astype("float32")
    p = (y + 0.05 * rng.standard_normal(y.shape)).astype("float32")
    return y, p


def _loop_nmse(y, p):
    out = []
    for a, b in zip(y, p):
        h = (a[0] - 0.5) + 1j * (a[1] - 0.5)
        g = (b[0] - 0.5) + 1j * (b[1] - 0.5)
        out.append(np.linalg.norm(h - g) ** 2 / np.linalg.norm(h) ** 2)
    return np.array(out)


def _loop_rho(y, p):
    """rho as CsiNet's tester computes it, sample by sample, subcarrier by subcarrier."""
    vals = []
    for a, b in zip(y, p):
        h = (a[0] - 0.5) + 1j * (a[1] - 0.5)
        g = (b[0] - 0.5) + 1j * (b[1] - 0.5)
        pad = np.zeros((32, 257), complex)
        hf, gf = pad.copy(), pad.copy()
        hf[:, :32], gf[:, :32] = h, g
        hf, gf = np.fft.fft(hf, axis=1)[:, :125], np.fft.fft(gf, axis=1)[:, :125]
        per = [abs(np.vdot(gf[:, k], hf[:, k])) / (np.linalg.norm(gf[:, k]) * np.linalg.norm(hf[:, k]))
               for k in range(125)]
        vals.append(np.mean(per))
    return np.array(vals)


def test_nmse_matches_complex_loop():
    y, p = _pair()
    np.testing.assert_allclose(nmse(y, p), _loop_nmse(y, p), rtol=1e-6)


def test_nmse_conventions_differ_as_defined():
    y, p = _pair(n=10)
    p[:5] = y[:5] + 0.3 * (p[:5] - y[:5])  # make batches unequal
    lin = _loop_nmse(y, p)
    assert nmse_db(y, p) == pytest.approx(10 * np.log10(lin.mean()), rel=1e-6)
    per_batch = np.mean([10 * np.log10(lin[:4].mean()), 10 * np.log10(lin[4:8].mean()),
                         10 * np.log10(lin[8:].mean())])
    assert nmse_db(y, p, convention="per_batch", batch_size=4) == pytest.approx(per_batch, rel=1e-6)
    assert nmse_db(y, p, convention="per_batch", batch_size=4) != pytest.approx(nmse_db(y, p))
    with pytest.raises(ValueError, match="convention"):
        nmse_db(y, p, convention="mean")


def test_nmse_closed_form():
    y = np.full((1, 2, 32, 32), 0.5, "float32")
    y[0, 0, 0, 0] = 0.7  # |H|^2 = 0.04
    p = y.copy()
    p[0, 1, 3, 3] = 0.6  # error 0.01
    assert nmse(y, p)[0] == pytest.approx(0.25)
    assert nmse(y, y)[0] == 0
    with pytest.raises(ValueError, match="same shape"):
        nmse(y, p[:, :1])


def test_rho_in_chunks_equals_the_loop_and_refuses_a_sample_count_mismatch():
    """Chunks of 2 over 5 samples (a short last chunk), with CSI and with frequency-domain references."""
    from mimokd.channels.transforms import csi_to_frequency

    y, p = _pair(n=5)
    expected = _loop_rho(y, p)
    np.testing.assert_allclose(rho_per_sample(p, y, chunk=2), expected, rtol=1e-6)
    np.testing.assert_allclose(rho_per_sample(p, csi_to_frequency(y), chunk=2), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="one sample per prediction: received 4"):
        rho_per_sample(p, y[:4], chunk=2)
    with pytest.raises(ValueError, match="frequency-domain CSI"):
        rho_per_sample(p, csi_to_frequency(y)[:, :, :100])


def test_rho_matches_loop_and_bounds():
    y, p = _pair(n=3)
    np.testing.assert_allclose(rho_per_sample(p, y), _loop_rho(y, p), rtol=1e-6)
    assert rho(y, y) == pytest.approx(1.0)
    # a common complex phase rotation leaves rho at 1: it is |h^H g|, not Re
    h = (y[:, 0] - 0.5) + 1j * (y[:, 1] - 0.5)
    rot = h * np.exp(1j * 0.7)
    q = np.stack([rot.real + 0.5, rot.imag + 0.5], axis=1)
    assert rho(q, y) == pytest.approx(1.0, abs=1e-6)


def test_rho_with_frequency_reference():
    y, p = _pair(n=3)
    h = (y[:, 0] - 0.5) + 1j * (y[:, 1] - 0.5)
    hf = np.fft.fft(np.pad(h, ((0, 0), (0, 0), (0, 225))), axis=2)[:, :, :125]
    assert rho(p, hf.astype("complex64")) == pytest.approx(rho(p, y), rel=1e-5)
    with pytest.raises(ValueError, match="frequency-domain"):
        rho(p, hf[:, :, :100])


def test_keras_metrics_match_numpy():
    y, p = _pair(n=10)
    m = NMSE()
    m.update_state(y[:6], p[:6])
    m.update_state(y[6:], p[6:])
    assert float(m.result()) == pytest.approx(nmse_db(y, p), abs=1e-4)

    mb = NMSE(convention="per_batch")
    mb.update_state(y[:5], p[:5])
    mb.update_state(y[5:], p[5:])
    assert float(mb.result()) == pytest.approx(
        nmse_db(y, p, convention="per_batch", batch_size=5), abs=1e-4
    )

    r = Rho()
    r.update_state(y, p)
    assert float(r.result()) == pytest.approx(rho(p, y), abs=1e-5)
    with pytest.raises(ValueError, match="convention"):
        NMSE(convention="x")
