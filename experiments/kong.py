"""Kong et al.'s figures as experiments: ``mimokd experiment kong-fig2 | kong-fig3 | kong-fig4``.

- **kong-fig2**: sum rate vs ``P`` (dB) for M = 8, N = 2, K = 4, B = 6: Algorithm 1 with KD and
  without (tanh STE), the sigmoid-adjusted STE with and without KD, and the codebook baselines
  BD and RBD (per-user Lloyd codebooks, expected-SINR quantization, α_BD by brute force per P)
  with RBD under infinite feedback as the upper reference. Also the FLOPs of the receiver DNN (the
  paper's formula and the graph count) beside the baseline's formula.
- **kong-fig3**: the same vs ``P`` for B·K = 24 bits in total and K = M / N, N = 1, 2, 4 (M = 8):
  KD, no KD, BD, RBD, RBD with infinite feedback.
- **kong-fig4**: the training loss (minus the sum rate) per epoch for KD and no KD at 30 dB.

Every DNN is trained by :func:`mimokd.train.joint.fit_joint` at one ``P`` in its own run directory
(interrupted runs resume; a finished run is reused when its ``result.json`` has the same scale)
and evaluated on a fixed, seeded test set of Rayleigh channels with fresh pilot noise. Each
experiment writes ``results.json``, ``results.md`` and PNG plots to its output folder.

Split across machines (``mimokd experiment kong-fig* --rows i/N``, then ``--merge``): the rows are the
DNNs (:func:`dnn_runs`: setup by setup, scheme by scheme, P by P), each seeded on its own; the
codebook baselines and FLOPs are computed by the merge (:func:`~mimokd.experiments.runner.run_grid`).

Scale (:class:`KongScale`): ``small`` (minutes to tens of minutes on 2 CPU cores: fewer
iterations, smaller batches, the paper's layer widths scaled by ``width``) and ``paper`` (50,000
iterations of 1,000 channels at full width, 100,000 test channels: a GPU job).
"""

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from mimokd.experiments.runner import GridRun, run_grid

logger = logging.getLogger(__name__)

PAPER_POWERS_DB = (0, 10, 20, 30)
ANCHOR_LOSS_30DB = -9.036  # the paper's converged KD loss at 30 dB (M=8, N=2, K=4, B=6)


@dataclass(frozen=True)
class KongScale:
    """How big a Kong et al. experiment runs.

    Attributes:
        iterations: training iterations per DNN (one fresh batch each).
        batch_size: channels per iteration.
        steps_per_epoch: iterations between validations / log rows.
        width: factor on the paper's hidden widths (receiver 40MN/30MN/20MN, transmitter
            20MNK/30MNK/40MNK); 1 = the paper.
        test_channels: fixed test set size (per P).
        val_channels: fixed validation set size.
        codebook_channels: channel estimates that train each user's Lloyd codebook.
        lloyd_iterations: Lloyd iterations.
    """

    iterations: int
    batch_size: int
    steps_per_epoch: int
    width: float
    test_channels: int
    val_channels: int
    codebook_channels: int
    lloyd_iterations: int

    def with_overrides(self, **values):
        """A copy with the given non-``None`` fields replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


SMALL = KongScale(iterations=300, batch_size=200, steps_per_epoch=50, width=0.25, test_channels=2000,
                  val_channels=1000, codebook_channels=5000, lloyd_iterations=5)
PAPER = KongScale(iterations=50_000, batch_size=1000, steps_per_epoch=1000, width=1.0, test_channels=100_000,
                  val_channels=10_000, codebook_channels=100_000, lloyd_iterations=20)

DNN_SCHEMES = {  # label -> (binarization, use_kd)
    "DNN, KD": ("tanh-ste", True),
    "DNN, no KD": ("tanh-ste", False),
    "DNN, sigmoid STE, KD": ("sigmoid-ste", True),
    "DNN, sigmoid STE, no KD": ("sigmoid-ste", False),
}


@dataclass(frozen=True)
class Setup:
    """One system: M BS antennas, N antennas per user, K users, B feedback bits per user."""

    M: int
    N: int
    K: int
    B: int

    @property
    def label(self):
        return f"M{self.M}_N{self.N}_K{self.K}_B{self.B}"


FIG2 = Setup(M=8, N=2, K=4, B=6)
FIG3 = (Setup(M=8, N=1, K=8, B=3), Setup(M=8, N=2, K=4, B=6), Setup(M=8, N=4, K=2, B=12))


def receiver_flops_formula(M, N, L, B):
    """FLOPs of the receiver DNN by the paper's formula ``10MN(16LN + 360MN - 9) + B(40MN - 1)``."""
    return 10 * M * N * (16 * L * N + 360 * M * N - 9) + B * (40 * M * N - 1)


