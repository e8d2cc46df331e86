"""The registry of pretrained weights, as data: one :class:`PretrainedEntry` per (model preset,
compression ratio, dataset), with its file's sha256, size and URL, the recipe that trained it and
the metrics we measured from the stored file.

Entries are named ``"{model}-cr{cr}-{dataset}"`` (e.g. ``crnet_cui-cr16-cost2100-indoor``) and
their files ``"{name}.weights.h5"``: Keras ``save_weights`` files, usually stored as float16
(:func:`mimokd.pretrained.storage.save_entry_weights`). The files live in the repository under
``pretrained/weights/`` (not in the wheel); each is fetched from the repository's raw files at a
release tag (:data:`BASE_URL`, :data:`RELEASE_TAG`), or from the mirror named by the
``MIMOKD_WEIGHTS_URL`` environment variable.

Every function takes ``registry=None``: the module's :data:`ENTRIES` (read at call time, so a test
or a lab's private registry can swap it), or any iterable of entries.

Examples:
    >>> from mimokd.pretrained import get_entry, list_entries, registry_table
    >>> list_entries(model="crnet_cui")               # [PretrainedEntry(...), ...]
    >>> entry = get_entry(("crnet_cui", 16, "cost2100-indoor"))   # or get_entry("crnet_cui-cr16-cost2100-indoor")
    >>> entry.metrics.nmse_db, entry.url
    >>> print(registry_table())                       # the markdown table of `mimokd pretrained list`
"""

import os
import re
from dataclasses import MISSING, dataclass, fields

from mimokd import __version__

# The release whose tree holds the files of this registry: a version's registry only names files
# committed by that version, so the installed package downloads from its own tag. An entry whose
# file was released at another tag says so in ``PretrainedEntry.tag``.
RELEASE_TAG = f"v{__version__}"
BASE_URL = "https://raw.githubusercontent.com/mimokd/mimokd/{tag}/pretrained/weights/"
ENV_WEIGHTS_URL = "MIMOKD_WEIGHTS_URL"  # a mirror's base URL (may contain "{tag}"), e.g. a loopback server

DTYPES = ("float16", "float32")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"(?P<model>[A-Za-z0-9_]+)-cr(?P<cr>[0-9]+)-(?P<dataset>.+)")


class UnknownEntryError(ValueError):
    """No registered entry matches: the message lists what the registry holds."""


@dataclass(frozen=True)
class Recipe:
    """How an entry was trained: enough to re-create it (``mimokd pretrained build``)."""

    data: str  # the data recipe (`mimokd data list`), e.g. "cost2100-indoor"
    data_seed: int  # the dataset seed (each split derives its own)
    train_samples: int
    epochs: int
    batch_size: int
    schedule: str  # e.g. "warm-up cosine, peak 2e-3, floor 5e-5, 5 warm-up epochs"
    method: str = "vanilla"  # "vanilla" or a KD method of `mimokd distill` (e.g. "codeword-mimic")
    teacher: str | None = None  # the teacher's entry name, for students trained by KD
    init: str | None = None  # the entry of the same model whose weights start the training (fine-tuning,
    #                          e.g. another dataset's; at another ratio, all but the dense layers); None: the seed's
    seed: int = 0  # the training seed
    val_samples: int | None = None
    commit: str = ""  # the code commit that trained it
    machine: str = ""  # machine and budget, stated honestly, e.g. "1x H100, 40 min (paper: 1000 epochs)"
    notes: str = ""


@dataclass(frozen=True)
class Metrics:
    """Measured by us from the stored file on the fixed test split of the entry's dataset."""

    nmse_db: float  # NMSE in dB, global convention: 10 log10(sum |H - H^|^2 / sum |H|^2)
    nmse_db_per_batch: float  # the mean of per-batch dB values (the reference code's convention)
    rho: float  # cosine similarity
    test_samples: int
    test_split: str = ""  # how the split is made, e.g. "cost2100-indoor test, seed 0"
    paper_nmse_db: float | None = None  # the paper's figure for the same model and ratio, if any
    paper_source: str = ""  # e.g. "Lu et al., Table II"


