"""WMMSE throughput: the batched numpy implementation vs a per-sample loop over the same function.

Prints channels per second for Zhang et al.'s cases: the small-scale TDD case (Nt = K = 4, 20 dB),
the FDD massive-MIMO case (Nt = 64, K = 6, 10 dB), and the 7-cell network of Sec. VII-C (Nt = 64,
one user per cell, 10 dBm per BS, :func:`mimokd.classical.multicell_wmmse.multicell_wmmse`). Both
columns run the same code; the loop calls it on one channel at a time, as a per-sample
implementation (e.g. the papers' MATLAB) would. Same results either way (checked here).

    python benchmarks/wmmse_throughput.py [--batch 1000] [--loop 50]
"""

import argparse
import time

import numpy as np


def _rate(fn, n):
    start = time.perf_counter()
    out = fn()
    return out, n / (time.perf_counter() - start)


def single_cell(channel_model, Nt, K, snr_db, batch, loop):
    from mimokd.channels.uplink_downlink import fdd_multipath_channels, tdd_mismatch_channels
    from mimokd.classical.miso import miso_sum_rate, wmmse

    generate = tdd_mismatch_channels if channel_model == "tdd" else fdd_multipath_channels
    _, h = generate(batch, K, Nt, 0)
    h = h.astype(np.complex128)
    P = 10.0 ** (snr_db / 10)
    (W, *_), batched = _rate(lambda: wmmse(h, P, 1.0, init="best"), batch)
    loop_out, looped = _rate(lambda: [wmmse(h[i:i + 1], P, 1.0, init="best")[0] for i in range(loop)], loop)
    np.testing.assert_allclose(np.concatenate(loop_out), W[:loop], atol=1e-8)
    rate = float(np.mean(miso_sum_rate(h, W, 1.0)))
    return batched, looped, rate


def multicell(Nt, batch, loop):
    from mimokd.channels.multicell import make_multicell_dataset
    from mimokd.classical.multicell_wmmse import multicell_wmmse
    from mimokd.classical.slnr import multicell_user_rates

    data = make_multicell_dataset(batch, Nt, 0, slnr_labels=False)
    h, P = data["h_down"], data["power"]
    (W, _), batched = _rate(lambda: multicell_wmmse(h, P, 1.0, 1), batch)
    loop_out, looped = _rate(lambda: [multicell_wmmse(h[i:i + 1], P, 1.0, 1)[0] for i in range(loop)], loop)
    np.testing.assert_allclose(np.concatenate(loop_out), W[:loop], atol=1e-8 * np.abs(W).max())
    rate = float(np.mean(multicell_user_rates(h, W, 1.0).sum(-1)))
    return batched, looped, rate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000, help="channels in the batched call (default: 1000)")
    parser.add_argument("--loop", type=int, default=50, help="channels in the per-sample loop (default: 50)")
    args = parser.parse_args()
    rows = [
        ("TDD eq. (38), Nt = K = 4, 20 dB, init=best", single_cell("tdd", 4, 4, 20.0, args.batch, args.loop)),
        ("FDD eq. (40), Nt = 64, K = 6, 10 dB, init=best", single_cell("fdd", 64, 6, 10.0, args.batch, args.loop)),
        ("7 cells x 1 user, Nt = 64, 10 dBm, init=slnr", multicell(64, args.batch, args.loop)),
    ]
    print(f"{'case':50s} {'batched ch/s':>13s} {'loop ch/s':>10s} {'speed-up':>9s} {'sum rate':>9s}")
    for name, (batched, looped, rate) in rows:
        print(f"{name:50s} {batched:13.0f} {looped:10.1f} {batched / looped:8.1f}x {rate:9.2f}")


if __name__ == "__main__":
    main()
