"""Zhang et al.'s multicell experiments (Sec. VII-C, VII-D): ``mimokd experiment zhang-fig6 | -fig7 | -fig8``.

A network of ``N_c`` hexagonal cells (radius 200 m, one user per cell at least 10 m from its BS),
the FDD multipath channels of eq. (40) with the path losses of eq. (42), 20 MHz, -174 dBm/Hz, a
per-BS power in dBm (10 dBm in the paper) and uplink DFT pilots (eq. 33-34)
(:func:`~mimokd.channels.multicell.make_multicell_dataset`). One network is trained on every BS's
view and applied at every BS without exchange (Sec. VI-C, :class:`~mimokd.train.multicell.MulticellBeamformer`).
Schemes (all scored by the actual SINR rates of eq. 26, every BS transmitting at once):

- **model-driven, SLNR loss**: CSI-Net + the SLNR recovery of eq. (35), loss eq. (36) with the
  paper's ``alpha_H = 1`` and rate weight 1 (its "alpha_R = -1");
- **model-driven, ZF loss**: the same with the multicell ZF recovery (zero-forcing every user a BS sees);
- **learned channel + SLNR**: the CSI-Net trained with ``L_H`` alone, then the SLNR alternating
  optimization (eq. 31-32) on its output at every BS;
- **SLNR (perfect downlink CSI)** and **WMMSE (perfect downlink CSI)**: the distributed SLNR and the
  coordinated multicell WMMSE (:func:`~mimokd.classical.multicell_wmmse.multicell_wmmse`, per-BS
  budgets) on the true channels, the upper reference.

The paper's "learned channel + BF" benchmark is not run here (the single-cell experiments have it).

- **zhang-fig6** (Fig. 6): (a) sum rate vs ``Nt`` at 10 dBm, ``L = N_c`` pilots; (b) vs the pilot
  length ``L`` at ``Nt = 64`` (``L < 7`` contaminates, eq. 34).
- **zhang-fig7** (Fig. 7): the model trained at ``Nt = 32``, 10 dBm, 7 cells, tested (a) at other
  powers (the uplink pilots stay at 10 dBm; only the BS power changes, and the recovery is rebuilt
  at the test power), (b) in networks of more cells: each BS's view holds its own user and the users of
  its 6 nearest other cells (the network's input size), the users of farther cells go unseen by it
  but their interference counts in the rates. Networks smaller than 7 cells are not tested (their
  views would need padding users).
- **zhang-fig8** (Fig. 8): the same model tested with Doppler, maximum 10-150 Hz, the downlink used
  1 ms after the uplink was measured (Jakes' correlation, not compensated).

Each trained model is a resumable run directory ``<out>/<point>/<scheme>/`` (``log.csv``,
``final.keras``, ``best.keras``, and ``result.json`` with its stamp once tested) and is reused; the
references are in ``<out>/<point>/reference.json``. Writes ``results.json``, ``results.md`` and PNGs.
zhang-fig6 splits across machines (``--rows i/N``, then ``--merge``) by its points (a's, then b's), each
its own folder of runs and references (:func:`~mimokd.experiments.zhang.grid_points`); zhang-fig7 / fig8
do not: they train one point, whose networks are all tested together at every other setting.
Scale: :class:`~mimokd.experiments.zhang.ZhangScale` (``train`` / ``test`` in network snapshots; each
gives ``N_c`` training views); ``width`` multiplies the paper's CSI-Net width ``2 Nt N_c^2`` (small:
a quarter).
"""

import json
import logging
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from mimokd.experiments.runner import GridRun
from mimokd.experiments.zhang import ZhangScale, fit_in_run_dir, grid_points, run_tag

logger = logging.getLogger(__name__)

SLNR_LOSS = "model-driven, SLNR loss (eq. 35-36)"
ZF_LOSS = "model-driven, ZF loss"
LEARNED_SLNR = "learned channel + SLNR"
SLNR_PERFECT = "SLNR (perfect downlink CSI)"
WMMSE = "WMMSE (perfect downlink CSI)"
SCHEMES = {  # label -> (recovery, alpha_h, alpha_r)
    SLNR_LOSS: ("slnr", 1.0, 1.0),
    ZF_LOSS: ("zf", 1.0, 1.0),
    LEARNED_SLNR: ("slnr", 1.0, 0.0),
}
REFERENCES = (SLNR_PERFECT, WMMSE)
VIEW_SIZE = 7  # the users a BS's network sees in the paper's 7-cell network

