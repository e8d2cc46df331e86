"""What an experiment is, as data: the runs of a paper table, the paper's numbers, the scale.

An :class:`Experiment` names a teacher (trained once per compression ratio, vanilla) and a list of
:class:`Run` rows (a network, a training method and its settings, and the paper's numbers for it).
A :class:`Scale` sets the data and training budget, so the same table runs in minutes on two CPU
cores (``small``) or at the paper's size on a GPU (``paper``).
"""

from dataclasses import dataclass, field, replace

from mimokd.train.methods import METHODS


@dataclass(frozen=True)
class Scale:
    """Data and training budget of an experiment.

    ``finetune_fraction`` sets the epochs of the second stage of encoder KD and of the BS decoder
    fine-tuning of the two-party variant, as a share of ``epochs``. ``teacher_epochs`` is the
    teacher's budget (``None``: ``epochs``): the papers pretrain the teacher to convergence, and
    at small scale a teacher trained no longer than its student can be the worse of the two.
    """

    train: int
    val: int
    test: int
    epochs: int
    batch_size: int
    finetune_fraction: float = 0.25
    teacher_epochs: int = None

    def finetune_epochs(self):
        return max(1, round(self.epochs * self.finetune_fraction))

    def with_overrides(self, **overrides):
        """A copy with the non-``None`` entries of ``overrides`` replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Run:
    """One row of a paper table.

    Args:
        label: the row's name in the table (e.g. ``"BCRNet-CM"``).
        model: the registered student (or, for ``vanilla``, the trained) network.
        method: one of :data:`METHODS`.
        params: the method's settings (``alpha``, ``temperature``, ``mimic_fraction``,
            ``scheduler``, ...), also shown in the table.
        paper: ``{cr: {"nmse_db": ..., other reported values}}``, the paper's numbers.
    """

    label: str
    model: str
    method: str = "vanilla"
    params: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r} in run {self.label!r}. Expected one of {METHODS}")

    @property
    def slug(self):
        """A directory name for the run."""
        settings = "_".join(f"{k}{v}" for k, v in sorted(self.params.items()))
        return "_".join(p for p in (self.model, self.method, settings) if p).replace(".", "p")


@dataclass(frozen=True)
class Experiment:
    """A paper table as data.

    Args:
        name: the ``mimokd experiment`` name.
        title: the table's title.
        source: the paper and table.
        teacher: registered name of the teacher (trained vanilla per ratio, first row of the table).
        teacher_paper: ``{cr: {"nmse_db": ...}}`` of the teacher.
        ratios: the compression ratios ``cr`` (``gamma = 1 / cr``) of the table.
        runs: the rows after the teacher.
        small: the :class:`Scale` for two CPU cores; ``paper``: the paper's.
        sweep: the ``params`` key that the rows vary, drawn as NMSE against it (``None``: no sweep).
        extra: more result columns ``[(key, header)]`` (e.g. the codeword MSEs of Lu et al.).
        note: what the table compares, for the results file.
    """

    name: str
    title: str
    source: str
    teacher: str
    teacher_paper: dict
    ratios: tuple
    runs: tuple
    small: Scale
    paper: Scale
    sweep: str = None
    extra: tuple = ()
    note: str = ""