def build_system(setup, binarization, width):
    """A fresh :class:`~mimokd.zoo.precoding.KongSystem` at the paper's widths times ``width``."""
    from mimokd.zoo.precoding import KongSystem

    M, N, K = setup.M, setup.N, setup.K
    return KongSystem.build(
        num_users=K, num_tx=M, num_rx=N, pilot_length=M, bits=setup.B, binarization=binarization,
        receiver_hidden=tuple(max(1, round(width * f * M * N)) for f in (40, 30, 20)),
        transmitter_hidden=tuple(max(1, round(width * f * M * N * K)) for f in (20, 30, 40)),
    )


def _stamp(scale, seed):
    return {"scale": asdict(scale), "seed": seed}


def _finished(out_dir, scale, seed):
    """The result of the finished DNN run in ``out_dir`` at ``scale`` and ``seed``, else ``None``; its ``log``
    is the run directory's where it is now (a run directory copied from another machine is self-contained)."""
    done = Path(out_dir) / "result.json"
    if done.exists():
        stored = json.loads(done.read_text())
        if stored["stamp"] == _stamp(scale, seed):
            return {**stored["result"], "log": str(Path(out_dir) / "log.csv")}
    return None


def train_dnn(out_dir, setup, power_db, binarization, use_kd, scale, seed):
    """Train one DNN system at ``power_db`` (or reuse a finished run) and test it.

    Returns:
        dict: ``sum_rate`` (test mean), ``final_loss`` (last logged training loss), ``train_s``,
        ``iterations``, ``log`` (path of the per-epoch CSV).
    """
    import keras

    from mimokd.classical.mimo import rayleigh_channels
    from mimokd.fileio import write_json
    from mimokd.train.joint import evaluate_sum_rate, fit_joint

    out_dir = Path(out_dir)
    stored = _finished(out_dir, scale, seed)
    if stored is not None:
        return stored
    keras.utils.set_random_seed(seed)
    system = build_system(setup, binarization, scale.width)
    start = time.perf_counter()
    _, history = fit_joint(
        system, out_dir=out_dir, power_db=power_db, use_kd=use_kd, iterations=scale.iterations,
        steps_per_epoch=scale.steps_per_epoch, batch_size=scale.batch_size, val_samples=scale.val_channels,
        seed=seed, verbose=0,
    )
    seconds = time.perf_counter() - start
    test = rayleigh_channels(scale.test_channels, setup.K, setup.M, setup.N, rng=seed + 1000)
    result = {
        "sum_rate": float(evaluate_sum_rate(system, test, power_db, rng=seed + 2000)),
        "final_loss": float(history.history["loss"][-1]) if history.history.get("loss") else None,
        "train_s": seconds,
        "iterations": scale.iterations,
        "log": str(out_dir / "log.csv"),
    }
    write_json(out_dir / "result.json", {"stamp": _stamp(scale, seed), "result": result})
    return result


def baseline_rates(setup, powers_db, scale, seed, p_train=10.0):
    """Sum rates of BD and RBD with Lloyd codebooks and of RBD with infinite feedback, per P.

    Returns:
        ``{scheme: [mean sum rate per P]}``.
    """
    from mimokd.classical.block_diag import infinite_feedback_rbd_sum_rate, limited_feedback_sum_rate
    from mimokd.classical.codebook import lloyd_codebook
    from mimokd.classical.mimo import dft_pilots, mmse_estimate, rayleigh_channels, received_pilots
    from mimokd.classical.sum_rate import db_to_linear

    M, N, K, B = setup.M, setup.N, setup.K, setup.B
    pilots = dft_pilots(M, M)

    def estimates(count, rng):
        H = rayleigh_channels(count, K, M, N, rng=rng)
        return H, mmse_estimate(received_pilots(H, pilots, p_train, rng + 1), pilots, p_train)

    _, train_hat = estimates(scale.codebook_channels, seed + 3000)
    codebooks = np.stack([
        lloyd_codebook(train_hat[:, k], B, iterations=scale.lloyd_iterations, rng=seed + k, progress=False)
        for k in range(K)
    ])
    H, H_hat = estimates(scale.test_channels, seed + 1000)
    rates = {"BD": [], "RBD": [], "RBD, infinite feedback": []}
    for p_db in powers_db:
        P = db_to_linear(p_db)
        rates["BD"].append(float(np.mean(limited_feedback_sum_rate(H, H_hat, codebooks, P, scheme="bd"))))
        rates["RBD"].append(float(np.mean(limited_feedback_sum_rate(H, H_hat, codebooks, P, scheme="rbd"))))
        rates["RBD, infinite feedback"].append(float(np.mean(infinite_feedback_rbd_sum_rate(H, H_hat, P))))
    return rates


