"""Channels and CSI data: the built-in generator, the COST2100 ``.mat`` format, tf.data pipelines.

Layouts (written once, in :mod:`mimokd.channels.layout`):

* CSI tensor, public API and on disk: float32 ``[batch, 2, 32, 32]`` = ``[batch, plane (re / im),
  angle, delay]``, values in [0, 1], 0.5 = zero; COST2100 ``HT`` is it flattened to ``(N, 2048)``.
* complex angular-delay matrix: complex64 ``[batch, 32 angle, 32 delay]``.
* frequency-domain CSI: complex64 ``[batch, 32 antennas, 125 subcarriers]``; COST2100 ``HF_all``
  is it flattened to ``(N, 4000)``.

Modules:

* :mod:`~mimokd.channels.transforms`: eq. (4) of Cui et al. (spatial-frequency to angular-delay),
  complex <-> [0, 1] CSI, and the frequency-domain convention of the cosine similarity rho.
* :mod:`~mimokd.channels.builtin`: the clustered multipath ULA generator of eq. (1)-(2), presets
  ``"indoor"`` and ``"outdoor"``.
* :mod:`~mimokd.channels.cost2100`: load / save the COST2100 ``.mat`` files, find them in a folder.
* :mod:`~mimokd.channels.datasets`: named sources (``load_csi``) and ``tf.data`` pipelines.
* :mod:`~mimokd.channels.cost2100_model`, :mod:`~mimokd.channels.tr38901`: the COST 2100 and 3GPP
  TR 38.901 channel models; :mod:`~mimokd.channels.recipes`: named datasets made from them;
  :mod:`~mimokd.channels.shards`: writing them (sharded ``.npz`` or ``.mat``) and streaming them.

Examples:
    >>> from mimokd.channels import load_csi, make_dataset
    >>> train = load_csi("builtin-indoor", split="train", num_samples=2000, seed=0)
    >>> ds = make_dataset(train, batch_size=200, shuffle=True, seed=0)
    >>> write_dataset("cost2100-indoor", "data/indoor", samples=100_000, workers=2)   # doctest: +SKIP
    >>> ds = shard_dataset("data/indoor", batch_size=200, shuffle=True)               # doctest: +SKIP
"""

from mimokd.channels.builtin import (
    INDOOR,
    OUTDOOR,
    SCENARIOS,
    Paths,
    ScenarioConfig,
    draw_paths,
    generate_angular_delay,
    generate_csi,
    get_scenario,
    paths_to_angular_delay,
    paths_to_frequency,
)
from mimokd.channels.cost2100 import (
    COST2100_SCENARIOS,
    COST2100_SPLITS,
    cost2100_filename,
    find_cost2100,
    load_cost2100,
    load_hf,
    save_cost2100,
    save_hf,
)
from mimokd.channels.datasets import (
    SPLITS,
    list_sources,
    load_csi,
    make_dataset,
    register_source,
    split_seed,
)
from mimokd.channels.layout import (
    CSI_SHAPE,
    CSI_ZERO,
    HF_NUM_SUBCARRIERS,
    HF_WIDTH,
    HT_WIDTH,
    NUM_ANTENNAS,
    NUM_DELAY_TAPS,
    RHO_FFT_SIZE,
    check_csi,
)
from mimokd.channels.recipes import RECIPES, CsiRecipe, generate_samples, get_recipe
from mimokd.channels.shards import load_shards, read_manifest, shard_dataset, write_dataset
from mimokd.channels.transforms import (
    complex_to_csi,
    csi_to_complex,
    csi_to_frequency,
    peak_scale,
    to_angular_delay,
)

__all__ = [
    "COST2100_SCENARIOS",
    "COST2100_SPLITS",
    "CSI_SHAPE",
    "CSI_ZERO",
    "CsiRecipe",
    "HF_NUM_SUBCARRIERS",
    "HF_WIDTH",
    "HT_WIDTH",
    "INDOOR",
    "NUM_ANTENNAS",
    "NUM_DELAY_TAPS",
    "OUTDOOR",
    "Paths",
    "RECIPES",
    "RHO_FFT_SIZE",
    "SCENARIOS",
    "SPLITS",
    "ScenarioConfig",
    "check_csi",
    "complex_to_csi",
    "cost2100_filename",
    "csi_to_complex",
    "csi_to_frequency",
    "draw_paths",
    "find_cost2100",
    "generate_angular_delay",
    "generate_csi",
    "generate_samples",
    "get_recipe",
    "get_scenario",
    "list_sources",
    "load_cost2100",
    "load_csi",
    "load_hf",
    "load_shards",
    "make_dataset",
    "paths_to_angular_delay",
    "paths_to_frequency",
    "peak_scale",
    "read_manifest",
    "register_source",
    "save_cost2100",
    "save_hf",
    "shard_dataset",
    "split_seed",
    "to_angular_delay",
    "write_dataset",
]
