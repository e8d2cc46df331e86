"""Statistics of a generated dataset folder (``mimokd data stats``), beside the Octave reference's.

Two kinds of figures:

* **Channel statistics** of a COST 2100 recipe (active clusters, MPC count, RMS delay spread, BS
  azimuth spread, LOS power share, energy in the first 32 taps, entries holding 90 % of the energy,
  delay and angle profiles; :mod:`mimokd.channels.cost2100_stats`). They need the drops' MPC lists,
  which the dataset does not store; the manifest holds the recipe and seed, so the first ``drops``
  drops of the train split are drawn again (drop ``i`` is the same in any batch) and compared with
  the reference fixture by the two-sample KS test of :func:`cost2100_stats.compare`.
* **The mean angular-delay power map of the stored CSI**: the mean over samples of
  ``|HT - 0.5|^2`` normalised per sample, ``[32 angle, 32 delay]``, read shard by shard.
"""

from __future__ import annotations


import numpy as np

from mimokd.channels import cost2100_stats
from mimokd.channels.recipes import cost2100_drops, get_recipe
from mimokd.channels.shards import read_manifest, read_split
from mimokd.rng import split_seed


def csi_power_map(directory, split="train"):
    """Mean normalised angular-delay power map of the stored CSI of a split.

    Returns:
        float64 ``[32, W]`` = ``[angle, delay]``, summing to 1: the mean over samples of
        ``|(HT_re - 0.5) + j (HT_im - 0.5)|^2 / sum(...)``.
    """
    total, count = 0.0, 0
    for csi in read_split(directory, split):
        power = ((csi.astype(np.float64) - 0.5) ** 2).sum(axis=1)
        sums = power.sum(axis=(1, 2), keepdims=True)
        total = total + (power / np.where(sums > 0, sums, 1.0)).sum(axis=0)
        count += csi.shape[0]
    return total / count


def channel_statistics(directory, *, drops=600, alpha=0.01):
    """KS comparison of a COST 2100 dataset's drops with the Octave reference fixture.

    Args:
        directory: a dataset folder of ``mimokd data generate`` with a COST 2100 recipe.
        drops: drops of the train split's seed drawn again, int >= 2.
        alpha: family-wise level of the Bonferroni-corrected KS tests.

    Returns:
        ``(rows, port_map, reference_map)``: ``rows`` a list of dicts (``statistic``, ``reference``
        and ``port`` medians (mean profile peak for the profiles), ``p_value``, ``pass``), and the two
        mean power maps float64 ``[32, 32]`` in the fixture's convention.
    """
    manifest = read_manifest(directory)
    settings = dict(manifest["recipe"])
    recipe = get_recipe(settings.pop("name"), **settings)  # with the settings the data were made with
    if recipe.model != "cost2100":
        raise ValueError(f"Channel statistics exist for the COST 2100 recipes only. Received: {recipe.name!r}")
    if drops < 2:
        raise ValueError(f"`drops` must be at least 2. Received: drops={drops!r}")
    reference_name = cost2100_stats.MODEL_TO_REFERENCE[recipe.scenario]
    carrier = cost2100_stats.REFERENCE_SCENARIOS[reference_name]
    port = cost2100_stats.drops_from_model(cost2100_drops(recipe, 0, drops, split_seed(manifest["seed"], "train")))
    ours = cost2100_stats.statistics(port, carrier)
    reference = cost2100_stats.load_reference_stats()[0][reference_name]
    result = cost2100_stats.compare(ours, reference, alpha=alpha)
    rows = []
    for key, p_value in result["p_values"].items():
        summary = np.median if key in cost2100_stats.SCALAR_STATS else (lambda a: float(np.argmax(a.mean(0))))
        rows.append({"statistic": key, "reference": float(summary(reference[key])), "port": float(summary(ours[key])),
                     "p_value": float(p_value), "pass": bool(p_value > result["threshold"])})
    port_map = cost2100_stats.mean_power_map(port, carrier)
    return rows, port_map, np.asarray(cost2100_stats.reference_mean_map(reference_name), np.float64)
