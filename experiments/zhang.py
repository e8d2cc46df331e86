"""Zhang et al.'s single-cell experiments (Sec. VII-A, B): ``mimokd experiment zhang-fig2 | -fig4 | -fig5 | -table1``.

Every point of a sweep is one :class:`Setting` (channel model, ``Nt``, ``K``, SNR ``P / sigma^2`` with
``sigma^2 = 1``, pilot length ``L``); its training and test sets come from
:func:`~mimokd.train.hybrid.make_hybrid_dataset` (uplink LS input from DFT pilots, eq. 11-12, WMMSE
labels on the true downlink channels), with one front-end ``(Phi, c)`` per ``(seed, Nt)``. Each scheme
of :data:`SCHEMES` is trained on it and scored by its mean sum rate (eq. 2) on the TRUE downlink
channels of the fixed test set; WMMSE (``init="best"``, perfect downlink CSI) on the same channels
is the reference.

- **zhang-fig2** (paper Fig. 2): ``h_D[i] = h_U[i]^2``, ``K = Nt``, 20 dB: the model-driven network
  trained with the hybrid loss of eq. (10) vs supervised-only (``alpha_R = 0``) and unsupervised-only
  (``alpha_H = alpha_P = 0``).
- **zhang-fig4** (Fig. 4, Sec. VII-A): the TDD front-end mismatch ``h_D = c Phi h_U`` (eq. 38),
  ``K = Nt``, 20 dB: model-driven with the recovery of eq. (7) and with the ZF recovery of eq. (24) in
  the loss, "learned channel + BF" and "learned channel + ZF", WMMSE; (b) the downlink channel NMSE
  (eq. 39) of the learned channel and of the model-driven network's CSI-Net.
- **zhang-fig5** (Fig. 5, Sec. VII-B): the FDD multipath ULA model (eq. 40, 2.5 / 2.4 GHz),
  ``Nt = 64`` (the text; the caption says 32: ``--antennas``), 10 dB; (a) vs ``K`` with ``L = K``
  pilots, (b) vs ``L`` at ``K = 6``; the schemes of zhang-fig4.
  Eq. (40) as written does not let any estimator learn the downlink channel: with CN(0, 1) path gains
  ``alpha_l = |alpha_l| e^{j theta_l}`` the uplink sees ``alpha_l e^{j psi_l}`` and the downlink
  ``alpha_l^2 e^{j psi'_l}``, whose phase differs by the unobservable ``theta_l`` (uniform), so
  ``E[h_D | h_U] = 0`` and only the path angles and powers carry over (the CSI-Nets' NMSE stays at
  0 dB). The delays add a second such phase, ``2 pi (f_UL - f_DL) tau``, ~10^4 turns with the paper's
  ``[0, 10^-4]`` read in seconds; ``--max-delay`` changes that range (1e-10 gave the same rates: the
  phase doubling alone already hides the downlink phases).
- **zhang-table1** (Table I): training time of the model-driven network with the original recovery
  (eq. 7, ``T_0``), the reduced-dimension recovery (eq. 20-23) and the ZF loss (eq. 24), FDD,
  ``Nt = 64``, 10 dB, vs ``K``.

Schemes (Sec. VII's definitions): "learned channel" is a CSI-Net trained with ``L_H`` alone
(``HybridBeamformer(recovery="zf", alpha_R = 0)``), so "learned channel + ZF" is eq. (24) on its
output; "learned channel + BF" trains :class:`~mimokd.train.learned_channel.LearnedChannelBeamformer`
on it, without labels. The model-driven network uses the paper's weights ``alpha_H = alpha_P = 1,
alpha_R = 0.001``. The CSI-Net / Power-Net sizes are the paper's per scenario (Sec. VII-A: four FC
layers of ``4 K Nt``; Sec. VII-B: three of ``2 Nt K``, and the 1-D CNN Power-Net), times ``width``.

Each training run is a run directory ``<out>/<point>/<scheme>/`` (:func:`fit_in_run_dir`: ``log.csv``,
``final.keras``, ``best.keras``; an interrupted run resumes from its last finished epoch) plus
``result.json``; a finished run with the same scale, seed and setting is reused.
Split across machines (``mimokd experiment zhang-* --rows i/N``, then ``--merge``): the rows are the sweep
points (:func:`grid_points`; fig5: (a)'s, then (b)'s), each trains every scheme of its point, on its own
seeded data set (made once per point; the BF network trains on the learned channel's CSI-Net and
Table I compares the times of one point's schemes, so they stay together). Every figure function
returns its rows, or ``None`` after a ``share`` of rows (:class:`~mimokd.experiments.runner.Share`).
Writes ``results.json``, ``results.md`` and PNGs to the output folder.

Scale (:class:`ZhangScale`): ``small`` (3,000 training and 500 test samples, 10 epochs, batch 128,
the paper's widths: minutes per point on 2 CPU cores) and ``paper`` (Sec. VII: 10^5 training samples
(10^6 in Sec. VII-A), 10^3 test samples, batch 100, 200 epochs, full width: a GPU job).
"""

