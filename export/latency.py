"""Single-sample latency of a callable: median and 90th percentile over many timed calls.

Timed with ``time.perf_counter`` around each call, after a warm-up (first calls allocate buffers,
trace functions, pack weights). The figures include the runtime's Python binding (copying the
input in and the output out), which is what a Python user of the artifact pays.
"""

import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Latency:
    """Latency figures in microseconds over ``runs`` timed calls."""

    median_us: float
    p90_us: float
    runs: int

    def as_dict(self):
        return asdict(self)


def measure_latency(fn, x, *, warmup=100, runs=1000):
    """Time ``fn(x)`` ``runs`` times after ``warmup`` untimed calls.

    Args:
        fn: a callable (e.g. a :class:`~mimokd.export.runtimes.Runner`).
        x: its input, e.g. float32 ``[1, 2, 32, 32]`` for one CSI sample.
        warmup: untimed calls first.
        runs: timed calls (at least 1).

    Returns:
        :class:`Latency`.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"`runs` must be >= 1 and `warmup` >= 0. Received: runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        fn(x)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn(x)
        times[i] = time.perf_counter() - start
    return Latency(float(np.median(times) * 1e6), float(np.percentile(times, 90) * 1e6), runs)