@dataclass(frozen=True)
class PretrainedEntry:
    """One pretrained model: ``create_model(model, cr=cr, weights=dataset)`` loads it."""

    model: str  # a preset of mimokd.zoo (list_models())
    cr: int
    dataset: str  # e.g. "cost2100-indoor"
    file: str  # the file name, "{name}.weights.h5"
    sha256: str  # of the file as stored
    size: int  # bytes
    recipe: Recipe
    metrics: Metrics
    dtype: str = "float16"  # how the weights are stored (loaded as float32)
    height: int = 32
    width: int = 32
    tag: str | None = None  # the release tag whose tree holds the file (None: RELEASE_TAG)

    def __post_init__(self):
        problems = []
        if isinstance(self.cr, bool) or not isinstance(self.cr, int) or self.cr < 1:
            problems.append(f"cr must be a positive integer, got {self.cr!r}")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            problems.append(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            problems.append(f"size must be a positive number of bytes, got {self.size!r}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not self.file.endswith(".weights.h5") or "/" in self.file or "\\" in self.file:
            problems.append(f"file must be a bare '*.weights.h5' name, got {self.file!r}")
        if not self.dataset or "/" in self.dataset:
            problems.append(f"dataset must be a name such as 'cost2100-indoor', got {self.dataset!r}")
        if problems:
            raise ValueError(f"Invalid pretrained entry {self.model}-cr{self.cr}-{self.dataset}: "
                             + "; ".join(problems))

    @property
    def name(self):
        return entry_name(self.model, self.cr, self.dataset)

    @property
    def url(self):
        """Where the file is downloaded from: ``MIMOKD_WEIGHTS_URL`` (if set) or :data:`BASE_URL`,
        at the entry's release tag, plus the file name."""
        base = os.environ.get(ENV_WEIGHTS_URL) or BASE_URL
        base = base.replace("{tag}", self.tag or RELEASE_TAG)
        return base.rstrip("/") + "/" + self.file


def entry_name(model, cr, dataset):
    """``"{model}-cr{cr}-{dataset}"``, e.g. ``crnet_cui-cr16-cost2100-indoor``."""
    return f"{model}-cr{cr}-{dataset}"


def parse_entry_name(name):
    """``(model, cr, dataset)`` of an entry name, or None if ``name`` is not of that form."""
    parsed = _NAME.fullmatch(str(name))
    return (parsed["model"], int(parsed["cr"]), parsed["dataset"]) if parsed else None


def entry_file_name(model, cr, dataset):
    """The file name of an entry: ``"{model}-cr{cr}-{dataset}.weights.h5"``."""
    return entry_name(model, cr, dataset) + ".weights.h5"


# The registered entries. Each one's file is committed once, when final, under pretrained/weights/
# (stanzas from `mimokd pretrained register` / `build`); tests/test_pretrained.py checks every
# entry against its file, and tests/test_pretrained_entries.py (slow) re-measures its figures.
ENTRIES = (
    PretrainedEntry(
        model='crnet_cui',
        cr=16,
        dataset='cost2100-indoor',
        file='crnet_cui-cr16-cost2100-indoor.weights.h5',
        sha256='b210490ea1bcb3c32a5ac916328e12691b7342ada5337a48dd0640328c5460f0',
        size=1250736,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='59d033f',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 32 min shared with other jobs; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 3 epochs (6,000 steps), still improving when stopped (val -1.8 -> -7.1 dB over the last epoch). Cui et al. report -10.39 dB at 1/16 for this network on 3GPP UMi data (not COST2100); CRNet (Lu et al.) on the original COST2100 indoor files: -11.35 dB.',
        ),
        metrics=Metrics(
            nmse_db=-7.0528,
            nmse_db_per_batch=-7.0563,
            rho=0.91268,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=16,
        dataset='cost2100-indoor',
        file='csinet-cr16-cost2100-indoor.weights.h5',
        sha256='953705e2942bc1dc13344108e82d56c3a4d34120d07beb88908d32d718b4b72a',
        size=1161144,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='261388a',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 17 min shared with other jobs; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 2 epochs (4,000 steps at batch 50), still improving when stopped (val -1.6 -> -3.7 dB over the last epoch).',
        ),
        metrics=Metrics(
            nmse_db=-3.6916,
            nmse_db_per_batch=-3.6931,
            rho=0.79503,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
            paper_nmse_db=-8.65,
            paper_source='Wen et al. 2018 (CsiNet), indoor',
        ),
    ),
    PretrainedEntry(
        model='crnet_se',
        cr=16,
        dataset='cost2100-indoor',
        file='crnet_se-cr16-cost2100-indoor.weights.h5',
        sha256='146c3ff0eaa01f7c85799c60b70c025548427a38c2f47794ee0478c2872206e6',
        size=1208248,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='encoder KD (Cui et al. eq. 11): 2 epochs of codeword MSE to the teacher, Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up); then 1 epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a tenth of those rates',
            method='encoder-kd',
            teacher='crnet_cui-cr16-cost2100-indoor',
            val_samples=10000,
            commit='244f6bb',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 19 min shared with other jobs; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 2 + 1 epochs at batch 50 (the distillation epochs are cheap: 2 min each). Its teacher scores -7.05 dB; the same network trained vanilla for 2 epochs scored -6.85 dB. Cui et al. report CRNet-SE at 1/16 on 3GPP UMi data, not COST2100.',
        ),
        metrics=Metrics(
            nmse_db=-7.0912,
            nmse_db_per_batch=-7.0949,
            rho=0.91419,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=4,
        dataset='cost2100-indoor',
        file='crnet_cui-cr4-cost2100-indoor.weights.h5',
        sha256='5e3cd7c2d1e2bc053eed7d1fcc3c6d44843ea87eab24233298a253e07f29fe15',
        size=4396464,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='22fbf4a',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 34 min shared with other jobs; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 3 epochs (6,000 steps at batch 50), still improving when stopped (val -8.6 -> -9.3 dB over the last epoch). Cui et al. report this network at 1/16 and 1/32 on 3GPP data only; CRNet (Lu et al.) on the original COST2100 indoor files: -24.40 dB at 1/4.',
        ),
        metrics=Metrics(
            nmse_db=-9.2668,
            nmse_db_per_batch=-9.2717,
            rho=0.94107,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_se',
        cr=4,
        dataset='cost2100-indoor',
        file='crnet_se-cr4-cost2100-indoor.weights.h5',
        sha256='ca9a3fcdbe4be618cbe209a61162a412c4629e1a34361557522ab19062b6f08d',
        size=8561592,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='encoder KD (Cui et al. eq. 11): 2 epochs of codeword MSE to the teacher, Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up); then 1 epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a tenth of those rates',
            method='encoder-kd',
            teacher='crnet_cui-cr4-cost2100-indoor',
            val_samples=10000,
            commit='22fbf4a',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 12 min shared with other jobs; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 2 + 1 epochs at batch 50 (distillation epochs 2 min each, the fine-tuning epoch 7.5 min). Its teacher scores -9.27 dB. Cui et al. report CRNet-SE at 1/16 and 1/32 on 3GPP data only.',
        ),
        metrics=Metrics(
            nmse_db=-8.3592,
            nmse_db_per_batch=-8.3635,
            rho=0.93017,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
        dtype='float32',
    ),
    PretrainedEntry(
        model='csinet',
        cr=4,
        dataset='cost2100-indoor',
        file='csinet-cr4-cost2100-indoor.weights.h5',
        sha256='fa3cdbeb59cf37526f817657cadc31838bcf6013c6587bb50dfc64f69b575c14',
        size=4306872,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='f4e57af',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 10 min shared with other jobs; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 2 epochs (4,000 steps at batch 50), still improving when stopped (val -2.8 -> -5.1 dB over the last epoch).',
        ),
        metrics=Metrics(
            nmse_db=-5.0695,
            nmse_db_per_batch=-5.071,
            rho=0.84421,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
            paper_nmse_db=-17.36,
            paper_source='Wen et al. 2018 (CsiNet), indoor',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=4,
        dataset='cost2100-outdoor',
        file='csinet-cr4-cost2100-outdoor.weights.h5',
        sha256='25920faffc85ceb16669c3df8016e855cb3031d005e9521b0409a3e4f3a4f3d2',
        size=4306872,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=4,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='6879fd7',
            machine="this repo's 2-core CPU (TensorFlow, XLA auto-clustering), 15 min of training on a quiet machine; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 4 epochs (8,000 steps at batch 50), still improving when stopped (val -1.2, -2.9, -4.4, -5.1 dB after each epoch).',
        ),
        metrics=Metrics(
            nmse_db=-5.0946,
            nmse_db_per_batch=-5.0952,
            rho=0.84708,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
            paper_nmse_db=-8.75,
            paper_source='Wen et al. 2018 (CsiNet), outdoor',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=16,
        dataset='cost2100-outdoor',
        file='csinet-cr16-cost2100-outdoor.weights.h5',
        sha256='bbdc6f1f482087192ac390c47451c7b8405a11aac0525eb686f3ed10e9538d6a',
        size=1161144,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=4,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='6879fd7',
            machine="this repo's 2-core CPU (TensorFlow, XLA auto-clustering), 12 min of training on a quiet machine; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 4 epochs (8,000 steps at batch 50), still improving when stopped (val -0.4, -1.8, -2.7, -3.2 dB after each epoch). The published CsiNet, trained 1,000 epochs on the original outdoor files, scores -4.12 dB on this data.',
        ),
        metrics=Metrics(
            nmse_db=-3.1697,
            nmse_db_per_batch=-3.1704,
            rho=0.75239,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
            paper_nmse_db=-4.51,
            paper_source='Wen et al. 2018 (CsiNet), outdoor',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=8,
        dataset='cost2100-indoor',
        file='csinet-cr8-cost2100-indoor.weights.h5',
        sha256='50ea56e58cef0ad12f2d915ed1dc49ea66ed907b9f479d7a52a855367d227356',
        size=2209720,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='195412c',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 12 min shared with test-suite work; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 2 epochs (4,000 steps at batch 50), the recipe of the 1/4 and 1/16 indoor entries; still improving when stopped (val -2.2 -> -4.5 dB over the last epoch). Wen et al. report no 1/8 figure.',
        ),
        metrics=Metrics(
            nmse_db=-4.4948,
            nmse_db_per_batch=-4.4969,
            rho=0.84309,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=32,
        dataset='cost2100-indoor',
        file='csinet-cr32-cost2100-indoor.weights.h5',
        sha256='988e98510982f51ede41b2e45fff3011098777911e6e725740357dd25b44b51b',
        size=636856,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=5,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='195412c',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 15 min, partly shared with test-suite work; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 5 epochs (10,000 steps at batch 50); 2 epochs of the same recipe gave -2.39 dB. Validation after each epoch: -0.73, -3.41, -4.86, -5.14, -5.21 dB.',
        ),
        metrics=Metrics(
            nmse_db=-5.1825,
            nmse_db_per_batch=-5.1863,
            rho=0.92437,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
            paper_nmse_db=-6.24,
            paper_source='Wen et al. 2018 (CsiNet), indoor',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=64,
        dataset='cost2100-indoor',
        file='csinet-cr64-cost2100-indoor.weights.h5',
        sha256='e641149ecfc133ced272e1fc246dce31852bb5afb479c23b6be3c4c566fcba79',
        size=374712,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=5,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='195412c',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 14 min, partly shared with test-suite work; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 5 epochs (10,000 steps at batch 50); 2 epochs of the same recipe gave -1.35 dB. Validation after each epoch: -0.36, -1.67, -2.18, -2.40, -2.49 dB.',
        ),
        metrics=Metrics(
            nmse_db=-2.4732,
            nmse_db_per_batch=-2.4742,
            rho=0.73761,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
            paper_nmse_db=-5.84,
            paper_source='Wen et al. 2018 (CsiNet), indoor',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=32,
        dataset='cost2100-outdoor',
        file='csinet-cr32-cost2100-outdoor.weights.h5',
        sha256='f70119fa121a129b34542287868833cbe966c8d1c058ba8400a19bf6c9432c16',
        size=636856,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=4,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='195412c',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 11 min of training on quiet cores; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 4 epochs (8,000 steps at batch 50), the recipe of the 1/4 and 1/16 outdoor entries. Validation after each epoch: -0.28, -1.15, -1.63, -1.81 dB; the published 1/32 weights of Wen et al. score -3.02 dB on this data.',
        ),
        metrics=Metrics(
            nmse_db=-1.7803,
            nmse_db_per_batch=-1.7808,
            rho=0.56936,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
            paper_nmse_db=-2.81,
            paper_source='Wen et al. 2018 (CsiNet), outdoor',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=8,
        dataset='cost2100-outdoor',
        file='csinet-cr8-cost2100-outdoor.weights.h5',
        sha256='01d9169a7127ae866df6b2ba9f9f6a53969a0b1f07a5cb2cc5bd3bb453ea4eea',
        size=2209720,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=4,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='cd2ee84',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 24 min shared with test-suite work; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 4 epochs (8,000 steps at batch 50), the recipe of the other outdoor entries. Validation after each epoch: -0.95, -2.31, -3.33, -3.86 dB. Wen et al. give no 1/8 figure.',
        ),
        metrics=Metrics(
            nmse_db=-3.8489,
            nmse_db_per_batch=-3.8495,
            rho=0.77692,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='csinet',
        cr=64,
        dataset='cost2100-outdoor',
        file='csinet-cr64-cost2100-outdoor.weights.h5',
        sha256='4c111439dbf6c4e3f1e2d33fd8fca65cf60a07031117d3c0134322f9ec6ac607',
        size=374712,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=4,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='cd2ee84',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 20 min shared with test-suite work; Wen et al. train 1000 epochs",
            notes='A CPU-budget entry: 4 epochs (8,000 steps at batch 50), the recipe of the other outdoor entries. Validation after each epoch: -0.03, -0.54, -1.10, -1.36 dB.',
        ),
        metrics=Metrics(
            nmse_db=-1.3325,
            nmse_db_per_batch=-1.3328,
            rho=0.52555,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
            paper_nmse_db=-1.93,
            paper_source='Wen et al. 2018 (CsiNet), outdoor',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=8,
        dataset='cost2100-indoor',
        file='crnet_cui-cr8-cost2100-indoor.weights.h5',
        sha256='e8882a384ee735539e2b9fc7ff68ff39acf028b9300003d491239ea718b2f1ae',
        size=2299312,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            val_samples=10000,
            commit='cd2ee84',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 28 min shared with test-suite work; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 3 epochs (6,000 steps), the recipe of the 1/4 and 1/16 entries. Validation after each epoch: +3.29, -7.57, -8.47 dB. Cui et al. report this network on 3GPP data only; CRNet (Lu et al., Table I) on the original COST2100 indoor files: -14.54 dB at 1/8.',
        ),
        metrics=Metrics(
            nmse_db=-8.439,
            nmse_db_per_batch=-8.4434,
            rho=0.93222,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_se',
        cr=8,
        dataset='cost2100-indoor',
        file='crnet_se-cr8-cost2100-indoor.weights.h5',
        sha256='d37c31be2398be0da489516cee4f84d95809ca1bf8d14b883f57e8e7561bcfa7',
        size=2256824,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='encoder KD (Cui et al. eq. 11): 2 epochs of codeword MSE to the teacher, Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up); then 1 epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a tenth of those rates',
            method='encoder-kd',
            teacher='crnet_cui-cr8-cost2100-indoor',
            val_samples=10000,
            commit='247153c',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 14 min, beside another training; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 2 + 1 epochs at batch 50, the recipe of the 1/4 and 1/16 entries. Validation after fine-tuning: -7.95 dB. Its teacher scores -8.44 dB. Cui et al. report CRNet-SE on 3GPP data only, not COST2100.',
        ),
        metrics=Metrics(
            nmse_db=-7.9214,
            nmse_db_per_batch=-7.9257,
            rho=0.92449,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=16,
        dataset='cost2100-outdoor',
        file='crnet_cui-cr16-cost2100-outdoor.weights.h5',
        sha256='d715fbf209ef488dc2c5eaab32db18bf0da0ba2ae61db318a9cd930db0ca089a',
        size=1250736,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            init='crnet_cui-cr16-cost2100-indoor',
            val_samples=10000,
            commit='64a3507',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 40 min shared with two other trainings; Cui et al. train 300+ epochs",
            notes="A CPU-budget entry: 3 epochs (6,000 steps at batch 50) started from crnet_cui-cr16-cost2100-indoor (those weights alone score +0.16 dB on this validation split). From a fresh initialisation Cui et al.'s CRNet did not learn this data on a CPU budget (1/16 on 50,000 samples, 2 epochs: +4.1 dB). Validation -4.77, -7.65, -8.16 dB after each epoch. Cui et al. report 3GPP data only; CRNet (Lu et al.) on the original COST2100 outdoor files: -5.44 dB at 1/16.",
        ),
        metrics=Metrics(
            nmse_db=-8.187,
            nmse_db_per_batch=-8.1906,
            rho=0.92884,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=4,
        dataset='cost2100-outdoor',
        file='crnet_cui-cr4-cost2100-outdoor.weights.h5',
        sha256='3455d8e30f4497f2305f40ebb5314619e4d1f28be40688195d2089b5a79f83dc',
        size=4396464,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            init='crnet_cui-cr4-cost2100-indoor',
            val_samples=10000,
            commit='64a3507',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 43 min shared with two other trainings; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 3 epochs (6,000 steps at batch 50) started from crnet_cui-cr4-cost2100-indoor (those weights alone score +0.19 dB on this validation split). From a fresh initialisation, the same recipe scored +2.91 dB on validation after its first epoch (rho 0.08, the near-constant output) and was stopped. Validation -8.09, -11.09, -11.98 dB after each epoch. Cui et al. report 3GPP data only; CRNet (Lu et al.) on the original COST2100 outdoor files: -11.89 dB at 1/4.',
        ),
        metrics=Metrics(
            nmse_db=-11.9961,
            nmse_db_per_batch=-12.0001,
            rho=0.97098,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=32,
        dataset='cost2100-indoor',
        file='crnet_cui-cr32-cost2100-indoor.weights.h5',
        sha256='e75adea379bac00212d24b64ad26a20c33fe395abcc0bc0b106b249b0d74dbf5',
        size=726448,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            init='crnet_cui-cr16-cost2100-indoor',
            val_samples=10000,
            commit='6984f7a',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 39 min shared with two other trainings; Cui et al. train 300+ epochs",
            notes="A CPU-budget entry: 3 epochs (6,000 steps at batch 50) started from crnet_cui-cr16-cost2100-indoor (--init at another ratio: every weight but the codeword's two dense layers, which start from the seed). From a fresh initialisation the same recipe stayed at 0.00 dB on validation (rho 0.16) after 3 epochs: the near-constant output. Validation -7.48, -8.62, -9.02 dB after each epoch. Cui et al. report 1/32 on 3GPP data only; CRNet (Lu et al.) on the original COST2100 indoor files: -8.93 dB at 1/32.",
        ),
        metrics=Metrics(
            nmse_db=-8.9934,
            nmse_db_per_batch=-8.9991,
            rho=0.9371,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_se',
        cr=4,
        dataset='cost2100-outdoor',
        file='crnet_se-cr4-cost2100-outdoor.weights.h5',
        sha256='61ca2e42912217abc864255a8021bf4080ee3e0733830ae6865c7574f5ba585f',
        size=4353976,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='encoder KD (Cui et al. eq. 11): 2 epochs of codeword MSE to the teacher, Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up); then 1 epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a tenth of those rates',
            method='encoder-kd',
            teacher='crnet_cui-cr4-cost2100-outdoor',
            val_samples=10000,
            commit='497c590',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 18 min shared with two other trainings; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 2 + 1 epochs at batch 50, the recipe of the indoor entries. Validation after fine-tuning: -9.67 dB. Its teacher scores -12.00 dB. Cui et al. report CRNet-SE on 3GPP data only, not COST2100.',
        ),
        metrics=Metrics(
            nmse_db=-9.6739,
            nmse_db_per_batch=-9.6759,
            rho=0.9529,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_se',
        cr=16,
        dataset='cost2100-outdoor',
        file='crnet_se-cr16-cost2100-outdoor.weights.h5',
        sha256='dc9725b40fbf9da78683e962b38ea886391af02c3c62f56e852086d93126e66d',
        size=1208248,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='encoder KD (Cui et al. eq. 11): 2 epochs of codeword MSE to the teacher, Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up); then 1 epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a tenth of those rates',
            method='encoder-kd',
            teacher='crnet_cui-cr16-cost2100-outdoor',
            val_samples=10000,
            commit='42fb223',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 15 min shared with two other trainings (measured after a restart: the first run was killed for memory while measuring three at once); Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 2 + 1 epochs at batch 50, the recipe of the indoor entries. Validation after fine-tuning: -7.00 dB. Its teacher scores -8.19 dB. Cui et al. report CRNet-SE on 3GPP data only, not COST2100.',
        ),
        metrics=Metrics(
            nmse_db=-7.0183,
            nmse_db_per_batch=-7.021,
            rho=0.90721,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=64,
        dataset='cost2100-indoor',
        file='crnet_cui-cr64-cost2100-indoor.weights.h5',
        sha256='de3f297b3d64f6ba2bb113fd71081be47e9ab912a595a17934b86762ba2d94c2',
        size=464304,
        recipe=Recipe(
            data='cost2100-indoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            init='crnet_cui-cr32-cost2100-indoor',
            val_samples=10000,
            commit='8aa5277',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 22 min, the last two epochs beside another training; Cui et al. train 300+ epochs",
            notes="A CPU-budget entry: 3 epochs (6,000 steps at batch 50) started from crnet_cui-cr32-cost2100-indoor (--init at another ratio: every weight but the codeword's two dense layers). Validation -4.55, -5.29, -5.89 dB after each epoch, still improving. Cui et al. report 3GPP data only; CRNet on the original COST2100 indoor files: -6.49 dB at 1/64 (the CRNet paper's 2,500-epoch recipe; Lu et al.'s Table I stops at 1/32).",
        ),
        metrics=Metrics(
            nmse_db=-5.8727,
            nmse_db_per_batch=-5.875,
            rho=0.86559,
            test_samples=20000,
            test_split='cost2100-indoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_cui',
        cr=8,
        dataset='cost2100-outdoor',
        file='crnet_cui-cr8-cost2100-outdoor.weights.h5',
        sha256='532fc8880b28725b572d4be7c155cb8f70f91814a61c1c52f33b12a8dd7442ae',
        size=2299312,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=3,
            batch_size=50,
            schedule='Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up), MSE',
            init='crnet_cui-cr8-cost2100-indoor',
            val_samples=10000,
            commit='8aa5277',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 23 min, the first epoch beside another training; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 3 epochs (6,000 steps at batch 50) started from crnet_cui-cr8-cost2100-indoor. Validation -6.87, -9.23, -9.91 dB after each epoch. Cui et al. report 3GPP data only; CRNet (Lu et al.) on the original COST2100 outdoor files: -8.00 dB at 1/8.',
        ),
        metrics=Metrics(
            nmse_db=-9.9356,
            nmse_db_per_batch=-9.9388,
            rho=0.95354,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
    PretrainedEntry(
        model='crnet_se',
        cr=8,
        dataset='cost2100-outdoor',
        file='crnet_se-cr8-cost2100-outdoor.weights.h5',
        sha256='e8c3ba1b7640640f17ccc8fe2fe99fe4cd59fb30ae20d8d37fdde81c77ca944a',
        size=2256824,
        recipe=Recipe(
            data='cost2100-outdoor',
            data_seed=0,
            train_samples=100000,
            epochs=2,
            batch_size=50,
            schedule='encoder KD (Cui et al. eq. 11): 2 epochs of codeword MSE to the teacher, Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up); then 1 epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a tenth of those rates',
            method='encoder-kd',
            teacher='crnet_cui-cr8-cost2100-outdoor',
            val_samples=10000,
            commit='5830394',
            machine="this repo's 2-core CPU (TensorFlow, XLA), 7 min on quiet cores; Cui et al. train 300+ epochs",
            notes='A CPU-budget entry: 2 + 1 epochs at batch 50, the recipe of the other CRNet-SE entries. Validation after fine-tuning: -8.36 dB. Its teacher scores -9.94 dB. Cui et al. report CRNet-SE on 3GPP data only, not COST2100.',
        ),
        metrics=Metrics(
            nmse_db=-8.3801,
            nmse_db_per_batch=-8.3827,
            rho=0.93498,
            test_samples=20000,
            test_split='cost2100-outdoor test, seed 0, drops 0..19999',
        ),
    ),
)


def _entries(registry):
    entries = ENTRIES if registry is None else tuple(registry)
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"The pretrained registry names some entries twice: {duplicates}")
    return entries


def list_entries(model=None, dataset=None, cr=None, *, registry=None):
    """Registered entries, sorted by model, dataset and ratio, optionally filtered."""
    return sorted(
        (e for e in _entries(registry)
         if (model is None or e.model == model) and (dataset is None or e.dataset == dataset)
         and (cr is None or e.cr == cr)),
        key=lambda e: (e.model, e.dataset, e.cr),
    )


def _join(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _availability(entries):
    """``"cost2100-indoor at cr 4, 16 and cost2100-outdoor at cr 16"``."""
    by_dataset = {}
    for e in entries:
        by_dataset.setdefault(e.dataset, []).append(e.cr)
    return _join(f"{d} at cr {', '.join(str(c) for c in sorted(crs))}" for d, crs in sorted(by_dataset.items()))


def _not_found(model, cr, dataset, entries):
    if not entries:
        return UnknownEntryError(
            "No pretrained weights are registered yet (mimokd.pretrained.registry.ENTRIES is empty). "
            f"Received: model={model!r}, cr={cr}, dataset={dataset!r}")
    of_model = [e for e in entries if e.model == model]
    if not of_model:
        models = sorted({e.model for e in entries})
        return UnknownEntryError(
            f"{model} has no pretrained weights; the registry has weights for {_join(models)} "
            f"(`mimokd pretrained list`). Received: model={model!r}, cr={cr}, dataset={dataset!r}")
    what = (f"cr {cr}" if any(e.dataset == dataset for e in of_model)
            else f"dataset {dataset!r}" + (f" at cr {cr}" if cr is not None else ""))
    return UnknownEntryError(f"{model} has pretrained weights for {_availability(of_model)} only; received {what}")


def find_entry(model, cr, dataset, *, registry=None):
    """The entry of ``model`` at ratio ``cr`` trained on ``dataset``; an error lists what exists."""
    entries = _entries(registry)
    for e in entries:
        if (e.model, e.cr, e.dataset) == (model, cr, dataset):
            return e
    raise _not_found(model, cr, dataset, entries)


def get_entry(key, *, registry=None):
    """An entry by name (``"crnet_cui-cr16-cost2100-indoor"``) or by ``(model, cr, dataset)``.

    Raises:
        UnknownEntryError: no such entry; the message says which ratios and datasets the model
            has (or which entries exist).
    """
    if isinstance(key, PretrainedEntry):
        return key
    if isinstance(key, tuple):
        if len(key) != 3:
            raise ValueError(f"An entry key is (model, cr, dataset). Received: {key!r}")
        return find_entry(*key, registry=registry)
    entries = _entries(registry)
    for e in entries:
        if e.name == key:
            return e
    parsed = parse_entry_name(key)
    if parsed:
        raise _not_found(*parsed, entries)
    known = ", ".join(e.name for e in list_entries(registry=entries)) or "none: the registry is empty"
    raise UnknownEntryError(
        f"Unknown pretrained entry {key!r}: expected a name '<model>-cr<ratio>-<dataset>' "
        f"(`mimokd pretrained list`). Registered entries: {known}")


# ---------------------------------------------------------------------------------------------
# The table of `mimokd pretrained list`, `mimokd models` and the README
# ---------------------------------------------------------------------------------------------

REGISTRY_COLUMNS = [
    ("name", "entry"),
    ("ratio", "ratio"),
    ("dataset", "dataset"),
    ("nmse", "NMSE dB (global)"),
    ("nmse_pb", "NMSE dB (per batch)"),
    ("rho", "rho"),
    ("paper", "paper NMSE dB"),
    ("training", "training"),
    ("budget", "machine / budget"),
    ("stored", "stored"),
]


def _mb(size):
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def registry_rows(*, registry=None, model=None, dataset=None, cr=None):
    """One dict per entry with the cells of :data:`REGISTRY_COLUMNS`."""
    rows = []
    for e in list_entries(model, dataset, cr, registry=registry):
        r, m = e.recipe, e.metrics
        method = r.method + (f" from {r.teacher}" if r.teacher else "")
        start = f", started from {r.init}" if r.init else ""
        paper = "" if m.paper_nmse_db is None else f"{m.paper_nmse_db:.2f}" + (
            f" ({m.paper_source})" if m.paper_source else "")
        rows.append(dict(
            name=e.name, ratio=f"1/{e.cr}", dataset=e.dataset,
            nmse=f"{m.nmse_db:.2f}", nmse_pb=f"{m.nmse_db_per_batch:.2f}", rho=f"{m.rho:.4f}",
            paper=paper,
            training=f"{method}, {r.epochs} epochs x {r.train_samples:,} samples{start}",
            budget=r.machine, stored=f"{e.dtype}, {_mb(e.size)}",
        ))
    return rows


def registry_table(*, registry=None, model=None, dataset=None, cr=None):
    """The registry as a GitHub markdown table (a line saying so when it has no entries).

    NMSE and rho are measured from the stored file on ``metrics.test_samples`` samples of the
    dataset's fixed test split; "paper" is the paper's figure for the same model and ratio.
    """
    from mimokd.tables import markdown_table

    rows = registry_rows(registry=registry, model=model, dataset=dataset, cr=cr)
    if not rows:
        return "No pretrained weights are registered" + (
            " for this selection.\n" if _entries(registry) else " yet.\n")
    return markdown_table(rows, REGISTRY_COLUMNS)


def entry_stanza(entry, indent=4):
    """Python source of ``entry`` to paste into :data:`ENTRIES` (fields at their default left out).

    ``eval(entry_stanza(e)) == e`` with ``PretrainedEntry``, ``Recipe`` and ``Metrics`` in scope.
    """
    def render(obj, level):
        pad, inner = " " * (indent * level), " " * (indent * (level + 1))
        lines = [f"{type(obj).__name__}("]
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.default is not MISSING and value == f.default:
                continue
            text = render(value, level + 1) if isinstance(value, (Recipe, Metrics)) else repr(value)
            lines.append(f"{inner}{f.name}={text},")
        lines.append(f"{pad})")
        return "\n".join(lines)

    return render(entry, 0)

