"""COST2100 fidelity: do the CsiNet authors' published models score on our regenerated data what they
scored on the original test sets?

For each scenario, the script generates the first ``--samples`` drops of the TEST split of the
``cost2100-indoor`` / ``cost2100-outdoor`` recipes (:func:`mimokd.channels.recipes.generate_samples`
with start 0 and the split's seed ``split_seed(seed, "test")``: exactly the first samples of
``mimokd data generate <recipe> --split test --seed <seed>``), imports each of the authors'
published models found in ``--weights`` (``model_CsiNet_{indoor,outdoor}_dim{128,64,32}.json`` +
``.h5``, trained on the original COST2100 files; they may not be redistributed, so they are read
from a folder you give) and prints, per model (:mod:`mimokd.channels.fidelity`):

* the published NMSE (CsiNet paper, Table I), ours on the regenerated CSI in the authors'
  convention, and the gap (ours - published);
* the total-variation distance between the delay profile implied by the model's first BatchNorm
  (the original training data, as the first 3x3 convolution sees it) and ours;
* the amplitude of our data relative to the original, as that convolution sees it (dB).

Recipe settings can be changed with ``--set KEY=VALUE`` (the value read as JSON when it parses,
else as a string), for both scenarios or, prefixed ``indoor.`` / ``outdoor.``, for one. With
``--out``, ``fidelity.json`` (the settings, every row and the profiles) and
``fidelity_profiles.png`` are written there (atomically).

    python benchmarks/cost2100_fidelity.py --weights ../shared/reference-weights/csinet-authors --samples 300
    python benchmarks/cost2100_fidelity.py --weights DIR --set timing=absolute --set outdoor.bandwidth=4e7
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the COST 2100 port's small products (cost2100_speed.py)

import numpy as np  # noqa: E402

SCENARIO_KEYS = ("indoor", "outdoor")
TARGET_GAP_DB = 0.5
TARGET_TV = 0.05
CHUNK = 100  # samples generated per progress step
_INTERNAL = {"keep_hf": False}  # HF is not needed here; HT does not depend on it


def parse_sets(items):
    """``["k=v", "indoor.k=v", ...]`` -> ``{"indoor": {k: v}, "outdoor": {k: v}}``.

    A value is read as JSON when it parses (``4e7`` -> 40000000.0, ``"absolute"`` -> "absolute",
    ``true``, ``null``), else kept as the string. An unprefixed key applies to both scenarios; a
    prefixed one overrides it for its scenario.
    """
    common, specific = {}, {key: {} for key in SCENARIO_KEYS}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE (e.g. --set bandwidth=4e7); got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        scenario, dot, field = key.partition(".")
        if dot and scenario in SCENARIO_KEYS:
            specific[scenario][field] = value
        elif dot:
            raise SystemExit(f"--set {item!r}: a prefix must be one of {SCENARIO_KEYS}")
        else:
            common[key] = value
    return {scenario: {**common, **specific[scenario]} for scenario in SCENARIO_KEYS}


def generate_test_csi(recipe, samples, seed, label):
    """The first ``samples`` CSI of the test split of ``recipe``: float32 ``[samples, 2, 32, 32]``."""
    from tqdm.auto import tqdm

    from mimokd.channels.recipes import split_samples

    parts = []
    with tqdm(total=samples, unit="sample", desc=f"generating {label}", file=sys.stderr) as bar:
        for lo in range(0, samples, CHUNK):
            count = min(CHUNK, samples - lo)
            parts.append(split_samples(recipe, "test", count, seed, start=lo)["HT"])
            bar.update(count)
    return np.concatenate(parts)


def _fmt(value, spec):
    return "–" if value is None else format(value, spec)


def format_table(rows):
    """The markdown table of the fidelity rows."""
    from mimokd.tables import markdown_table

    cells = []
    for row in rows:
        cells.append({
            "model": f"CsiNet {row['scenario']} 1/{row['cr']}",
            "published": _fmt(row["published"], "+.2f"),
            "ours": _fmt(row["ours"], "+.2f"),
            "gap": _fmt(row["gap"], "+.2f"),
            "tv": _fmt(row["profile_tv"], ".3f"),
            "amplitude": _fmt(row["amplitude_db"], "+.2f"),
            "note": row["note"],
        })
    columns = [("model", "model (authors' weights)"), ("published", "published NMSE (dB)"),
               ("ours", "ours (dB)"), ("gap", "gap (dB)"), ("tv", "delay-profile TV"),
               ("amplitude", "amplitude (dB)")]
    if any(row["note"] for row in rows):
        columns.append(("note", "note"))
    return markdown_table(cells, columns)


READING_GUIDE = (f"gap = ours − published: < 0 = our data is easier for the model than the original, > 0 = harder; "
                 f"target |gap| ≤ {TARGET_GAP_DB} dB and TV ≤ {TARGET_TV}. TV: delay-profile distance to the "
                 "original's (from the first BatchNorm); amplitude: our excess variance over the original's, "
                 "as the first convolution sees it (0 dB = same level).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="folder of the authors' model_CsiNet_*.json / .h5")
    parser.add_argument("--samples", type=int, default=2000, help="test samples per scenario (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed; the test split derives its own (default: 0)")
    parser.add_argument("--indoor", default="cost2100-indoor", help="indoor recipe (default: cost2100-indoor)")
    parser.add_argument("--outdoor", default="cost2100-outdoor", help="outdoor recipe (default: cost2100-outdoor)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe setting for both scenarios, or indoor.KEY=VALUE / outdoor.KEY=VALUE (repeatable)")
    parser.add_argument("--batch-size", type=int, default=200, help="prediction batch size (default: 200)")
    parser.add_argument("--out", default=None, help="folder for fidelity.json and fidelity_profiles.png")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be >= 1")

    from mimokd.channels.fidelity import fidelity_table, find_authors_models
    from mimokd.channels.recipes import get_recipe
    from mimokd.rng import split_seed

    overrides = parse_sets(args.set)
    recipes = {}
    for scenario, name in (("indoor", args.indoor), ("outdoor", args.outdoor)):
        try:
            recipes[scenario] = get_recipe(name, **{**overrides[scenario], **_INTERNAL})
        except (ValueError, TypeError) as err:
            parser.error(f"{scenario} recipe {name!r}: {err}")

    try:  # before generating: a wrong folder fails at once, a scenario without any model is not generated
        files = find_authors_models(args.weights)
    except FileNotFoundError as err:
        parser.error(str(err))
    present = {scenario for (scenario, _), (_, _, missing) in files.items() if not missing}
    if not present:
        parser.error(f"none of the authors' files in {args.weights} "
                     "(model_CsiNet_{indoor,outdoor}_dim{128,64,32}.json / .h5)")

    started = time.perf_counter()
    datasets = {s: generate_test_csi(r, args.samples, args.seed, f"{s} ({r.name})")
                for s, r in recipes.items() if s in present}
    generated = time.perf_counter() - started
    rows = fidelity_table(args.weights, datasets, batch_size=args.batch_size,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    elapsed = time.perf_counter() - started

    settings = {s: {k: v for k, v in r.settings().items() if k not in ("keep_hf", "description")}
                for s, r in recipes.items() if s in datasets}
    print(f"\nCOST2100 fidelity: the CsiNet authors' published weights on {args.samples} regenerated test "
          f"samples per scenario (test split, seed {args.seed} -> {split_seed(args.seed, 'test')}, drops "
          f"0..{args.samples - 1})\n")
    print(format_table(rows))
    print(READING_GUIDE)
    print("\nrecipe settings:")
    for scenario, values in settings.items():
        print(f"  {scenario}: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    if any(overrides.values()):
        print("  --set: " + ", ".join(args.set))
    print(f"\n{platform.machine()}, {os.cpu_count()} cores; generation {generated:.0f} s, total {elapsed:.0f} s")

    if args.out:
        from pathlib import Path

        from mimokd.fileio import write_json

        out = Path(args.out)
        write_json(out / "fidelity.json", {
            "command": [os.path.basename(sys.argv[0])] + list(sys.argv[1:] if argv is None else argv),
            "weights": str(args.weights), "samples": args.samples, "seed": args.seed, "split": "test",
            "split_seed": split_seed(args.seed, "test"), "start": 0, "recipes": settings,
            "overrides": {s: o for s, o in overrides.items() if o},
            "target": {"abs_gap_db": TARGET_GAP_DB, "profile_tv": TARGET_TV},
            "rows": rows, "seconds": elapsed,
        })
        from mimokd.plots import plot_delay_profiles

        plot_delay_profiles(rows, out / "fidelity_profiles.png")
        print(f"wrote {out / 'fidelity.json'} and {out / 'fidelity_profiles.png'}")


if __name__ == "__main__":
    main()
