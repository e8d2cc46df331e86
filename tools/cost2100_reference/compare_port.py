"""Writes ``docs/results/cost2100/statistics.md`` and ``mean_power_maps.png``: the numpy port vs the reference.

Usage::

    python tools/cost2100_reference/compare_port.py [--out docs/results/cost2100] [--seed 0]
        [--indoor-drops 600] [--outdoor-drops 100] [--speed-indoor-drops 2000] [--speed-outdoor-drops 200]

Per scenario: the port's drops (fixed seed) and the reference fixture's statistics go through
:func:`mimokd.channels.cost2100_stats.compare` (the test of ``tests/test_cost2100_vs_reference.py``,
same seed and drop counts by default) and the mean angular-delay power maps through
:func:`~mimokd.channels.cost2100_stats.compare_maps`; the page also has the speed table of
``benchmarks/cost2100_speed.py`` measured now. Octave is not run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported: see benchmarks/cost2100_speed.py

import numpy as np  # noqa: E402

from mimokd.channels import cost2100_model as cm  # noqa: E402
from mimokd.channels import cost2100_stats as cs  # noqa: E402
from mimokd.fileio import write_text  # noqa: E402
from mimokd.plots import plot_maps  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
#: Tolerance of the map comparison (see tests/test_cost2100_vs_reference.py).
MAX_NOISE_RATIO = 2.5
UNITS = {"rms_delay_spread": (1e9, "ns"), "azimuth_spread": (1.0, "rad")}


def _fmt(x, stat):
    scale, unit = UNITS.get(stat, (1.0, ""))
    return f"{x * scale:.4g} {unit}".strip()


def scenario_rows(port, ref, result):
    """Markdown rows: statistic | reference median / mean | port median / mean | p | pass."""
    rows = []
    for k in cs.SCALAR_STATS:
        a, b = port[k], ref[k]
        p = result["p_values"][k]
        rows.append(f"| {k} | {_fmt(np.median(b), k)} / {_fmt(np.mean(b), k)} | {_fmt(np.median(a), k)} / "
                    f"{_fmt(np.mean(a), k)} | KS {p:.3g} | {'pass' if p > result['threshold'] else '**FAIL**'} |")
    for k in cs.PROFILE_STATS:
        a, b = port[k].mean(axis=0), ref[k].mean(axis=0)
        p = result["p_values"][k]
        rows.append(f"| {k} (mean profile: peak bin, share) | bin {np.argmax(b)}, {b.max():.3f} | "
                    f"bin {np.argmax(a)}, {a.max():.3f} (max diff {result['profile_max_abs_diff'][k]:.3f}) | "
                    f"z {p:.3g} | {'pass' if p > result['threshold'] else '**FAIL**'} |")
    return rows


def speed_rows(indoor_drops, outdoor_drops):
    """Markdown rows of the speed table, measured now with ``benchmarks/cost2100_speed.py``'s functions."""
    spec = importlib.util.spec_from_file_location("cost2100_speed", ROOT / "benchmarks" / "cost2100_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    octave = bench.reference_seconds_per_drop()
    rows = []
    for name in cm.SCENARIOS:
        n = indoor_drops if name.startswith("indoor") else outdoor_drops
        t = bench.measure(name, n, repeats=3)
        total = t["generate"] + t["response"] + t["angular_delay"]
        rows.append(f"| {name} | {n} | {t['mpc']:.0f} | {n / t['generate']:.0f} | {n / t['response']:.0f} | "
                    f"{n / t['angular_delay']:.0f} | **{n / total:.0f}** | {octave[name]:.2f} | "
                    f"{octave[name] * n / total:.0f}x |")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "cost2100")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--indoor-drops", type=int, default=600)
    parser.add_argument("--outdoor-drops", type=int, default=100)
    parser.add_argument("--speed-indoor-drops", type=int, default=2000)
    parser.add_argument("--speed-outdoor-drops", type=int, default=200)
    args = parser.parse_args(argv)

    ref_stats, meta = cs.load_reference_stats()
    lines = [
        "# COST 2100: the numpy port against the Octave reference",
        "",
        f"Written by `tools/cost2100_reference/compare_port.py` on {datetime.date.today().isoformat()}. "
        f"Reference: [{meta['reference']}]({meta['reference']}) at `{meta['reference_commit'][:7]}`, GNU Octave "
        f"{meta['octave_version']}, drops made by `tools/cost2100_reference/generate_reference.m` (fixture "
        f"`channels/reference/cost2100_reference_stats.npz`, built {meta['created']}). Port: "
        f"`mimokd.channels.cost2100_model.generate_drops(scenario, n, {args.seed})`, converted by "
        "`cost2100_stats.drops_from_model`. Both sides: the same statistics "
        "(`cost2100_stats.statistics`: 32-element ULA with the reference's `exp(-j pi n cos(AoD))` steering, "
        "1024 subcarriers over 20 MHz, first 32 taps).",
        "",
        "Test per statistic: two-sample Kolmogorov-Smirnov for the scalars, Bonferroni-bounded per-bin z-test "
        "of the mean for the profiles; pass when p > alpha / 9 = 0.0011 (alpha = 0.01 per scenario). Scalars: "
        "median / mean; rms_delay_spread in ns, azimuth_spread (circular) in rad.",
        "",
    ]
    maps = {}
    for name, ref_name in cs.MODEL_TO_REFERENCE.items():
        n = args.indoor_drops if name.startswith("indoor") else args.outdoor_drops
        carrier = cm.SCENARIOS[name].carrier
        drops = cs.drops_from_model(cm.generate_drops(name, n, args.seed))
        port = cs.statistics(drops, carrier)
        ref = ref_stats[ref_name]
        result = cs.compare(port, ref)
        port_maps = cs.power_maps(drops, carrier)
        moments = cs.reference_map_moments(name)
        similarity = cs.compare_maps(port_maps, moments)
        maps[name] = (moments["mean"], port_maps.mean(axis=0), {"ref_drops": moments["drops"], "port_drops": n})
        verdict = "passed" if result["passed"] else f"FAILED ({', '.join(result['failed'])})"
        lines += [
            f"## {ref_name} (port `{name}`)",
            "",
            f"Reference {len(ref['n_mpc'])} drops, port {n} drops: **{verdict}**; smallest p = "
            f"{min(result['p_values'].values()):.3g} ({min(result['p_values'], key=result['p_values'].get)}).",
            "",
            "| statistic | reference median / mean | port median / mean | p | at p > 0.0011 |",
            "| --- | --- | --- | --- | --- |",
            *scenario_rows(port, ref, result),
            "",
            f"Mean angular-delay power map: correlation {similarity['correlation']:.3f}, relative Frobenius "
            f"error {similarity['relative_error']:.3f}, noise ratio {similarity['noise_ratio']:.2f} "
            f"({'pass' if similarity['noise_ratio'] < MAX_NOISE_RATIO else '**FAIL**'} at < {MAX_NOISE_RATIO}).",
            "",
        ]
        print(f"{ref_name}: {verdict}; map {similarity}")
    lines += [
        "## Mean angular-delay power maps",
        "",
        *[f"![{cs.MODEL_TO_REFERENCE[name]}: reference vs port](mean_power_map_{name}.png)" for name in maps],
        "",
        "Each drop's 32 x 32 map `|AD|^2` is normalised to sum 1, then averaged (`cost2100_stats.mean_power_map`). "
        "Noise ratio = `||port - ref||_F^2 / sum(var_port / n_port + var_ref / n_ref)`: about 1 when the two "
        "samples come from one distribution, whatever their sizes (200 half/half splits of the reference: "
        "median 0.94-0.99, largest 2.10); the tests require < 2.5, indoors also correlation > 0.95 and "
        "relative error < 0.25. With 80-100 outdoor drops the outdoor mean maps stay noisy: a few strong "
        "entries per drop (LOS, UE local cluster) at random angles, so correlation and relative error say "
        "little there (two halves of the reference correlate 0.33 / 0.55 in the median, LOS / NLOS).",
        "",
        "## Speed",
        "",
        f"Measured now on this machine: {platform.machine()} sandbox, {os.cpu_count()} cores shared with other "
        f"work (load average {os.getloadavg()[0]:.1f} at the start of the table), one process, "
        f"`OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}`, numpy {np.__version__}; "
        "`benchmarks/cost2100_speed.py`, best of 3. One sample = one drop + its 32 x 1024 frequency response "
        "(azimuth-only steering) + the 32 x 32 angular-delay truncation. Octave: mean seconds per drop of "
        "the reference's `cost2100(...)` call alone (MPCs, no array), measured when the fixture was built "
        "(niced, on the same kind of loaded 2-core machine).",
        "",
        "| scenario | drops | MPCs / drop | drops/s | responses/s | truncations/s | samples/s | Octave s / drop "
        "| speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *speed_rows(args.speed_indoor_drops, args.speed_outdoor_drops),
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (ref, port, info) in maps.items():
        plot_maps({f"{cs.MODEL_TO_REFERENCE[name]}: reference, {info['ref_drops']} drops": ref,
                   f"port, {info['port_drops']} drops": port}, args.out / f"mean_power_map_{name}.png")
    write_text(args.out / "statistics.md", "\n".join(lines))
    print(f"wrote {args.out / 'statistics.md'} and the mean_power_map_*.png beside it")


if __name__ == "__main__":
    main()