def dnn_runs(out_dir, setups, schemes, powers_db, scale, seed):
    """The DNN trainings of a figure as :class:`~mimokd.experiments.runner.GridRun` s, numbered setup by
    setup, scheme (of :data:`DNN_SCHEMES`) by scheme, P by P: ``{(setup, label, P): run}`` in that order.

    Each run is :func:`train_dnn` in ``<out>/<setup>/<scheme>_P<P>/``, seeded by ``seed`` alone.
    """
    runs = {}
    for setup in setups:
        for label in schemes:
            binarization, use_kd = DNN_SCHEMES[label]
            for p_db in powers_db:
                run_dir = Path(out_dir) / setup.label / f"{label.replace(', ', '_').replace(' ', '-')}_P{p_db:g}"
                runs[setup, label, p_db] = GridRun(
                    f"{label!r} at {setup.label}, P = {p_db:g} dB", run_dir,
                    partial(train_dnn, run_dir, setup, p_db, binarization, use_kd, scale, seed),
                    partial(_finished, run_dir, scale, seed))
    return runs


def _dnn_results(out_dir, setups, schemes, powers_db, scale, seed, share):
    """:func:`run_grid` over :func:`dnn_runs`: ``{(setup, label, P): result}``, ``None`` after a share of rows."""
    runs = dnn_runs(out_dir, setups, schemes, powers_db, scale, seed)
    results = run_grid(list(runs.values()), out_dir, share)
    return None if results is None else dict(zip(runs, results))


def _sum_rate_figure(out_dir, setups, schemes, powers_db, scale, seed, title, share):
    """Train (or merge, ``share``) ``schemes`` on each setup at each P and evaluate the baselines;
    write one plot per setup. Returns ``(rows, lines)`` (``None`` after a share of rows)."""
    from mimokd.plots import plot_sweep
    from mimokd.tables import markdown_table

    results = _dnn_results(out_dir, setups, schemes, powers_db, scale, seed, share)
    if results is None:
        return None
    out_dir = Path(out_dir)
    rows, lines = [], [f"# {title}", "", f"Scale: {asdict(scale)}, seed {seed}. Sum rate in bits/s/Hz "
                       "(mean over the test channels).", ""]
    for setup in setups:
        series = {}
        for label in schemes:
            series[label] = [results[setup, label, p_db]["sum_rate"] for p_db in powers_db]
            rows += [{"setup": setup.label, "scheme": label, "P_db": p_db, **results[setup, label, p_db]}
                     for p_db in powers_db]
        logger.info("%s baselines", setup.label)
        for label, values in baseline_rates(setup, powers_db, scale, seed).items():
            series[label] = values
            rows += [{"setup": setup.label, "scheme": label, "P_db": p, "sum_rate": v}
                     for p, v in zip(powers_db, values)]
        table = [{"scheme": label, **{f"{p:g} dB": v for p, v in zip(powers_db, values)}}
                 for label, values in series.items()]
        lines += [f"## {setup.label}", "", markdown_table(table, [("scheme", "scheme")] + [
            (f"{p:g} dB", f"P = {p:g} dB") for p in powers_db])]
        plot_sweep(list(powers_db), series, out_dir / f"sum_rate_{setup.label}.png", "P (dB)", "sum rate (bits/s/Hz)")
    return rows, lines


def _write(out_dir, scale, seed, rows, lines, **extra):
    """``results.json`` and ``results.md`` of an experiment."""
    from mimokd.fileio import write_json, write_text

    write_json(Path(out_dir) / "results.json", {"scale": asdict(scale), "seed": seed, "rows": rows, **extra})
    write_text(Path(out_dir) / "results.md", "\n".join(lines))