SMALL = ZhangScale(train=2000, test=300, epochs=10, batch_size=128, width=0.25)
PAPER = ZhangScale(train=100_000, test=1000, epochs=200, batch_size=100)


@dataclass(frozen=True)
class CellSetting:
    """One multicell point: ``Nt``, ``num_cells``, ``power_dbm`` (per BS), ``pilots`` (``L``; ``None``:
    one per user), ``doppler_hz``, ``max_delay`` (s; ``None``: the generator's ``1e-4``)."""

    Nt: int
    num_cells: int = 7
    power_dbm: float = 10.0
    pilots: int = None
    doppler_hz: float = 0.0
    max_delay: float = None

    @property
    def tag(self):
        delay = "" if self.max_delay is None else f"_tau{self.max_delay:g}"
        return (f"Nt{self.Nt}_cells{self.num_cells}_P{self.power_dbm:g}dBm_L{self.pilots or self.num_cells}"
                f"_fd{self.doppler_hz:g}{delay}")


def _stamp(setting, scale, seed):
    return {"setting": asdict(setting), "scale": asdict(scale), "seed": seed}


def _stored(path, stamp):
    if Path(path).exists():
        stored = json.loads(Path(path).read_text())
        if stored.get("stamp") == stamp:
            return stored["result"]
    return None


def dataset(setting, n, seed, part, channel_scale=None, pilot_power_dbm=None):
    """A :func:`make_multicell_dataset` of ``n`` snapshots for ``setting`` (``part`` 1 = training, 2 = test).

    The front-end ``(Phi, c)`` is drawn from ``(seed, Nt)``, shared by every set with that ``Nt``; the
    drops, paths and noise from ``(seed, Nt, num_cells, L, part)``, so sets that differ only in power or
    Doppler hold the same networks.
    """
    from mimokd.channels.multicell import make_multicell_dataset
    from mimokd.channels.uplink_downlink import make_front_end

    front_end = make_front_end(setting.Nt, np.random.default_rng([seed, setting.Nt]))
    # the power and the Doppler are not in the seed: a sweep over them keeps the drops, paths and noise
    key = [seed, setting.Nt, setting.num_cells, setting.pilots or setting.num_cells, part]
    extra = {} if setting.max_delay is None else {"max_delay": setting.max_delay}
    return make_multicell_dataset(n, setting.Nt, np.random.default_rng(key), power_dbm=setting.power_dbm,
                                  pilot_length=setting.pilots, pilot_power_dbm=pilot_power_dbm,
                                  channel_scale=channel_scale, num_cells=setting.num_cells, front_end=front_end,
                                  doppler_hz=setting.doppler_hz, **extra)


def neighbour_views(data, channel_scale, key="ls", view_size=VIEW_SIZE):
    """Each BS's view for a network trained on ``view_size`` users: its own user, then the users of its
    ``view_size - 1`` nearest other cells (BS-to-BS distance, ties by index), in increasing index.

    With ``num_cells == view_size`` this is exactly the training views (:func:`bs_view_order`).
    One user per cell. Returns float32 ``[n * num_cells, view_size, Nt, 2]`` of ``data[key] / s``.
    """
    from mimokd.zoo.beamforming import to_real

    h = data[key]
    n, nc, kt, Nt = h.shape
    if nc < view_size or kt != nc:
        raise ValueError(f"neighbour views need one user per cell and >= {view_size} cells. "
                         f"Received: {nc} cells, {kt} users")
    bs = data["bs_positions"]
    views = np.empty((n, nc, view_size, Nt), h.dtype)
    for i in range(nc):
        distance = np.hypot(*(bs - bs[i]).T)
        others = sorted(sorted((j for j in range(nc) if j != i), key=lambda j: (distance[j], j))[:view_size - 1])
        views[:, i] = h[:, i, [i, *others]]
    return to_real(views.reshape(n * nc, view_size, Nt) / channel_scale)


def _with_power(model, power):
    """A copy of a :class:`MulticellBeamformer` with its recovery at ``power`` (same weights)."""
    from mimokd.train.multicell import MulticellBeamformer

    clone = MulticellBeamformer.from_config({**model.get_config(), "power": float(power)})
    clone.set_weights(model.get_weights())
    return clone


