"""COST 2100 port speed: samples per second of the numpy model, single process, per scenario.

One sample = one drop (:func:`mimokd.channels.cost2100_model.generate_drops`) and its 32 x 32
angular-delay matrix (azimuth-only steering as the reference's array helpers), computed two ways: in
closed form (:func:`~mimokd.channels.cost2100_model.angular_delay_response`, the dataset generator's
path) and through the 32-antenna x 1024-subcarrier frequency response
(:func:`~mimokd.channels.cost2100_model.frequency_response`) truncated by
:func:`mimokd.channels.transforms.to_angular_delay`. Each stage is timed on
its own (best of ``--repeats``); the table also gives the Octave reference's measured seconds per
drop, read from the reference fixture's metadata (the ``cost2100(...)`` call only, no antenna
array; measured on a loaded 2-core machine, see tools/cost2100_reference/README.md). Octave is not
run here.

The port's matrix products are small: run with one BLAS thread per process (multi-threaded
OpenBLAS was 5-50 times slower on them on a loaded 2-core machine); this script sets
``OPENBLAS_NUM_THREADS=1`` unless the environment sets it, and prints the value used.

    python benchmarks/cost2100_speed.py [--indoor-drops 2000] [--outdoor-drops 200] [--repeats 3]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import numpy as np  # noqa: E402


def _best_time(fn, repeats):
    """(result of the last call, smallest wall time over ``repeats`` calls [s])."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def measure(name, n, repeats, seed=0):
    """Seconds per stage for ``n`` samples of scenario ``name``, and the mean number of MPCs per drop."""
    from mimokd.channels import cost2100_model as cm
    from mimokd.channels.transforms import to_angular_delay

    drops, t_gen = _best_time(lambda: cm.generate_drops(name, n, seed), repeats)
    h, t_freq = _best_time(lambda: cm.frequency_response(drops, 32, 1024, include_elevation=False), repeats)
    ad, t_ad = _best_time(lambda: to_angular_delay(h, 32), repeats)
    closed, t_closed = _best_time(lambda: cm.angular_delay_response(drops, 32, 32, 1024, include_elevation=False),
                                  repeats)
    assert ad.shape == (n, 32, 32) and np.all(np.isfinite(ad))
    error = float(np.abs(closed - ad).max() / np.abs(ad).max())
    return {"generate": t_gen, "response": t_freq, "angular_delay": t_ad, "closed": t_closed, "error": error,
            "mpc": float(drops.n_mpc.mean())}


def reference_seconds_per_drop():
    """{port scenario name: mean Octave seconds per drop}, from the reference fixture's metadata."""
    from mimokd.channels import cost2100_stats as cs

    _, meta = cs.load_reference_stats()
    return {name: meta["scenarios"][ref]["seconds_per_drop_mean"] for name, ref in cs.MODEL_TO_REFERENCE.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indoor-drops", type=int, default=2000, help="samples per indoor run (default: 2000)")
    parser.add_argument("--outdoor-drops", type=int, default=200, help="samples per outdoor run (default: 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per stage, best kept (default: 3)")
    args = parser.parse_args()
    from mimokd.channels import cost2100_model as cm

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; numpy {np.__version__}; single process")
    reference = reference_seconds_per_drop()
    header = (f"{'scenario':24s} {'drops':>6s} {'MPCs':>6s} {'drops/s':>9s} {'H/s':>8s} {'AD/s':>9s} "
              f"{'closed/s':>9s} {'samples/s':>10s} {'(via H)':>8s} {'Octave s/drop':>14s} {'speed-up':>9s} "
              f"{'closed err':>10s}")
    print(header)
    for name in cm.SCENARIOS:
        n = args.indoor_drops if name.startswith("indoor") else args.outdoor_drops
        t = measure(name, n, args.repeats)
        via_h = t["generate"] + t["response"] + t["angular_delay"]
        total = t["generate"] + t["closed"]
        print(f"{name:24s} {n:6d} {t['mpc']:6.0f} {n / t['generate']:9.0f} {n / t['response']:8.0f} "
              f"{n / t['angular_delay']:9.0f} {n / t['closed']:9.0f} {n / total:10.0f} {n / via_h:8.0f} "
              f"{reference[name]:14.2f} {reference[name] * n / total:8.0f}x {t['error']:10.1e}")
    print("drops/s: generate_drops; H/s: 32 x 1024 frequency_response; AD/s: to_angular_delay (32 taps) of it; "
          "closed/s: angular_delay_response (the same 32 taps in closed form, the generator's path); samples/s: "
          "generate_drops + closed form (via H: generate_drops + H + AD, the path before). Octave: mean s/drop of "
          "the reference's cost2100(...) call (MPCs only) from the fixture metadata; speed-up = samples/s x Octave "
          "s/drop. closed err: max |closed - AD| / max |AD| (float32 round-off is about 1e-7).")


if __name__ == "__main__":
    main()
