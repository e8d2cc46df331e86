"""The crash-safe training state of a run directory (its ``backup/`` folder): exact resume.

After every epoch :func:`write_generation` writes one *generation* into ``backup/``:

- ``epoch-NNNNN.weights.h5``: the trainer's weights and the state of its optimizers
  (``Model.save_weights``), NNNNN the number of epochs done;
- ``epoch-NNNNN.json``: the sha256 of that weights file, the state of the trainer's random seed
  generators (a ``Dropout``'s, say: ``save_weights`` leaves them out), the best monitored value so
  far and the rows of ``log.csv`` so far.

Both files are written through :func:`mimokd.fileio.atomic_path`, the weights first, so a ``.json``
exists only beside complete weights; the two newest generations are kept. :func:`latest_state`
takes the newest generation whose ``.json`` reads and whose weights match their sha256, so a kill
at any instant, or a file damaged afterwards, leaves a folder that resumes (at worst from the
generation before, one epoch earlier). Anything else in ``backup/`` (the temporary file of a write
that was killed, an older generation, a ``keras.callbacks.BackupAndRestore`` file of an older
version) is deleted when the next generation is in place.
"""

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimokd.fileio import atomic_path, sha256_file, write_json

#: Generations kept in ``backup/``: the newest, and the one before in case it is damaged.
KEEP = 2

_NAME = re.compile(r"epoch-(\d{5,})\.json")


@dataclass(frozen=True)
class RunState:
    """One generation of ``backup/``, as :func:`latest_state` found it.

    Attributes:
        epoch: epochs done (the first epoch a resumed run trains, 0-based).
        weights: the ``.weights.h5`` file (verified against its sha256).
        seed_states: the seed generators' states, in :func:`_seed_variables` order.
        best: the best monitored value so far, or ``None``.
        rows: the ``log.csv`` rows of the epochs done, one dict per epoch.
    """

    epoch: int
    weights: Path
    seed_states: list
    best: float | None
    rows: list

    @property
    def files(self):
        """The generation's two files: ``(epoch-NNNNN.json, epoch-NNNNN.weights.h5)``."""
        return self.weights.with_name(f"{_stem(self.epoch)}.json"), self.weights


def _seed_variables(trainer):
    """The trainer's variables that ``save_weights`` leaves out: the states of its random seed
    generators (``Model.variables`` is ``Model.weights`` plus those), in a fixed order."""
    saved = {id(v) for v in trainer.weights}
    return [v for v in trainer.variables if id(v) not in saved]


def _stem(epoch):
    return f"epoch-{epoch:05d}"


def write_generation(backup_dir, trainer, *, epoch, best, rows):
    """Write the state of ``trainer`` after ``epoch`` epochs done, then delete all but the
    :data:`KEEP` newest generations (and any leftover file).

    Raises:
        mimokd.fileio.DiskFullError: the disk filled up; the generations before are intact.
    """
    backup_dir = Path(backup_dir)
    weights = backup_dir / f"{_stem(epoch)}.weights.h5"
    with atomic_path(weights) as tmp:
        trainer.save_weights(tmp)
    write_json(backup_dir / f"{_stem(epoch)}.json", {
        "epoch": epoch,
        "weights": weights.name,
        "sha256": sha256_file(weights),
        "seed_states": [np.asarray(v).tolist() for v in _seed_variables(trainer)],
        "best": best,
        "log": rows,
    })
    keep = {name for stem in _generations(backup_dir)[:KEEP] for name in (f"{stem}.json", f"{stem}.weights.h5")}
    # a generation's .json goes before its weights, so no .json ever names missing weights
    for path in sorted(backup_dir.iterdir(), key=lambda p: p.suffix != ".json"):
        if path.name not in keep and path.is_file():
            path.unlink()


def _generations(backup_dir):
    """The stems of the generations that have a ``.json`` in ``backup_dir``, newest first."""
    found = [m for m in (_NAME.fullmatch(p.name) for p in backup_dir.iterdir()) if m]
    return [_stem(int(m.group(1))) for m in sorted(found, key=lambda m: -int(m.group(1)))]


def latest_state(backup_dir):
    """The newest intact generation in ``backup_dir`` as a :class:`RunState`, or ``None``.

    A generation whose ``.json`` does not read or whose weights are missing or do not match their
    sha256 is skipped with a warning that names it.
    """
    backup_dir = Path(backup_dir)
    if not backup_dir.is_dir():
        return None
    for stem in _generations(backup_dir):
        meta_path = backup_dir / f"{stem}.json"
        try:
            meta = json.loads(meta_path.read_text())
            weights = backup_dir / meta["weights"]
            problem = None
            if not weights.is_file() or sha256_file(weights) != meta["sha256"]:
                problem = f"its weights {weights.name} are missing or do not match their sha256"
        except (OSError, ValueError, KeyError, TypeError) as err:
            problem = f"it does not read: {err!r}"
        if problem:
            warnings.warn(f"The training state {meta_path} is damaged ({problem}); trying the one before",
                          stacklevel=2)
            continue
        return RunState(epoch=int(meta["epoch"]), weights=weights, seed_states=meta["seed_states"],
                        best=meta["best"], rows=meta["log"])
    return None


def restore(trainer, state):
    """Load ``state`` into ``trainer`` (built, its optimizers built): weights, optimizer state and
    step counter, and the seed generators' states.

    Raises:
        ValueError: the state was written by a trainer with other variables.
    """
    seeds = _seed_variables(trainer)
    if len(seeds) != len(state.seed_states):
        raise ValueError(
            f"The training state {state.weights} holds {len(state.seed_states)} seed generator states; "
            f"the model has {len(seeds)}. It was written by another model: pass overwrite=True (--overwrite) "
            "to start this run afresh"
        )
    trainer.load_weights(state.weights)
    for variable, value in zip(seeds, state.seed_states):
        variable.assign(np.asarray(value, dtype=variable.dtype))
