"""Dataset recipes: from a channel model's drops to CSI tensors in the CsiNet format.

A :class:`CsiRecipe` names every choice between a channel model and the ``[0, 1]`` CSI tensor of
:mod:`mimokd.channels.layout`; :data:`RECIPES` holds the named ones that ``mimokd data generate``
knows, and :func:`generate_samples` turns drop indices ``start .. start + n - 1`` of a seed into

* ``HT``: float32 ``[n, 2, 32, 32]`` = ``[batch, plane, angle, delay]`` in [0, 1] (0.5 = zero);
* ``HF``: complex64 ``[n, 32, 125]``, the frequency-domain CSI of the COST2100 ``HF_all`` files
  (only where the recipe keeps it).

The CsiNet recipe (Wen et al. 2018, Sec. IV; the files of ``../shared/REFERENCE.md``), for the
COST 2100 scenarios of :mod:`mimokd.channels.cost2100_model`: the BS at the centre of a 20 m
(indoor) / 400 m (outdoor) square, the UE uniform in it, a 32-element half-wavelength ULA at the BS,
1,024 subcarriers, the angular-delay matrix by the two DFTs of
:func:`mimokd.channels.transforms.to_angular_delay`, its first 32 delay taps, real and imaginary
parts mapped to [0, 1] with 0.5 as zero.

The authors never published these settings; each is a field of :class:`CsiRecipe` and the defaults
are chosen as follows:

* ``bandwidth`` 20 MHz: the width of the reference implementation's demo bands (5.29-5.31 GHz,
  275-295 MHz). The 32 kept taps then span 1.6 us, which holds the indoor channel whole.
* ``timing="first-path"``: delays are counted from the earliest MPC of the drop (a receiver
  synchronized on the first arrival). ``"absolute"`` keeps the propagation delay, which pushes an
  outdoor channel (UE up to 283 m away, 0.94 us) partly out of the 32 kept taps.
* ``steering_sign=-1``, azimuth-only ULA along x (``include_elevation=False``): the convention of
  the reference's array helper, ``exp(-j pi (n - 1) cos(AoD))``, which the authors' generator used.
* ``scaling="peak"``: each sample is scaled by ``0.5 / max(|Re|, |Im|)`` (:func:`peak_scale`), so
  its largest component reaches 0 or 1. Path loss spans tens of dB between UEs, so one scale for all
  samples would leave far UEs at 0.5 +- 1e-4; a float gives such a global scale instead, for
  channels normalized otherwise. NMSE and rho are invariant to the per-sample scale.
* outdoor LOS or NLOS: both are recipes (``cost2100-outdoor-los``, ``cost2100-outdoor-nlos``). The
  published outdoor NMSEs (CsiNet -8.75 dB vs -17.36 dB indoor at 1/4) speak for the richer
  NLOS channel, which ``cost2100-outdoor`` names.
* ``HF``: the 257-point FFT of the kept 32 taps, first 125 bins (:func:`csi_to_frequency`), i.e. the
  frequency-domain channel that the reference's rho code compares a reconstruction with; a perfect
  reconstruction has rho = 1.

The 3GPP TR 38.901 scenarios of Cui et al. (Table I) come from :mod:`mimokd.channels.tr38901`:
32 antennas x 32 subcarriers, all 32 delay taps kept, the same [0, 1] mapping.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from mimokd.channels import cost2100_model, tr38901
from mimokd.channels.transforms import complex_to_csi, csi_to_frequency, peak_scale, to_angular_delay

#: Drops converted at a time: bounds the ``[chunk, 32, 1024]`` complex64 response (256 kB a drop).
CHUNK = 256


@dataclasses.dataclass(frozen=True)
class CsiRecipe:
    """How one named dataset is made from a channel model.

    Attributes:
        name: the recipe's name (``mimokd data generate <name>``).
        model: ``"cost2100"`` or ``"tr38901"``.
        scenario: the model's scenario name.
        suffix: the COST2100 file suffix (``"in"`` / ``"out"``) for the ``.mat`` layout; ``None``
            for datasets that have no public files.
        n_subcarriers: subcarriers of the frequency response.
        n_delay: delay taps kept (32).
        bandwidth: [Hz]; ``None`` = the model's default.
        steering_sign, include_elevation: the BS array convention (COST 2100 only).
        timing: ``"first-path"`` or ``"absolute"`` (COST 2100 only).
        scaling: ``"peak"`` or a positive float (see the module docstring).
        keep_hf: compute ``HF`` for the ``HF_all`` files.
        description: one line for ``mimokd data list``.
    """

    name: str
    model: str
    scenario: str
    suffix: str | None = None
    n_subcarriers: int = 1024
    n_delay: int = 32
    bandwidth: float | None = 20e6
    steering_sign: int = -1
    include_elevation: bool = False
    timing: str = "first-path"
    scaling: str | float = "peak"
    keep_hf: bool = True
    description: str = ""

    def settings(self):
        """The recipe as a JSON-ready dict (stored in every shard and manifest)."""
        return dataclasses.asdict(self)


def _cost2100(name, scenario, suffix, description):
    return CsiRecipe(name=name, model="cost2100", scenario=scenario, suffix=suffix, description=description)


def _tr38901(name, scenario, description):
    return CsiRecipe(name=name, model="tr38901", scenario=scenario, n_subcarriers=32, bandwidth=None,
                     keep_hf=False, description=description)


_COST2100 = (
    _cost2100("cost2100-indoor", "indoor_hall_5ghz", "in", "CsiNet indoor: COST 2100 IndoorHall_5GHz, 5.3 GHz"),
    _cost2100("cost2100-outdoor-nlos", "semi_urban_300mhz_nlos", "out", "COST 2100 SemiUrban_300MHz NLOS"),
    _cost2100("cost2100-outdoor-los", "semi_urban_300mhz_los", "out", "COST 2100 SemiUrban_300MHz LOS"),
)
#: The named recipes. ``cost2100-outdoor`` is the NLOS one (see the module docstring).
RECIPES = {recipe.name: recipe for recipe in _COST2100}
RECIPES["cost2100-outdoor"] = dataclasses.replace(
    RECIPES["cost2100-outdoor-nlos"], name="cost2100-outdoor",
    description="CsiNet outdoor: COST 2100 SemiUrban_300MHz NLOS, 300 MHz")


RECIPES.update({name: _tr38901(name, name, scenario.description)
                for name, scenario in tr38901.SCENARIOS_38901.items()})


def get_recipe(name, **overrides):
    """The recipe ``name`` with fields replaced by ``overrides`` (``None`` values are ignored).

    Raises:
        ValueError: an unknown name or field, or a bad value.
    """
    if isinstance(name, CsiRecipe):
        recipe = name
    elif name not in RECIPES:
        raise ValueError(f"Unknown dataset scenario; expected one of {sorted(RECIPES)}. Received: {name!r}")
    else:
        recipe = RECIPES[name]
    fields = {f.name for f in dataclasses.fields(CsiRecipe)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown recipe settings {unknown}; expected some of {sorted(fields)}")
    recipe = dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    _check_recipe(recipe)
    return recipe


def _check_recipe(recipe):
    if recipe.timing not in ("first-path", "absolute"):
        raise ValueError(f"`timing` must be 'first-path' or 'absolute'. Received: timing={recipe.timing!r}")
    if isinstance(recipe.scaling, str):
        if recipe.scaling != "peak":
            raise ValueError(f"`scaling` must be 'peak' or a positive number. Received: scaling={recipe.scaling!r}")
    elif not (isinstance(recipe.scaling, numbers.Real) and np.isfinite(recipe.scaling) and recipe.scaling > 0):
        raise ValueError(f"`scaling` must be 'peak' or a positive number. Received: scaling={recipe.scaling!r}")
    if recipe.n_delay > recipe.n_subcarriers:
        raise ValueError(f"`n_delay` ({recipe.n_delay}) cannot exceed `n_subcarriers` ({recipe.n_subcarriers})")


def _cost2100_response(recipe, start, n, seed):
    """Spatial-frequency CSI of drops ``start .. start + n - 1``: complex64 ``[n, 32, N_f]``."""
    drops = cost2100_model.generate_drops(recipe.scenario, n, seed, start=start)
    if recipe.timing == "first-path" and n:
        first = np.where(drops.gain != 0, drops.delay, np.inf).min(axis=1)
        drops = dataclasses.replace(drops, delay=drops.delay - first[:, None])
    return cost2100_model.frequency_response(
        drops, n_subcarriers=recipe.n_subcarriers, bandwidth=recipe.bandwidth,
        steering_sign=recipe.steering_sign, include_elevation=recipe.include_elevation)


def _tr38901_response(recipe, start, n, seed):
    overrides = {} if recipe.bandwidth is None else {"bandwidth_hz": recipe.bandwidth}
    return tr38901.generate_frequency_response(recipe.scenario, n, seed, start=start, **overrides)


_RESPONSES = {"cost2100": _cost2100_response, "tr38901": _tr38901_response}


def generate_samples(recipe, start, n, seed):
    """CSI samples of the drops ``start .. start + n - 1`` of ``seed`` (shard-stable).

    Args:
        recipe: a :class:`CsiRecipe` or a name in :data:`RECIPES`.
        start: global index of the first drop, int >= 0.
        n: number of samples, int >= 0.
        seed: int >= 0.

    Returns:
        dict with ``"HT"`` float32 ``[n, 2, 32, 32]`` and, if ``recipe.keep_hf``, ``"HF"`` complex64
        ``[n, 32, 125]``.
    """
    recipe = get_recipe(recipe)
    for name, value in (("start", start), ("n", n), ("seed", seed)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
            raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")
    parts = {"HT": []}
    if recipe.keep_hf:
        parts["HF"] = []
    for lo in range(start, start + n, CHUNK):
        count = min(CHUNK, start + n - lo)
        h = _RESPONSES[recipe.model](recipe, lo, count, seed)
        angular_delay = to_angular_delay(h, recipe.n_delay)
        scale = peak_scale(angular_delay) if recipe.scaling == "peak" else recipe.scaling
        csi = complex_to_csi(angular_delay, scale)
        parts["HT"].append(csi)
        if recipe.keep_hf:
            parts["HF"].append(csi_to_frequency(csi))
    empty = {"HT": np.zeros((0, 2, 32, recipe.n_delay), np.float32), "HF": np.zeros((0, 32, 125), np.complex64)}
    return {key: np.concatenate(value) if value else empty[key] for key, value in parts.items()}
