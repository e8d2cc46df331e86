"""Builds ``channels/reference/cost2100_reference_stats.npz`` from the Octave driver's ``.mat`` chunks.

Usage::

    python tools/cost2100_reference/build_fixture.py DROPDIR [--out channels/reference/cost2100_reference_stats.npz]
        [--reference-commit SHA] [--octave-version VERSION]

``DROPDIR`` holds the chunks ``<scenario>_seed<k>.mat`` written by ``run_reference.sh``. The fixture
keeps per-drop statistics and, per scenario, the mean angular-delay power map of all its drops with its
per-entry variance (32 x 32 each; no channels, no code of the reference); see
:func:`mimokd.channels.cost2100_stats.load_reference_stats` and
:func:`mimokd.channels.cost2100_stats.reference_map_moments` for its layout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

import numpy as np
import scipy.io

from mimokd.channels import cost2100_stats as cs

REFERENCE_REPO = "https://github.com/cost2100/cost2100"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dropdir", type=Path)
    parser.add_argument("--out", type=Path, default=cs.FIXTURE_PATH)
    parser.add_argument("--reference-commit", default="bafca0b84faa2aa0441cb3f03f9dbd65771f43b3")
    parser.add_argument("--octave-version", default=None)
    args = parser.parse_args(argv)

    arrays = {}
    meta_scen = {}
    octave_versions = set()
    for scen, carrier in cs.REFERENCE_SCENARIOS.items():
        chunks = sorted(args.dropdir.glob(f"{scen}_seed*.mat"),
                        key=lambda p: int(re.search(r"seed(\d+)", p.name).group(1)))
        if not chunks:
            print(f"no chunks for {scen}", file=sys.stderr)
            continue
        drops, seeds, chunk_seconds, band, side, network, los_nlos = [], [], [], None, None, None, None
        for path in chunks:
            m = scipy.io.loadmat(str(path))
            band = np.asarray(m["freq_band"], np.float64).reshape(-1).tolist()
            side = float(np.asarray(m["square_side"]).reshape(-1)[0])
            network, los_nlos = str(m["network"][0]), str(m["los_nlos"][0])
            octave_versions.add(str(m["octave_version"][0]))
            seeds.append(int(np.asarray(m["seed"]).reshape(-1)[0]))
            chunk = cs.load_reference_drops(path)
            chunk_seconds.append(round(float(np.mean([d.info["seconds"] for d in chunk])), 2))
            drops.extend(chunk)
        center = 0.5 * (band[0] + band[1])
        assert abs(center - carrier) < 1.0, (scen, center, carrier)
        stats = cs.statistics(drops, carrier)
        extras = [cs.drop_extras(d) for d in drops]
        for k in cs.SCALAR_STATS:
            arrays[f"{scen}__{k}"] = stats[k]
        for k in cs.PROFILE_STATS:
            arrays[f"{scen}__{k}"] = stats[k].astype(np.float32)
        for k in cs.EXTRA_STATS:
            arrays[f"{scen}__{k}"] = np.array([e[k] for e in extras], np.float64)
        for k in ("n_far_total", "n_twin_active", "los_power_factor"):
            arrays[f"{scen}__{k}"] = np.array([d.info[k] for d in drops], np.float64)
        maps = cs.power_maps(drops, carrier)
        arrays[f"{scen}__mean_power_map"] = maps.mean(axis=0).astype(np.float32)
        arrays[f"{scen}__power_map_variance"] = maps.var(axis=0, ddof=1).astype(np.float32)
        secs = np.array([d.info["seconds"] for d in drops])
        meta_scen[scen] = {
            "drops": len(drops),
            "network": network,
            "los_nlos": los_nlos,
            "freq_band_hz": band,
            "carrier_hz": carrier,
            "square_side_m": side,
            "bs_position_m": [0.0, 0.0, 0.0],
            "ue_height_m": 0.0,
            "chunk_seeds": seeds,
            "power_map_drops": len(drops),
            "seconds_per_drop_mean": float(secs.mean()),
            "seconds_per_drop_median": float(np.median(secs)),
            "seconds_per_drop_by_chunk": chunk_seconds,
            "retries_no_active_cluster": int(sum(d.info["n_retries"] for d in drops)),
            "label_mismatches": int(sum(d.info["label_mismatch"] for d in drops)),
        }
        print(f"{scen}: {len(drops)} drops, {secs.mean():.2f} s/drop")
    metadata = {
        "description": "Per-drop statistics of the COST 2100 MATLAB reference run under GNU Octave "
                       "(see tools/cost2100_reference/README.md); no channels, no reference code.",
        "reference": REFERENCE_REPO,
        "reference_commit": args.reference_commit,
        "octave_version": args.octave_version or ", ".join(sorted(octave_versions)),
        "driver": "tools/cost2100_reference/generate_reference.m",
        "created": datetime.date.today().isoformat(),
        "settings": cs.DEFAULT_SETTINGS,
        "scalar_stats": list(cs.SCALAR_STATS),
        "profile_stats": list(cs.PROFILE_STATS),
        "extra_stats": list(cs.EXTRA_STATS) + ["n_far_total", "n_twin_active", "los_power_factor"],
        "power_map": "mean_power_map: mean over the drops of |angular-delay matrix|^2 (32-element ULA, first 32 "
                     "taps of 1024 subcarriers, the settings above), each drop normalised to sum 1; "
                     "power_map_variance: its per-entry variance over the drops (ddof=1); float32 "
                     "[angle bin, delay tap]; from power_map_drops drops (the same drops as the statistics).",
        "scenarios": meta_scen,
    }
    arrays["metadata"] = np.array(json.dumps(metadata, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