def scheme_rates(label, model, data, channel_scale):
    """Mean actual sum rate (eq. 26) of ``label``'s trained ``model`` on ``data`` (any power, cells, Doppler).

    Model-driven schemes: their beams, with the recovery rebuilt at ``data``'s power. Learned channel
    + SLNR: every BS runs the SLNR alternating optimization on its view of the learned channels
    (own user first, the others as leakage victims).
    """
    from mimokd.classical.slnr import multicell_user_rates, slnr_beamformer
    from mimokd.train.multicell import evaluate_multicell
    from mimokd.zoo.beamforming import to_complex

    s = channel_scale
    views = neighbour_views(data, s)
    n, nc = data["h_down"].shape[:2]
    power = data["power"] * s**2
    if label != LEARNED_SLNR:
        return evaluate_multicell(_with_power(model, power), views, data["h_down"], nc, s)["sum_rate"]
    h_hat = to_complex(np.asarray(model.csi_net.predict(views, batch_size=1024, verbose=0)))
    h_hat = h_hat.reshape(n, nc, VIEW_SIZE, -1)
    W = np.stack([slnr_beamformer(h_hat[:, i, :1], power, 1.0, leak=h_hat[:, i, 1:]) for i in range(nc)], axis=1)
    return float(np.mean(multicell_user_rates(data["h_down"] / s, W, 1.0).sum(-1)))


def channel_nmse(model, data, channel_scale):
    """Eq. (39) of ``model``'s CSI-Net on ``data``'s views (linear)."""
    views = neighbour_views(data, channel_scale)
    target = neighbour_views(data, channel_scale, key="h_down").astype(np.float64)
    h_hat = np.asarray(model.csi_net.predict(views, batch_size=1024, verbose=0), np.float64)
    return float(np.mean(np.sum((h_hat - target) ** 2, axis=(1, 2, 3)) / np.sum(target**2, axis=(1, 2, 3))))


def references(point_dir, setting, test, scale, seed):
    """``{SLNR_PERFECT, WMMSE}`` mean sum rates on ``test`` (cached in ``reference.json``)."""
    from mimokd.classical.multicell_wmmse import multicell_wmmse
    from mimokd.classical.slnr import multicell_user_rates
    from mimokd.fileio import write_json

    path = Path(point_dir) / "reference.json"
    stamp = _stamp(setting, scale, seed)
    stored = _stored(path, stamp)
    if stored is not None:
        return stored
    W, _ = multicell_wmmse(test["h_down"], test["power"], 1.0, 1)
    result = {SLNR_PERFECT: float(np.mean(test["slnr_rate"])),
              WMMSE: float(np.mean(multicell_user_rates(test["h_down"], W, 1.0).sum(-1)))}
    write_json(path, {"stamp": stamp, "result": result})
    return result


def train_scheme(run_dir, label, setting, scale, seed, data):
    """Train ``label`` at ``setting`` (or load a finished run); returns ``(result, model)``.

    ``data``: a zero-argument callable -> ``(train, test)``. ``result``: ``sum_rate`` (test), ``channel_nmse``,
    ``channel_scale`` (the training set's ``s``, for later tests) and the entries of
    :func:`~mimokd.experiments.zhang.fit_in_run_dir`. The model is the run directory's ``final.keras``.
    """
    import keras

    from mimokd.fileio import write_json
    from mimokd.train.multicell import MulticellBeamformer

    run_dir = Path(run_dir)
    stamp = _stamp(setting, scale, seed)
    stored = _stored(run_dir / "result.json", stamp)
    if stored is not None:
        return stored, keras.models.load_model(run_dir / "final.keras")
    train, test = data()
    recovery, alpha_h, alpha_r = SCHEMES[label]
    nc = setting.num_cells
    keras.utils.set_random_seed(seed)
    width = max(1, round(scale.width * 2 * setting.Nt * nc**2))  # Sec. VII-C: 2 Nt N_c^2
    model = MulticellBeamformer(setting.Nt, nc, 1, train["power_scaled"], 1.0, alpha_h=alpha_h, alpha_r=alpha_r,
                                recovery=recovery, csi_hidden=(width,) * 3)
    model.compile(optimizer=keras.optimizers.Adam(scale.learning_rate))
    fitted = fit_in_run_dir(model, train["uplink"], train["downlink"], run_dir, scale, seed, stamp)
    s = train["channel_scale"]
    result = {"sum_rate": scheme_rates(label, model, test, s), "channel_nmse": channel_nmse(model, test, s),
              "channel_scale": s, **fitted, "epochs": scale.epochs}
    write_json(run_dir / "result.json", {"stamp": stamp, "result": result})
    return result, model