def fig2(out_dir, scale, powers_db=PAPER_POWERS_DB, seed=0, share=None):
    """Fig. 2 (see the module docstring); returns the result rows (``None`` after a ``share`` of rows:
    a :class:`~mimokd.experiments.runner.Share`)."""
    from mimokd.classical.block_diag import baseline_flops
    from mimokd.export.flops import graph_flops
    from mimokd.tables import markdown_table

    figure = _sum_rate_figure(out_dir, [FIG2], list(DNN_SCHEMES), powers_db, scale, seed,
                              "Kong et al. Fig. 2: sum rate vs P, M = 8, N = 2, K = 4, B = 6", share)
    if figure is None:
        return None
    rows, lines = figure
    M, N, B = FIG2.M, FIG2.N, FIG2.B
    paper = build_system(FIG2, "tanh-ste", 1.0)
    flops = [
        {"what": "receiver DNN, paper's formula", "flops": receiver_flops_formula(M, N, M, B)},
        {"what": "receiver DNN, graph count (paper's widths)", "flops": graph_flops(paper.receiver)},
        {"what": "baseline (estimation + quantization), paper's formula", "flops": baseline_flops(M, N, FIG2.K, B)},
    ]
    lines += ["## FLOPs per user (L = M = 8)", "", markdown_table(flops, [("what", ""), ("flops", "FLOPs")]),
              "The paper's own example (471,040) does not follow from its formula; REFERENCE.md.", ""]
    _write(out_dir, scale, seed, rows, lines, flops=flops)
    return rows


def fig3(out_dir, scale, powers_db=PAPER_POWERS_DB, seed=0, share=None):
    """Fig. 3 (see the module docstring); returns the result rows (``None`` after a ``share`` of rows)."""
    figure = _sum_rate_figure(out_dir, FIG3, ["DNN, KD", "DNN, no KD"], powers_db, scale, seed,
                              "Kong et al. Fig. 3: sum rate vs P, B K = 24, K = M / N, M = 8", share)
    if figure is None:
        return None
    rows, lines = figure
    _write(out_dir, scale, seed, rows, lines)
    return rows


def fig4(out_dir, scale, power_db=30, seed=0, share=None):
    """Fig. 4: the training loss per epoch with and without KD at ``power_db``; returns the rows (``None``
    after a ``share`` of rows)."""
    from mimokd.plots import plot_training_curves

    out_dir = Path(out_dir)
    results = _dnn_results(out_dir, [FIG2], ["DNN, KD", "DNN, no KD"], [power_db], scale, seed, share)
    if results is None:
        return None
    rows, logs = [], {}
    for (_, label, _), result in results.items():
        logs[label] = result["log"]
        rows.append({"scheme": label, "P_db": power_db, **result})
    plot_training_curves(logs, out_dir / "loss.png", metrics=("loss", "val_loss"))
    text = [f"# Kong et al. Fig. 4: loss vs iteration at {power_db} dB", "",
            f"Scale: {asdict(scale)}. Loss = minus the sum rate (training batches; val_loss on the fixed "
            f"validation set); the paper's KD loss converges to {ANCHOR_LOSS_30DB} at 30 dB.", ""]
    text += [f"- {r['scheme']}: final training loss {r['final_loss']:.3f}, test sum rate {r['sum_rate']:.3f} "
             f"after {r['iterations']} iterations ({r['train_s']:.0f} s)" for r in rows]
    _write(out_dir, scale, seed, rows, text + [""])
    return rows


KONG_EXPERIMENTS = {
    "kong-fig2": (fig2, "Kong et al. Fig. 2: sum rate vs P, KD / no KD / sigmoid STE / BD / RBD"),
    "kong-fig3": (fig3, "Kong et al. Fig. 3: sum rate vs P, B K = 24, N = 1, 2, 4"),
    "kong-fig4": (fig4, "Kong et al. Fig. 4: loss vs iteration, KD and no KD at 30 dB"),
}


def run_kong(name, out_dir, scale, powers_db=None, seed=0, share=None):
    """Run the Kong et al. experiment ``name`` at ``scale`` (``powers_db`` for fig2 / fig3), all of its
    DNNs or a ``share`` (:class:`~mimokd.experiments.runner.Share`: ``--rows i/N`` or ``--merge``)."""
    function, _ = KONG_EXPERIMENTS[name]
    if name == "kong-fig4":
        return function(out_dir, scale, seed=seed, share=share)
    return function(out_dir, scale, powers_db=tuple(powers_db or PAPER_POWERS_DB), seed=seed, share=share)
