"""Speed of the TR 38.901 scenario generator: drops per second per scenario, one process.

Times :func:`mimokd.channels.tr38901.generate_frequency_response` (complex64 ``[n, 32, 32]``) for
every named scenario, with and without spatial consistency, after one untimed warm-up call, and
prints the best of ``--repeats`` runs. The generator is plain numpy without BLAS calls, so the
thread settings do not matter.

    python benchmarks/tr38901_speed.py [--drops 2000] [--repeats 3]
"""

import argparse
import os
import time

from mimokd.channels.tr38901 import SCENARIOS_38901, generate_frequency_response


def drops_per_second(name, drops, repeats, spatial_consistency):
    generate_frequency_response(name, 16, seed=0, spatial_consistency=spatial_consistency)
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        generate_frequency_response(name, drops, seed=repeat + 1, spatial_consistency=spatial_consistency)
        best = min(best, time.perf_counter() - start)
    return drops / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=2000, help="drops per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row; the best is shown")
    args = parser.parse_args()
    print(f"{args.drops} drops per call, best of {args.repeats}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'scenario':<16} {'spatially consistent':>22} {'independent drops':>19}")
    for name in SCENARIOS_38901:
        consistent = drops_per_second(name, args.drops, args.repeats, True)
        independent = drops_per_second(name, args.drops, args.repeats, False)
        print(f"{name:<16} {consistent:>17.0f} /s {independent:>14.0f} /s")


if __name__ == "__main__":
    main()