def run_point(out_dir, setting, labels, scale, seed):
    """Train every scheme at ``setting`` and compute the references; returns ``({label: rate}, models, results)``."""
    point_dir = Path(out_dir) / setting.tag
    cache = {}

    def data():
        if "sets" not in cache:
            logger.info("  data %s (%d + %d snapshots)", setting.tag, scale.train, scale.test)
            train = dataset(setting, scale.train, seed, 1)
            cache["sets"] = train, dataset(setting, scale.test, seed, 2, channel_scale=train["channel_scale"])
        return cache["sets"]

    results, models = {}, {}
    for label in labels:
        logger.info("  %s: %s", setting.tag, label)
        results[label], models[label] = train_scheme(point_dir / run_tag(label), label, setting, scale, seed, data)
    refs = _stored(point_dir / "reference.json", _stamp(setting, scale, seed))
    if refs is None:
        refs = references(point_dir, setting, data()[1], scale, seed)
    return _rates(results, refs), models, results


def _rates(results, refs):
    """``{label: sum rate}`` of the trained schemes' ``results``, then the references ``refs``."""
    return {label: result["sum_rate"] for label, result in results.items()} | refs


def stored_point(out_dir, setting, labels, scale, seed):
    """What :func:`run_point` returns, with ``None`` for the models, read from the point's finished runs and
    references (``None`` if one is not finished); trains and loads nothing."""
    point_dir = Path(out_dir) / setting.tag
    stamp = _stamp(setting, scale, seed)
    results = {label: _stored(point_dir / run_tag(label) / "result.json", stamp) for label in labels}
    refs = _stored(point_dir / "reference.json", stamp)
    if refs is None or None in results.values():
        return None
    return _rates(results, refs), None, results


def point_run(out_dir, setting, scale, seed):
    """The :class:`~mimokd.experiments.runner.GridRun` of :func:`run_point` at ``setting`` (schemes, references)."""
    labels = _labels_for(setting.Nt, setting.num_cells)
    return GridRun(f"{', '.join(map(repr, labels))} and the references at {setting.tag}", Path(out_dir) / setting.tag,
                   partial(run_point, out_dir, setting, labels, scale, seed),
                   partial(stored_point, out_dir, setting, labels, scale, seed))


def _labels_for(Nt, num_cells):
    """The trained schemes; the ZF loss needs ``Nt >= `` the users a BS sees."""
    return [label for label in SCHEMES if label != ZF_LOSS or Nt >= min(num_cells, VIEW_SIZE)]


def _report(out_dir, title, xlabel, values, series, scale, seed, notes=(), rows_extra=None):
    from mimokd.fileio import write_json, write_text
    from mimokd.plots import plot_sweep
    from mimokd.tables import markdown_table

    out_dir = Path(out_dir)
    plot_sweep(values, series, out_dir / "sum_rate.png", xlabel, "sum rate of all users (bits/s/Hz)")
    plot_sweep(values, {k: [None if r is None else r / w for r, w in zip(series[k], series[WMMSE])]
                                for k in series if k != WMMSE},
               out_dir / "fraction_of_wmmse.png", xlabel, "fraction of WMMSE's sum rate")
    cols = [("scheme", "scheme")] + [(str(v), f"{xlabel} = {v}") for v in values]

    def table(fn):
        return markdown_table([{"scheme": k, **{str(v): fn(k, i) for i, v in enumerate(values)}} for k in series], cols)

    wmmse = series[WMMSE]
    lines = [f"# {title}", "", f"Scale: {asdict(scale)} (train / test in network snapshots), seed {seed}. Mean over "
             "the test snapshots of the sum over all users of log2(1 + SINR), eq. (26).", "", *notes,
             "## Sum rate (bits/s/Hz)", "", table(lambda k, i: series[k][i]),
             "## Fraction of WMMSE", "", table(lambda k, i: None if series[k][i] is None else series[k][i] / wmmse[i])]
    rows = [{"scheme": k, "x": v, "sum_rate": series[k][i], "fraction": None if series[k][i] is None else
             series[k][i] / wmmse[i]} for k in series for i, v in enumerate(values)]
    write_json(out_dir / "results.json", {"scale": asdict(scale), "seed": seed, "rows": rows, **(rows_extra or {})})
    write_text(out_dir / "results.md", "\n".join(lines))
    return rows