import json
import logging
import re
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from mimokd.experiments.runner import GridRun, run_grid

logger = logging.getLogger(__name__)

NOISE = 1.0


@dataclass(frozen=True)
class ZhangScale:
    """How big a Zhang et al. experiment runs.

    Attributes:
        train, test: samples per sweep point. epochs, batch_size, learning_rate: training (Adam).
        width: factor on the paper's hidden widths (CSI-Net, Power-Net FC, BF-Net).
    """

    train: int
    test: int
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    width: float = 1.0

    def with_overrides(self, **values):
        """A copy with the given non-``None`` fields replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


SMALL = ZhangScale(train=3000, test=500, epochs=10, batch_size=128)
PAPER = ZhangScale(train=100_000, test=1000, epochs=200, batch_size=100)


@dataclass(frozen=True)
class Setting:
    """One sweep point: ``channel_model`` of :func:`make_hybrid_dataset`, ``Nt``, ``K``, ``snr_db``
    (``P / sigma^2``), ``pilots`` (``L``; ``None``: ``K``), ``max_delay`` (``"fdd"`` only: the upper end of
    the path delays in seconds; ``None``: the generator's ``1e-4``)."""

    channel_model: str
    Nt: int
    K: int
    snr_db: float
    pilots: int = None
    max_delay: float = None

    @property
    def tag(self):
        delay = "" if self.max_delay is None else f"_tau{self.max_delay:g}"
        return f"{self.channel_model}_Nt{self.Nt}_K{self.K}_P{self.snr_db:g}_L{self.pilots or self.K}{delay}"

    @property
    def power(self):
        from mimokd.classical.sum_rate import db_to_linear

        return float(db_to_linear(self.snr_db))


# label -> how it is built: kind, recovery, (alpha_h, alpha_p, alpha_r)
HYBRID = "model-driven (eq. 7)"
REDUCED = "model-driven, reduced dimension (eq. 20-23)"
ZF_LOSS = "model-driven, ZF loss (eq. 24)"
SUPERVISED = "supervised only"
UNSUPERVISED = "unsupervised only"
LEARNED_ZF = "learned channel + ZF"
LEARNED_BF = "learned channel + BF"
WMMSE = "WMMSE (perfect downlink CSI)"
SCHEMES = {
    HYBRID: ("hybrid", "wmmse", (1.0, 1.0, 0.001)),
    REDUCED: ("hybrid", "reduced", (1.0, 1.0, 0.001)),
    ZF_LOSS: ("hybrid", "zf", (1.0, 0.0, 0.001)),
    SUPERVISED: ("hybrid", "wmmse", (1.0, 1.0, 0.0)),
    UNSUPERVISED: ("hybrid", "wmmse", (0.0, 0.0, 1.0)),
    LEARNED_ZF: ("hybrid", "zf", (1.0, 0.0, 0.0)),
    LEARNED_BF: ("learned_bf", None, None),
}


def run_tag(label):
    """A scheme label as a folder name: runs of other characters than letters and digits become one ``-``."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")


def datasets(setting, scale, seed):
    """``(train, test)`` dicts of :func:`~mimokd.train.hybrid.make_hybrid_dataset` for ``setting``.

    One front-end ``(Phi, c)`` drawn from ``(seed, Nt)`` is shared by both sets and every point with
    that ``Nt``; the two sets have distinct seeds derived from the setting.
    """
    from mimokd.channels.uplink_downlink import make_front_end
    from mimokd.train.hybrid import make_hybrid_dataset

    front_end = None if setting.channel_model == "squared" else make_front_end(setting.Nt, np.random.default_rng(
        [seed, setting.Nt]))
    key = [seed, setting.Nt, setting.K, int(round(10 * setting.snr_db)) + 1000, setting.pilots or setting.K]
    kwargs = {"front_end": front_end, "channel_model": setting.channel_model, "pilot_length": setting.pilots,
              "wmmse_kwargs": {"init": "best"}}
    if setting.max_delay is not None:
        kwargs["channel_kwargs"] = {"max_delay": setting.max_delay}
    train = make_hybrid_dataset(scale.train, setting.Nt, setting.K, setting.power, NOISE,
                                np.random.default_rng(key + [1]), **kwargs)
    test = make_hybrid_dataset(scale.test, setting.Nt, setting.K, setting.power, NOISE,
                               np.random.default_rng(key + [2]), **kwargs)
    return train, test


def network_sizes(setting, width):
    """The paper's hidden widths for ``setting`` times ``width``: dict ``csi_hidden``, ``power_hidden``,
    ``power_variant``, ``bf_hidden`` (Sec. VII-A for ``"tdd"`` / ``"squared"``, VII-B for ``"fdd"``)."""
    Nt, K = setting.Nt, setting.K
    if setting.channel_model == "fdd":
        csi = (max(1, round(width * 2 * Nt * K)),) * 3
        return {"csi_hidden": csi, "power_hidden": (max(1, round(width * 256)),), "power_variant": "cnn",
                "bf_hidden": csi}
    fc = (max(1, round(width * 4 * K * Nt)),) * 4
    return {"csi_hidden": fc, "power_hidden": fc, "power_variant": "fc", "bf_hidden": fc}


VALIDATION_FRACTION = 0.1


def fit_in_run_dir(model, x, y, run_dir, scale, seed, record):
    """Fit a compiled ``model`` in the resumable run directory ``run_dir`` (:func:`mimokd.train.runs.fit_run`).

    The last :data:`VALIDATION_FRACTION` of the samples validate (``val_*`` in ``log.csv``, and
    ``best.keras`` at the lowest ``val_loss``); the rest train, reshuffled every epoch from ``(seed, epoch)``,
    in batches of ``scale.batch_size``, for ``scale.epochs`` epochs. An interrupted run resumes from its
    last finished epoch. ``y``: an array or a dict of arrays.

    Returns:
        dict: ``train_s`` (the epochs' wall time, summed over resumed parts), ``epoch_s`` (per epoch),
        ``final_loss``, ``final_val_loss``.
    """
    import tensorflow as tf

    from mimokd.train.runs import epoch_batches, fit_run, read_log

    n = len(x)
    n_val = max(1, int(round(VALIDATION_FRACTION * n)))

    def part(lo, hi):
        return x[lo:hi], tf.nest.map_structure(lambda a: a[lo:hi], y)

    val = tf.data.Dataset.from_tensor_slices(part(n - n_val, n)).batch(scale.batch_size)
    fit_run(model, epoch_batches(*part(0, n - n_val), batch_size=scale.batch_size, seed=seed), val, out_dir=run_dir,
            epochs=scale.epochs, record=record, monitor="val_loss", verbose=0)
    log = read_log(Path(run_dir) / "log.csv")
    return {"train_s": float(sum(log["seconds"])), "epoch_s": log["seconds"], "final_loss": log["loss"][-1],
            "final_val_loss": log["val_loss"][-1]}


def _stamp(setting, scale, seed):
    return {"setting": asdict(setting), "scale": asdict(scale), "seed": seed}


def _finished(run_dir, setting, scale, seed):
    """The stored result of a finished run with the same stamp, else ``None``."""
    done = Path(run_dir) / "result.json"
    if done.exists():
        stored = json.loads(done.read_text())
        if stored.get("stamp") == _stamp(setting, scale, seed):
            return stored["result"]
    return None


def channel_nmse(csi_net, data):
    """Eq. (39): ``E ||H_hat - H_D||^2 / ||H_D||^2`` of ``csi_net``'s output on ``data`` (linear)."""
    h_hat = np.asarray(csi_net.predict(data["uplink"], batch_size=1024, verbose=0), np.float64)
    h = data["downlink"].astype(np.float64)
    return float(np.mean(np.sum((h_hat - h) ** 2, axis=(1, 2, 3)) / np.sum(h ** 2, axis=(1, 2, 3))))


def _build(label, setting, scale, learned_csi_net):
    import keras

    from mimokd.train.hybrid import HybridBeamformer
    from mimokd.train.learned_channel import LearnedChannelBeamformer

    kind, recovery, alphas = SCHEMES[label]
    sizes = network_sizes(setting, scale.width)
    if kind == "learned_bf":
        model = LearnedChannelBeamformer(learned_csi_net, setting.Nt, setting.K, setting.power, NOISE,
                                         hidden=sizes["bf_hidden"])
    else:
        model = HybridBeamformer(setting.Nt, setting.K, setting.power, NOISE, alpha_h=alphas[0], alpha_p=alphas[1],
                                 alpha_r=alphas[2], recovery=recovery, csi_hidden=sizes["csi_hidden"],
                                 power_hidden=sizes["power_hidden"], power_variant=sizes["power_variant"])
    model.compile(optimizer=keras.optimizers.Adam(scale.learning_rate))
    return model


def train_scheme(run_dir, label, setting, scale, seed, data, learned_csi_net=None):
    """Train ``label`` (:data:`SCHEMES`) at ``setting`` (or reuse a finished run) and test it.

    Args:
        data: a zero-argument callable returning ``(train, test)`` of :func:`datasets` (called only
            when the run must be trained).
        learned_csi_net: the learned-channel CSI-Net, for :data:`LEARNED_BF`.

    Returns:
        ``(result, model)``: ``result`` a dict with ``sum_rate``, ``wmmse_sum_rate``, ``fraction``,
        ``channel_nmse`` (``None`` for the BF network), the entries of :func:`fit_in_run_dir` and
        ``epochs``; ``model`` the trained Keras model (``final.keras`` of the run directory).
    """
    import keras

    import mimokd.train.learned_channel  # noqa: F401  registers LearnedChannelBeamformer for load_model
    from mimokd.fileio import write_json
    from mimokd.train.hybrid import evaluate, fit_arrays

    run_dir = Path(run_dir)
    stored = _finished(run_dir, setting, scale, seed)
    if stored is not None:
        return stored, keras.models.load_model(run_dir / "final.keras")
    train, test = data()
    keras.utils.set_random_seed(seed)
    model = _build(label, setting, scale, learned_csi_net)
    x, y = fit_arrays(train)
    if SCHEMES[label][0] == "learned_bf":
        y = y["downlink"]
    fitted = fit_in_run_dir(model, x, y, run_dir, scale, seed, _stamp(setting, scale, seed))
    result = {
        **evaluate(model, test),
        "channel_nmse": None if SCHEMES[label][0] == "learned_bf" else channel_nmse(model.csi_net, test),
        **fitted,
        "epochs": scale.epochs,
    }
    write_json(run_dir / "result.json", {"stamp": _stamp(setting, scale, seed), "result": result})
    return result, model


def run_point(out_dir, setting, labels, scale, seed):
    """Train every scheme of ``labels`` at ``setting`` (data built once, only if some run must train).

    Returns ``{label: result}`` plus ``WMMSE`` -> ``{"sum_rate": ..., "fraction": 1.0}``.
    """
    point_dir = Path(out_dir) / setting.tag
    cache = {}

    def data():
        if "sets" not in cache:
            logger.info("  data %s (%d + %d samples, WMMSE labels)", setting.tag, scale.train, scale.test)
            cache["sets"] = datasets(setting, scale, seed)
        return cache["sets"]

    first = [LEARNED_ZF] if LEARNED_BF in labels else []  # the BF network needs the learned channel
    order = first + [label for label in labels if label not in first]
    results, learned = {}, None
    for label in order:
        logger.info("  %s: %s", setting.tag, label)
        results[label], model = train_scheme(point_dir / run_tag(label), label, setting, scale, seed, data,
                                             learned_csi_net=learned)
        if label == LEARNED_ZF:
            learned = model.csi_net
    return _with_reference(results, labels)


def _with_reference(results, labels):
    """``results`` of ``labels`` in order, then :data:`WMMSE` -> its sum rate on the same test set."""
    ref = next(iter(results.values()))["wmmse_sum_rate"]
    results = {**results, WMMSE: {"sum_rate": ref, "wmmse_sum_rate": ref, "fraction": 1.0}}
    return {label: results[label] for label in [*labels, WMMSE] if label in results}


def stored_point(out_dir, setting, labels, scale, seed):
    """What :func:`run_point` returns, read from the point's finished runs (``None`` if one is not finished)."""
    results = {label: _finished(Path(out_dir) / setting.tag / run_tag(label), setting, scale, seed)
               for label in labels}
    return None if None in results.values() else _with_reference(results, labels)


def grid_points(out_dir, sweeps, point_run, share=None):
    """The points of ``sweeps`` (``[(sweep_dir, settings)]``), numbered sweep by sweep, point by point, as
    rows of :func:`~mimokd.experiments.runner.run_grid` (all of them, or a ``share``).

    Args:
        point_run: ``(sweep_dir, setting) -> GridRun`` of one point (e.g. :func:`point_run`).

    Returns:
        one list of point results per sweep, or ``None`` after a share of rows.
    """
    results = run_grid([point_run(d, setting) for d, settings in sweeps for setting in settings], out_dir, share)
    if results is None:
        return None
    points = iter(results)
    return [[next(points) for _ in settings] for _, settings in sweeps]


def point_run(out_dir, setting, labels, scale, seed):
    """The :class:`~mimokd.experiments.runner.GridRun` of :func:`run_point` at ``setting``."""
    return GridRun(f"{', '.join(map(repr, labels))} at {setting.tag}", Path(out_dir) / setting.tag,
                   partial(run_point, out_dir, setting, labels, scale, seed),
                   partial(stored_point, out_dir, setting, labels, scale, seed))


def _points(out_dir, sweeps, labels, scale, seed, share):
    """:func:`grid_points` of ``labels`` at every setting of ``sweeps``."""
    return grid_points(out_dir, sweeps, lambda d, setting: point_run(d, setting, labels, scale, seed), share)


def _write(out_dir, payload, lines):
    from mimokd.fileio import write_json, write_text

    write_json(Path(out_dir) / "results.json", payload)
    write_text(Path(out_dir) / "results.md", "\n".join(lines))


def sweep(out_dir, settings, values, labels, points, scale, seed, *, xlabel, title, nmse_plot=False,
          headline_at=None):
    """Write the sum-rate sweep (table, fraction of WMMSE, PNG) of ``points``, what :func:`run_point` returned
    at each setting.

    Args:
        settings, values: the points and their x values (same length). labels: schemes of :data:`SCHEMES`.
        xlabel, title: axis label and the results.md title. nmse_plot: also plot and tabulate the
            channel NMSE (dB) of the schemes that have a CSI-Net (Fig. 4(b)).
        headline_at: a value of ``values``: state :func:`headline` there (model-driven eq. 7 vs WMMSE
            and vs learned channel + ZF) at the top of results.md and in results.json.

    Returns:
        ``(rows, series)``: one row per (point, scheme) and ``{label: [sum rate per point]}``.
    """
    from mimokd.plots import plot_sweep
    from mimokd.tables import markdown_table

    out_dir = Path(out_dir)
    shown = [*labels, WMMSE]
    series = {label: [p[label]["sum_rate"] for p in points] for label in shown}
    rows = [{"scheme": label, "x": v, **asdict(s), **p[label]} for s, v, p in zip(settings, values, points)
            for label in shown]
    plot_sweep(values, series, out_dir / "sum_rate.png", xlabel, "sum rate (bits/s/Hz)")
    plot_sweep(values, {label: [r / w for r, w in zip(series[label], series[WMMSE])] for label in labels},
               out_dir / "fraction_of_wmmse.png", xlabel, "fraction of WMMSE's sum rate")
    cols = [("scheme", "scheme")] + [(str(v), f"{xlabel.split(' (')[0]} = {v}") for v in values]

    def table(get):
        return markdown_table([{"scheme": label, **{str(v): get(p[label]) for v, p in zip(values, points)}}
                               for label in shown], cols)

    lines = [f"# {title}", "", f"Scale: {asdict(scale)}, seed {seed}. Mean sum rate (bits/s/Hz) on the true downlink "
             f"channels of {scale.test} fixed test samples per point; sigma^2 = 1. The front-end (Phi, c) of "
             "eq. (38) / (40) is drawn once per (seed, Nt) and c ~ CN(0, 1) scales every downlink channel, so "
             "absolute rates at different Nt are not comparable; the fractions of WMMSE are.", ""]
    extra = {}
    if headline_at is not None:
        extra["headline"] = h = headline(series, list(values), headline_at)
        lines += [f"**Headline at {xlabel} = {headline_at}**: the model-driven network (eq. 7) reaches "
                  f"**{h['fraction_of_wmmse']:.3f}** of WMMSE's sum rate, **{100 * h['gain_over_baseline']:+.1f}%** "
                  "against learned channel + ZF (the paper: close to WMMSE, about 10% above learned channel + ZF).", ""]
    lines += ["## Sum rate (bits/s/Hz)", "", table(lambda r: r["sum_rate"]),
             "## Fraction of WMMSE", "", table(lambda r: r["fraction"])]
    if nmse_plot:
        with_csi = [label for label in labels if SCHEMES[label][0] == "hybrid"]
        nmse = {label: [10 * np.log10(p[label]["channel_nmse"]) for p in points] for label in with_csi}
        plot_sweep(values, nmse, out_dir / "channel_nmse.png", xlabel, "downlink channel NMSE (dB)")
        lines += ["## Downlink channel NMSE of each CSI-Net's output (dB, eq. 39)", "",
                  markdown_table([{"scheme": label, **{str(v): y for v, y in zip(values, nmse[label])}}
                                  for label in with_csi], cols)]
    lines += ["## Training time (s)", "", table(lambda r: r.get("train_s"))]
    _write(out_dir, {"scale": asdict(scale), "seed": seed, "rows": rows, **extra}, lines)
    return rows


def headline(series, values, at, model=HYBRID, baseline=LEARNED_ZF):
    """``{x, fraction_of_wmmse, gain_over_baseline}`` of ``model`` at the sweep value ``at``."""
    i = values.index(at)
    return {"x": at, "fraction_of_wmmse": series[model][i] / series[WMMSE][i],
            "gain_over_baseline": series[model][i] / series[baseline][i] - 1.0}


def fig2(out_dir, scale, users=(2, 4, 6, 8, 10), snr_db=20.0, seed=0, share=None):
    """Paper Fig. 2: hybrid vs supervised-only vs unsupervised-only, ``h_D = h_U^2``, ``K = Nt`` (module docstring)."""
    settings = [Setting("squared", k, k, snr_db) for k in users]
    labels = [HYBRID, SUPERVISED, UNSUPERVISED]
    points = _points(out_dir, [(out_dir, settings)], labels, scale, seed, share)
    if points is None:
        return None
    return sweep(out_dir, settings, list(users), labels, points[0], scale, seed, xlabel="K = Nt",
                 title=f"Zhang et al. Fig. 2: h_D = h_U^2 (element-wise), K = Nt, P = {snr_db:g} dB")


def fig4(out_dir, scale, users=(2, 4, 6, 8), snr_db=20.0, seed=0, share=None):
    """Paper Fig. 4: TDD mismatch (eq. 38), ``K = Nt``, sum rate (a) and channel NMSE (b)."""
    settings = [Setting("tdd", k, k, snr_db) for k in users]
    labels = [HYBRID, ZF_LOSS, LEARNED_BF, LEARNED_ZF]
    points = _points(out_dir, [(out_dir, settings)], labels, scale, seed, share)
    if points is None:
        return None
    return sweep(out_dir, settings, list(users), labels, points[0], scale, seed, xlabel="K = Nt", nmse_plot=True,
                 headline_at=4 if 4 in users else users[-1],
                 title=f"Zhang et al. Fig. 4: TDD front-end mismatch (eq. 38), K = Nt, P = {snr_db:g} dB")


def fig5(out_dir, scale, users=(2, 4, 6, 8, 10), pilots=(2, 4, 6, 8, 10), antennas=64, snr_db=10.0,
         pilot_users=6, max_delay=None, seed=0, share=None):
    """Paper Fig. 5: FDD multipath (eq. 40), ``Nt = antennas``; (a) vs ``K`` (``L = K``) in ``<out>/a``,
    (b) vs ``L`` at ``K = pilot_users`` in ``<out>/b``."""
    labels = [HYBRID, ZF_LOSS, LEARNED_BF, LEARNED_ZF]
    out_dir = Path(out_dir)
    settings_a = [Setting("fdd", antennas, k, snr_db, max_delay=max_delay) for k in users]
    settings_b = [Setting("fdd", antennas, pilot_users, snr_db, pilots=L, max_delay=max_delay) for L in pilots]
    points = _points(out_dir, [(out_dir / "a", settings_a), (out_dir / "b", settings_b)], labels, scale, seed, share)
    if points is None:
        return None
    rows_a = sweep(out_dir / "a", settings_a, list(users), labels, points[0], scale, seed, xlabel="K", nmse_plot=True,
                   headline_at=pilot_users if pilot_users in users else users[-1],
                   title=f"Zhang et al. Fig. 5(a): FDD multipath (eq. 40), Nt = {antennas}, P = {snr_db:g} dB, L = K")
    rows_b = sweep(out_dir / "b", settings_b, list(pilots), labels, points[1], scale, seed, xlabel="L (pilots)",
                   title=f"Zhang et al. Fig. 5(b): FDD multipath, Nt = {antennas}, K = {pilot_users}, "
                         f"P = {snr_db:g} dB, vs pilot length")
    return rows_a + rows_b


PAPER_TABLE1 = {  # K -> (T_0 in s, reduced %, ZF %), Table I (Nt = 64, their GP100 GPU)
    2: (1570, 67.24, 60.11), 4: (2314, 80.98, 73.69), 6: (3388, 102.86, 84.02), 8: (4716, 95.68, 87.78),
    10: (6683, 99.98, 93.13),
}


def table1(out_dir, scale, users=(2, 4, 6, 8, 10), antennas=64, snr_db=10.0, max_delay=None, seed=0, share=None):
    """Paper Table I: training time of the original / reduced-dimension / ZF-loss forms vs ``K``."""
    from mimokd.plots import plot_bars
    from mimokd.tables import markdown_table

    out_dir = Path(out_dir)
    labels = [HYBRID, REDUCED, ZF_LOSS]
    settings = [Setting("fdd", antennas, k, snr_db, max_delay=max_delay) for k in users]
    points = _points(out_dir, [(out_dir, settings)], labels, scale, seed, share)
    if points is None:
        return None
    rows = []
    for setting, point in zip(settings, points[0]):
        t0 = point[HYBRID]["train_s"]
        row = {"K": setting.K, "T0_s": t0}
        for label, key in ((REDUCED, "reduced_pct"), (ZF_LOSS, "zf_pct")):
            row[key] = 100 * point[label]["train_s"] / t0
        for label, key in ((HYBRID, "rate_eq7"), (REDUCED, "rate_reduced"), (ZF_LOSS, "rate_zf")):
            row[key] = point[label]["fraction"]
        epochs = point[HYBRID]["epoch_s"]
        row["T0_epoch_s"] = float(np.median(epochs[1:] if len(epochs) > 1 else epochs))
        paper = PAPER_TABLE1.get(setting.K)
        row.update(dict(zip(("paper_T0_s", "paper_reduced_pct", "paper_zf_pct"), paper or (None,) * 3)))
        rows.append(row)
    plot_bars([f"K={r['K']}" for r in rows], {"reduced dimension (ours)": [r["reduced_pct"] for r in rows],
                                              "ZF loss (ours)": [r["zf_pct"] for r in rows],
                                              "reduced dimension (paper)": [r["paper_reduced_pct"] for r in rows],
                                              "ZF loss (paper)": [r["paper_zf_pct"] for r in rows]},
              out_dir / "train_time.png", "training time, % of the original formulation")
    lines = [f"# Zhang et al. Table I: training time, FDD (eq. 40), Nt = {antennas}, P = {snr_db:g} dB", "",
             f"Scale: {asdict(scale)}, seed {seed}. Wall time of `fit` on this machine (whole run, {scale.epochs} "
             "epochs); the reduced-dimension and ZF forms as % of the original T_0. Paper: 10^5 samples, 200 epochs "
             "on a GP100 GPU. The last three columns: fraction of WMMSE's sum rate reached by each form.", "",
             markdown_table(rows, [("K", "K"), ("T0_s", "T_0 (s)"), ("T0_epoch_s", "T_0 per epoch (s)"),
                                   ("reduced_pct", "reduced (%)"), ("zf_pct", "ZF loss (%)"),
                                   ("paper_T0_s", "paper T_0 (s)"), ("paper_reduced_pct", "paper reduced (%)"),
                                   ("paper_zf_pct", "paper ZF (%)"), ("rate_eq7", "eq. 7 / WMMSE"),
                                   ("rate_reduced", "reduced / WMMSE"), ("rate_zf", "ZF loss / WMMSE")])]
    _write(out_dir, {"scale": asdict(scale), "seed": seed, "rows": rows}, lines)
    return rows


ZHANG_EXPERIMENTS = {
    "zhang-fig2": (fig2, "Zhang et al. Fig. 2: hybrid vs supervised vs unsupervised loss, h_D = h_U^2, K = Nt, 20 dB"),
    "zhang-fig4": (fig4, "Zhang et al. Fig. 4: TDD mismatch, K = Nt, 20 dB: sum rate and channel NMSE"),
    "zhang-fig5": (fig5, "Zhang et al. Fig. 5: FDD massive MIMO, Nt = 64, 10 dB: vs K and vs pilots"),
    "zhang-table1": (table1, "Zhang et al. Table I: training time, original / reduced-dimension / ZF loss"),
}


def run_zhang(name, out_dir, scale, *, users=None, pilots=None, antennas=None, powers_db=None, max_delay=None,
              seed=0, share=None):
    """Run the Zhang et al. experiment ``name`` at ``scale``; ``None`` arguments keep the experiment's default.

    ``users``: the swept ``K`` (``K = Nt`` for fig2 / fig4); ``pilots``: fig5(b)'s ``L``; ``antennas``:
    a one-element list, ``Nt`` of fig5 / table1; ``powers_db``: one SNR in dB (each runs at one power);
    ``max_delay``: the FDD path-delay range in seconds (fig5 / table1); ``share``: a
    :class:`~mimokd.experiments.runner.Share` of the points (``--rows i/N`` or ``--merge``).
    """
    function, _ = ZHANG_EXPERIMENTS[name]
    kwargs = {"seed": seed, "share": share}
    if users:
        kwargs["users"] = tuple(users)
    if pilots and name == "zhang-fig5":
        kwargs["pilots"] = tuple(pilots)
    if antennas and name in ("zhang-fig5", "zhang-table1"):
        if len(antennas) != 1:
            raise ValueError(f"{name} runs at one Nt; give one --antennas value. Received: {antennas}")
        kwargs["antennas"] = int(antennas[0])
    if max_delay is not None:
        if name not in ("zhang-fig5", "zhang-table1"):
            raise ValueError(f"--max-delay applies to the FDD experiments (zhang-fig5, zhang-table1), not {name}.")
        kwargs["max_delay"] = float(max_delay)
    if powers_db:
        if len(powers_db) != 1:
            raise ValueError(f"{name} runs at one power; give one --powers value. Received: {powers_db}")
        kwargs["snr_db"] = float(powers_db[0])
    return function(out_dir, scale, **kwargs)
