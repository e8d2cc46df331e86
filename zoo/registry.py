"""The model registry: named presets as plain data, ``create_model`` and ``list_models``.

A preset is ``name -> (family class, constructor kwargs, paper, teacher preset)``. The README's
model table, ``mimokd models``, ``list_models()`` and the tests are all generated from ``PRESETS``.

Examples:
    >>> from mimokd.zoo import create_model, list_models, teacher_of
    >>> list_models()
    ['bcrnet', 'crnet', 'crnet_cui', 'crnet_se', 'csinet', 'csinet_authors']
    >>> student = create_model("bcrnet", cr=4)
    >>> teacher = create_model(teacher_of("bcrnet"), cr=4)   # CRNet, the teacher of Lu et al.
"""

import fnmatch
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


def create_model(name, *, cr=4, height=32, width=32, **overrides):
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        cr: compression ratio 1/gamma (the presets are studied at 4, 8, 16, 32, 64).
        height, width: CSI size ``[2, height, width]`` (32 x 32 for COST2100).
        **overrides: constructor arguments that replace the preset's (e.g. ``crblock_width=16``).

    Returns:
        an untrained :class:`~mimokd.zoo.autoencoder.CsiAutoencoder` named ``f"{name}_cr{cr}"``.
    """
    preset = _preset(name)
    kwargs = {**preset.kwargs, **overrides}
    kwargs.setdefault("name", f"{name}_cr{cr}")
    return preset.family(cr=cr, height=height, width=width, **kwargs)


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