def _sweep(out_dir, points, values, xlabel, title, scale, seed):
    """Write the sweep of ``points`` (what :func:`run_point` returned at each value); returns its rows."""
    names = [*SCHEMES, *REFERENCES]
    series = {name: [] for name in names}
    nmse = {label: [] for label in SCHEMES}
    for rates, _, results in points:
        for name in names:
            series[name].append(rates.get(name))
        for label in SCHEMES:
            nmse[label].append(results[label]["channel_nmse"] if label in results else None)
    notes = ["Downlink channel NMSE of each CSI-Net (dB): " + "; ".join(
        f"{label}: " + ", ".join("-" if x is None else f"{10 * np.log10(x):.2f}" for x in nmse[label])
        for label in SCHEMES), ""]
    return _report(out_dir, title, xlabel, values, series, scale, seed, notes, {"channel_nmse": nmse})


def fig6(out_dir, scale, antennas=(16, 32, 64), pilots=(3, 5, 7, 9), pilot_antennas=64, power_dbm=10.0,
         max_delay=None, seed=0, share=None):
    """Paper Fig. 6: (a) vs ``Nt`` in ``<out>/a``, (b) vs ``L`` at ``Nt = pilot_antennas`` in ``<out>/b``.

    Returns the rows, or ``None`` after a ``share`` of rows (:class:`~mimokd.experiments.runner.Share`).
    """
    out_dir = Path(out_dir)
    sweeps = [(out_dir / "a", [CellSetting(nt, power_dbm=power_dbm, max_delay=max_delay) for nt in antennas]),
              (out_dir / "b", [CellSetting(pilot_antennas, power_dbm=power_dbm, pilots=L, max_delay=max_delay)
                               for L in pilots])]
    points = grid_points(out_dir, sweeps, lambda d, setting: point_run(d, setting, scale, seed), share)
    if points is None:
        return None
    rows = _sweep(out_dir / "a", points[0], list(antennas), "Nt",
                  f"Zhang et al. Fig. 6(a): 7 cells, sum rate vs Nt, {power_dbm:g} dBm per BS", scale, seed)
    rows += _sweep(out_dir / "b", points[1], list(pilots), "L (pilots)",
                   f"Zhang et al. Fig. 6(b): 7 cells, Nt = {pilot_antennas}, sum rate vs pilot length", scale, seed)
    return rows


def _generalization(out_dir, name, values, xlabel, test_setting, base, scale, seed, pilot_power_dbm=None):
    """Train at ``base`` (reused), then test every scheme at ``test_setting(value)`` for each value."""
    out_dir = Path(out_dir)
    _, models, results = run_point(out_dir / "trained", base, _labels_for(base.Nt, base.num_cells), scale, seed)
    series = {label: [] for label in [*models, *REFERENCES]}
    for value in values:
        setting = test_setting(value)
        logger.info("  %s: testing at %s", name, setting.tag)
        s = next(iter(results.values()))["channel_scale"]
        test = dataset(setting, scale.test, seed, 2, channel_scale=s, pilot_power_dbm=pilot_power_dbm)
        for label, model in models.items():
            series[label].append(scheme_rates(label, model, test, s))
        refs = references(out_dir / setting.tag, setting, test, scale, seed)
        for ref in REFERENCES:
            series[ref].append(refs[ref])
    return series


