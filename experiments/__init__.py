"""Paper tables and figures as configs: ``mimokd experiment <name>`` (see :func:`run_experiment`).

Each :class:`Experiment` is data (:mod:`mimokd.experiments.csi_kd` holds the KD tables of Lu et al.
and Cui et al.); :func:`run_experiment` trains its rows at a :class:`Scale` and writes the table
beside the paper's numbers, with training curves; ``rows=`` splits a table across machines and
:func:`merge_experiment` writes it from their run directories.
"""

from mimokd.experiments.csi_kd import EXPERIMENTS
from mimokd.experiments.runner import merge_experiment, parse_rows, run_experiment, table_rows
from mimokd.experiments.spec import METHODS, Experiment, Run, Scale


def get_experiment(name):
    """The registered :class:`Experiment` called ``name``."""
    if name not in EXPERIMENTS:
        raise KeyError(f"Unknown experiment {name!r}. Expected one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


__all__ = ["EXPERIMENTS", "METHODS", "Experiment", "Run", "Scale", "get_experiment", "merge_experiment", "parse_rows",
           "run_experiment", "table_rows"]
