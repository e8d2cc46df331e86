"""The model registry: named presets as plain data, ``create_model`` and ``list_models``.

A preset is ``name -> (family class, constructor kwargs, paper, teacher preset)``. The README's
model table, ``mimokd models``, ``list_models()`` and the tests are all generated from ``PRESETS``.

Examples:
    >>> from mimokd.zoo import create_model, list_models, teacher_of
    >>> list_models()
    ['bcrnet', 'crnet', 'crnet_cui', 'crnet_se', 'csinet', 'csinet_authors']
    >>> student = create_model("bcrnet", cr=4)
    >>> teacher = create_model(teacher_of("bcrnet"), cr=4)   # CRNet, the teacher of Lu et al.
    >>> pretrained = create_model("crnet_cui", cr=16, weights="cost2100-indoor")  # a registered entry
"""

import fnmatch
import inspect
from dataclasses import dataclass, field

from mimokd.zoo.crnet import CRNet
from mimokd.zoo.csinet import CsiNet

COMPRESSION_RATIOS = (4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Preset:
    """A named model: family class and constructor kwargs, the paper it comes from, its teacher."""

    family: type
    kwargs: dict = field(default_factory=dict)
    paper: str = ""
    description: str = ""
    teacher: str | None = None


PRESETS = {
    "csinet": Preset(
        CsiNet,
        {},
        paper="Wen, Shih, Jin 2018",
        description="CsiNet: one 3x3 conv + dense encoder, RefineNet decoder",
    ),
    "csinet_authors": Preset(
        CsiNet,
        dict(batchnorm="columns"),
        paper="Wen, Shih, Jin 2018",
        description="CsiNet as the authors' published Keras code (BatchNorm per delay column, "
        "epsilon 1e-3): what `mimokd import csinet-keras` loads their weights into",
    ),
    "crnet": Preset(
        CRNet,
        dict(encoder="multires", encoder_width=2, crblock_width=7, rezero=False, binarized=False),
        paper="Lu, Wang, Song 2020",
        description="CRNet (original): multi-resolution encoder and CRBlock decoder",
    ),
    "bcrnet": Preset(
        CRNet,
        dict(encoder="multires", encoder_width=2, crblock_width=7, rezero=False, binarized=True),
        paper="Lu, Zhang, Zeng, Wang (codeword mimic)",
        description="BCRNet: CRNet with a binarized encoder dense kernel (student)",
        teacher="crnet",
    ),
    "crnet_cui": Preset(
        CRNet,
        dict(encoder="multires", encoder_width=16, crblock_width=8, rezero=True, binarized=False),
        paper="Cui et al. (lightweight KD)",
        description="CRNet of Cui et al.: 16-wide encoder branches, ReZero CRBlocks (teacher)",
    ),
    "crnet_se": Preset(
        CRNet,
        dict(encoder="single", encoder_width=2, crblock_width=8, rezero=True, binarized=False),
        paper="Cui et al. (lightweight KD)",
        description="CRNet-SE: one 3x3 conv + dense encoder, Cui's CRNet decoder (student)",
        teacher="crnet_cui",
    ),
}


def _preset(name):
    if name not in PRESETS:
        raise ValueError(
            f"Unknown model name. Expected one of {sorted(PRESETS)}. Received: name={name!r}"
        )
    return PRESETS[name]


def list_models(pattern="*"):
    """Sorted names of the registered models matching the shell-style ``pattern``."""
    return sorted(n for n in PRESETS if fnmatch.fnmatch(n, pattern))


_GEOMETRY = ("cr", "height", "width")
_LOADING = ("weights", "weights_dir", "cache_dir")


def accepted_overrides(name):
    """The constructor arguments ``create_model(name, ...)`` accepts as overrides, sorted: the
    model family's keyword arguments (e.g. CRNet's ``crblock_width``) and ``name``."""
    family = _preset(name).family
    params = inspect.signature(family.__init__).parameters.values()
    own = {p.name for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
    return sorted((own - {"self", *_GEOMETRY}) | {"name"})


def create_model(name, /, *, cr=4, height=32, width=32, weights=None, weights_dir=None, cache_dir=None,
                 **overrides):
    """Build a registered model, untrained or with pretrained weights.

    Args:
        name: a name from :func:`list_models` (positional: ``name=`` among the overrides names the
            Keras model, default ``f"{name}_cr{cr}"``).
        cr: compression ratio 1/gamma (the presets are studied at 4, 8, 16, 32, 64).
        height, width: CSI size ``[2, height, width]`` (32 x 32 for COST2100).
        weights: ``None`` (untrained), a dataset with registered weights for this model and ratio
            (``"cost2100-indoor"``: the entry ``f"{name}-cr{cr}-{dataset}"`` of
            :mod:`mimokd.pretrained.registry`), that entry's name, or the path of a
            ``.weights.h5`` file (``model.save_weights`` or
            :func:`~mimokd.pretrained.storage.save_entry_weights`). A registered file is found in
            ``weights_dir`` / ``$MIMOKD_WEIGHTS_DIR``, then the checkout's ``pretrained/weights/``,
            then the cache, else downloaded into the cache, and its sha256 is verified first
            (:class:`~mimokd.pretrained.storage.ChecksumError` if it does not match).
        weights_dir: a folder of offline copies of entry files (default ``$MIMOKD_WEIGHTS_DIR``).
        cache_dir: the download cache (default ``$MIMOKD_CACHE_DIR``, else ``~/.keras/mimokd``).
        **overrides: constructor arguments of the model's family that replace the preset's (e.g.
            ``crblock_width=16``; :func:`accepted_overrides` lists them); any other keyword is an
            error. Registered weights take no architecture overrides.

    Returns:
        a :class:`~mimokd.zoo.autoencoder.CsiAutoencoder` named ``f"{name}_cr{cr}"``.
    """
    preset = _preset(name)
    accepted = accepted_overrides(name)
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(
            f"create_model({name!r}) got unknown keyword arguments {unknown}. It accepts "
            f"{', '.join(_GEOMETRY + _LOADING)} and the {preset.family.__name__} arguments "
            f"{', '.join(accepted)}. Received: {', '.join(f'{k}={overrides[k]!r}' for k in unknown)}"
        )
    path = None
    if weights is not None:  # resolve (and verify, or download) before building anything
        from mimokd.pretrained.storage import resolve_weights

        path = resolve_weights(name, cr, weights, height=height, width=width, overrides=overrides,
                               weights_dir=weights_dir, cache_dir=cache_dir)
    elif weights_dir is not None or cache_dir is not None:
        raise ValueError(f"weights_dir= and cache_dir= apply to weights=; received weights=None, "
                         f"weights_dir={weights_dir!r}, cache_dir={cache_dir!r}")
    kwargs = {**preset.kwargs, **overrides}
    kwargs.setdefault("name", f"{name}_cr{cr}")
    model = preset.family(cr=cr, height=height, width=width, **kwargs)
    if path is not None:
        from mimokd.pretrained.storage import load_entry_weights

        load_entry_weights(model, path)
    return model


def teacher_of(name):
    """The teacher preset of a student preset, as its paper pairs them (e.g. bcrnet -> crnet)."""
    teacher = _preset(name).teacher
    if teacher is None:
        students = sorted(n for n, p in PRESETS.items() if p.teacher)
        raise ValueError(
            f"Model {name!r} has no teacher in the registry; the students are {students}. "
            f"Received: name={name!r}"
        )
    return teacher


def model_pairs():
    """``[(teacher, student), ...]`` for every teacher-student pair of the papers."""
    return [(p.teacher, n) for n, p in sorted(PRESETS.items()) if p.teacher]