def fig7(out_dir, scale, antennas=32, powers_dbm=(0, 5, 10, 15, 20), cells=(7, 10, 13, 16, 19), power_dbm=10.0,
         max_delay=None, seed=0):
    """Paper Fig. 7: the model trained at ``Nt = antennas``, ``power_dbm``, 7 cells, tested (a) at
    ``powers_dbm`` in ``<out>/a`` and (b) in networks of ``cells`` cells in ``<out>/b``."""
    out_dir = Path(out_dir)
    base = CellSetting(antennas, power_dbm=power_dbm, max_delay=max_delay)
    series = _generalization(out_dir, "fig7(a)", list(powers_dbm), "P (dBm)",
                             lambda p: replace(base, power_dbm=float(p)), base, scale, seed, pilot_power_dbm=power_dbm)
    rows = _report(out_dir / "a", f"Zhang et al. Fig. 7(a): trained at {power_dbm:g} dBm, tested at other powers "
                   f"(Nt = {antennas}, 7 cells; pilots stay at {power_dbm:g} dBm)", "P (dBm)", list(powers_dbm), series,
                   scale, seed)
    series = _generalization(out_dir, "fig7(b)", list(cells), "cells", lambda c: replace(base, num_cells=int(c)),
                             base, scale, seed)
    rows += _report(out_dir / "b", f"Zhang et al. Fig. 7(b): trained on 7 cells, tested on larger networks "
                    f"(Nt = {antennas}, {power_dbm:g} dBm)", "cells", list(cells), series, scale, seed,
                    ["Each BS's network sees its own user and those of its 6 nearest other cells.", ""])
    return rows


def fig8(out_dir, scale, antennas=32, doppler_hz=(0, 10, 50, 100, 150), power_dbm=10.0, max_delay=None, seed=0):
    """Paper Fig. 8: the fig7 model tested with maximum Doppler ``doppler_hz`` (not compensated)."""
    base = CellSetting(antennas, power_dbm=power_dbm, max_delay=max_delay)
    series = _generalization(out_dir, "fig8", list(doppler_hz), "f_D (Hz)",
                             lambda f: replace(base, doppler_hz=float(f)), base, scale, seed)
    return _report(out_dir, f"Zhang et al. Fig. 8: trained without Doppler, tested with maximum Doppler f_D "
                   f"(downlink 1 ms after the uplink; Nt = {antennas}, 7 cells, {power_dbm:g} dBm)", "f_D (Hz)",
                   list(doppler_hz), series, scale, seed)


SPLIT = ("zhang-fig6",)  # the experiments whose points --rows splits
SPLIT_REFUSAL = ("it trains one point (its three networks on one data set) and tests all of them together at every "
                 "other setting; run it on one machine")

MULTICELL_EXPERIMENTS = {
    "zhang-fig6": (fig6, "Zhang et al. Fig. 6: 7-cell massive MIMO, sum rate vs Nt and vs pilots, 10 dBm"),
    "zhang-fig7": (fig7, "Zhang et al. Fig. 7: generalization to other powers and larger networks"),
    "zhang-fig8": (fig8, "Zhang et al. Fig. 8: generalization to Doppler 10-150 Hz"),
}


def run_multicell(name, out_dir, scale, *, antennas=None, pilots=None, powers_db=None, max_delay=None, seed=0,
                  share=None):
    """Run ``name`` of :data:`MULTICELL_EXPERIMENTS`. ``antennas``: fig6's swept ``Nt`` (fig7 / fig8: one
    value, the trained ``Nt``); ``pilots``: fig6(b)'s ``L``; ``powers_db``: fig7(a)'s test powers in dBm
    (fig6 / fig8: one value, the power); ``max_delay``: the FDD delay range (s); ``share``: fig6's
    points split across machines (:class:`~mimokd.experiments.runner.Share`, ``--rows i/N`` or ``--merge``).

    Raises:
        ValueError: a ``share`` of zhang-fig7 / fig8 (see the module docstring), or bad arguments.
    """
    function, _ = MULTICELL_EXPERIMENTS[name]
    kwargs = {"seed": seed, "max_delay": max_delay}
    if share is not None:
        if name not in SPLIT:
            raise ValueError(f"{name} is not split (--rows / --merge): {SPLIT_REFUSAL}")
        kwargs["share"] = share
    if antennas:
        if name != "zhang-fig6" and len(antennas) != 1:
            raise ValueError(f"{name} trains one model; give one --antennas value. Received: {antennas}")
        kwargs["antennas"] = tuple(antennas) if name == "zhang-fig6" else int(antennas[0])
    if pilots and name == "zhang-fig6":
        kwargs["pilots"] = tuple(pilots)
    if powers_db:
        if name == "zhang-fig7":
            kwargs["powers_dbm"] = tuple(powers_db)
        elif len(powers_db) != 1:
            raise ValueError(f"{name} runs at one power; give one --powers value. Received: {powers_db}")
        else:
            kwargs["power_dbm"] = float(powers_db[0])
    return function(out_dir, scale, **kwargs)
