"""Zhang et al.'s small-scale TDD case as experiments: ``mimokd experiment zhang-fig2 | zhang-table1``.

- **zhang-fig2**: sum rate vs SNR ``P / sigma^2`` (dB; ``sigma^2 = 1``) for ``Nt = K = 4`` and the
  TDD front-end mismatch ``h_D = c Phi h_U`` of eq. (38) (Sec. VII-A): the model-driven network
  trained with the hybrid loss of eq. (10) (``alpha_H = alpha_P = 1, alpha_R = 0.001``, the paper's
  weights), supervised-only (``alpha_R = 0``) and unsupervised-only (``alpha_H = alpha_P = 0``,
  ``alpha_R = 1``), "learned channel + ZF" and "learned channel + SLNR" (the supervised-only
  model's CSI-Net output, i.e. the channel learned by supervision, fed to
  :func:`~mimokd.classical.miso.zf_beamformer` / :func:`~mimokd.classical.slnr.slnr_beamformer`), and
  WMMSE (``init="best"``) on the TRUE downlink channels as the upper reference. Every rate is the
  mean sum rate (eq. 2) on the true downlink channels of a fixed, seeded test set.
- **zhang-table1**: the training time per epoch (median over the epochs after the first, which
  includes tracing) and the time to ``epochs`` epochs of the three loss forms at 20 dB.

NOTE: in the paper, Fig. 2 is the sum rate of hybrid / supervised / unsupervised vs ``K = Nt`` at
20 dB (a squared-element uplink-downlink relation) and Fig. 4(a) the small-scale case vs ``K = Nt``;
Table I is the training time of the original / reduced-dimension / ZF formulations in the massive
MIMO case. These two experiments are the repository's SNR-sweep / loss-form variants of them, so
there are no paper numbers to compare with.

Each training run lives in its own folder ``<out>/<scheme>_P<dB>/`` with ``result.json``; a
finished run with the same scale and seed is reused. Writes ``results.json``, ``results.md`` and a
PNG (``sum_rate.png`` / ``train_time.png``) to the output folder.

Scale (:class:`ZhangScale`): ``small`` (5,000 training samples, 10 epochs, batch 128: minutes on 2
CPU cores) and ``paper`` (Sec. VII: 10^6 training samples for this scenario, 10^3 test samples,
batch 100, 200 epochs: a GPU job).
"""

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

PAPER_SNRS_DB = (0, 10, 20, 30)
NT = K = 4
NOISE = 1.0
TABLE1_SNR_DB = 20

# label -> (alpha_h, alpha_p, alpha_r)
LOSS_FORMS = {
    "model-driven (hybrid)": (1.0, 1.0, 0.001),
    "supervised only": (1.0, 1.0, 0.0),
    "unsupervised only": (0.0, 0.0, 1.0),
}
LEARNED_ZF = "learned channel + ZF"
LEARNED_SLNR = "learned channel + SLNR"
WMMSE = "WMMSE (perfect downlink CSI)"
SCHEMES = (*LOSS_FORMS, LEARNED_ZF, LEARNED_SLNR, WMMSE)


@dataclass(frozen=True)
class ZhangScale:
    """How big a Zhang et al. experiment runs.

    Attributes:
        train: training samples (per SNR). test: fixed test samples (per SNR).
        epochs: training epochs per model. batch_size: samples per step.
        learning_rate: Adam's.
    """

    train: int
    test: int
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3

    def with_overrides(self, **values):
        """A copy with the given non-``None`` fields replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


SMALL = ZhangScale(train=5000, test=1000, epochs=10, batch_size=128)
PAPER = ZhangScale(train=1_000_000, test=1000, epochs=200, batch_size=100)


def _tag(label):
    return label.replace(" ", "-").replace("(", "").replace(")", "")


def _stamp(scale, seed, snr_db):
    return {"scale": asdict(scale), "seed": seed, "snr_db": snr_db}


def datasets(snr_db, scale, seed):
    """``(train, test)`` dicts of :func:`~mimokd.train.hybrid.make_hybrid_dataset` at ``snr_db``.

    One front-end ``(Phi, c)`` drawn from ``seed`` is shared by both sets (and by every SNR); WMMSE
    labels and reference rates use ``init="best"``.
    """
    from mimokd.channels.uplink_downlink import make_front_end
    from mimokd.classical.sum_rate import db_to_linear
    from mimokd.train.hybrid import make_hybrid_dataset

    P = float(db_to_linear(snr_db))
    front_end = make_front_end(NT, np.random.default_rng(seed))
    kwargs = {"front_end": front_end, "wmmse_kwargs": {"init": "best"}}
    train = make_hybrid_dataset(scale.train, NT, K, P, NOISE, seed + 1 + int(10 * snr_db) * 7919, **kwargs)
    test = make_hybrid_dataset(scale.test, NT, K, P, NOISE, seed + 2 + int(10 * snr_db) * 7919 + 10**6, **kwargs)
    return train, test


def _epoch_timer():
    """A Keras callback recording the wall time of each epoch in ``.seconds``."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def _finished(run_dir, scale, seed, snr_db):
    """The stored result of a finished run at the same scale, seed and SNR, else ``None``."""
    done = Path(run_dir) / "result.json"
    if done.exists():
        stored = json.loads(done.read_text())
        if stored.get("stamp") == _stamp(scale, seed, snr_db):
            return stored["result"]
    return None


def learned_channel_rates(model, data, P):
    """Sum rates on the true channels of ZF and SLNR built on ``model``'s CSI-Net output.

    Returns:
        dict: ``zf_sum_rate``, ``slnr_sum_rate`` (means, bits/s/Hz) and ``channel_nmse`` (linear).
    """
    from mimokd.classical.miso import miso_sum_rate, zf_beamformer
    from mimokd.classical.slnr import slnr_beamformer
    from mimokd.zoo.beamforming import to_complex

    h_hat = to_complex(np.asarray(model.csi_net.predict(data["uplink"], batch_size=1024, verbose=0)))
    h = to_complex(data["downlink"])
    nmse = float(np.mean(np.sum(np.abs(h_hat - h) ** 2, axis=(1, 2)) / np.sum(np.abs(h) ** 2, axis=(1, 2))))
    return {
        "zf_sum_rate": float(np.mean(miso_sum_rate(h, zf_beamformer(h_hat, P), NOISE))),
        "slnr_sum_rate": float(np.mean(miso_sum_rate(h, slnr_beamformer(h_hat, P, NOISE), NOISE))),
        "channel_nmse": nmse,
    }


def train_loss_form(out_dir, label, snr_db, scale, seed, data=None):
    """Train the ``label`` loss form (:data:`LOSS_FORMS`) at ``snr_db`` (or reuse a finished run) and test it.

    Args:
        data: ``(train, test)`` of :func:`datasets` (built here when ``None`` and needed).

    Returns:
        dict: ``sum_rate``, ``wmmse_sum_rate``, ``fraction`` (of WMMSE), ``train_s`` (total),
        ``epoch_s`` (per epoch), ``final_loss``, ``channel_nmse``, ``zf_sum_rate``, ``slnr_sum_rate``
        (the last three of this model's CSI-Net output).
    """
    import keras

    from mimokd.classical.sum_rate import db_to_linear
    from mimokd.fileio import write_json
    from mimokd.train.hybrid import HybridBeamformer, evaluate, fit_arrays

    out_dir = Path(out_dir)
    stored = _finished(out_dir, scale, seed, snr_db)
    if stored is not None:
        return stored
    train, test = data if data is not None else datasets(snr_db, scale, seed)
    P = float(db_to_linear(snr_db))
    alpha_h, alpha_p, alpha_r = LOSS_FORMS[label]
    keras.utils.set_random_seed(seed)
    model = HybridBeamformer(NT, K, P, NOISE, alpha_h=alpha_h, alpha_p=alpha_p, alpha_r=alpha_r)
    model.compile(optimizer=keras.optimizers.Adam(scale.learning_rate))
    timer = _epoch_timer()
    x, y = fit_arrays(train)
    start = time.perf_counter()
    history = model.fit(x, y, epochs=scale.epochs, batch_size=scale.batch_size, callbacks=[timer], verbose=0)
    seconds = time.perf_counter() - start
    result = {
        **evaluate(model, test),
        **learned_channel_rates(model, test, P),
        "train_s": seconds,
        "epoch_s": timer.seconds,
        "final_loss": float(history.history["loss"][-1]),
        "epochs": scale.epochs,
    }
    write_json(out_dir / "result.json", {"stamp": _stamp(scale, seed, snr_db), "result": result})
    return result


def _write(out_dir, scale, seed, rows, lines, **extra):
    from mimokd.fileio import write_json, write_text

    write_json(Path(out_dir) / "results.json", {"scale": asdict(scale), "seed": seed, "rows": rows, **extra})
    write_text(Path(out_dir) / "results.md", "\n".join(lines))


def fig2(out_dir, scale, snrs_db=PAPER_SNRS_DB, seed=0):
    """Sum rate vs SNR of every scheme of :data:`SCHEMES` (module docstring); returns the rows.

    Rows: ``{"scheme", "snr_db", "sum_rate", "fraction"}`` (fraction of WMMSE's sum rate on the same
    test channels) plus the run's details for the trained schemes.
    """
    from mimokd.plots import plot_sweep
    from mimokd.tables import markdown_table

    out_dir = Path(out_dir)
    snrs_db = [float(s) for s in snrs_db]
    series = {label: [] for label in SCHEMES}
    rows = []
    for snr in snrs_db:
        dirs = {label: out_dir / f"{_tag(label)}_P{snr:g}" for label in LOSS_FORMS}
        data = None
        if any(_finished(d, scale, seed, snr) is None for d in dirs.values()):
            print(f"zhang-fig2 data at {snr:g} dB", flush=True)
            data = datasets(snr, scale, seed)
        results = {}
        for label in LOSS_FORMS:
            print(f"zhang-fig2 {label} at {snr:g} dB", flush=True)
            results[label] = train_loss_form(dirs[label], label, snr, scale, seed, data=data)
        wmmse_rate = results["supervised only"]["wmmse_sum_rate"]
        learned = results["supervised only"]
        rates = {label: results[label]["sum_rate"] for label in LOSS_FORMS}
        rates[LEARNED_ZF] = learned["zf_sum_rate"]
        rates[LEARNED_SLNR] = learned["slnr_sum_rate"]
        rates[WMMSE] = wmmse_rate
        for label in SCHEMES:
            series[label].append(rates[label])
            row = {"scheme": label, "snr_db": snr, "sum_rate": rates[label], "fraction": rates[label] / wmmse_rate}
            if label in LOSS_FORMS:
                row.update({k: v for k, v in results[label].items() if k not in ("sum_rate", "fraction")})
            rows.append(row)
    plot_sweep(snrs_db, series, out_dir / "sum_rate.png", "SNR P / sigma^2 (dB)", "sum rate (bits/s/Hz)")

    def rate_at(label, snr):
        return series[label][snrs_db.index(snr)]

    headline_snr = 20.0 if 20.0 in snrs_db else snrs_db[-1]
    hybrid = rate_at("model-driven (hybrid)", headline_snr)
    zf = rate_at(LEARNED_ZF, headline_snr)
    headline = {
        "snr_db": headline_snr,
        "fraction_of_wmmse": hybrid / rate_at(WMMSE, headline_snr),
        "gain_over_learned_zf": hybrid / zf - 1.0,
    }
    cols = [("scheme", "scheme")] + [(f"{s:g} dB", f"{s:g} dB") for s in snrs_db]
    rate_table = [{"scheme": label, **{f"{s:g} dB": v for s, v in zip(snrs_db, series[label])}}
                  for label in SCHEMES]
    frac_table = [{"scheme": label, **{f"{s:g} dB": v / w for s, v, w in zip(snrs_db, series[label], series[WMMSE])}}
                  for label in SCHEMES]
    nmse_table = [{"scheme": label, **{f"{s:g} dB": r["channel_nmse"] for s in snrs_db for r in rows
                                        if r["scheme"] == label and r["snr_db"] == s}} for label in LOSS_FORMS]
    lines = [
        f"# Zhang et al. Sec. VII-A: sum rate vs SNR, Nt = K = {NT}, TDD front-end mismatch (eq. 38)",
        "",
        f"Scale: {asdict(scale)}, seed {seed}. Mean sum rate (bits/s/Hz) on the true downlink channels of "
        f"{scale.test} fixed test samples; noise sigma^2 = 1, so SNR = P. Hybrid weights alpha_H = alpha_P = 1, "
        "alpha_R = 0.001; learned channel = the supervised-only model's CSI-Net output.",
        "",
        f"**Headline at {headline_snr:g} dB**: the model-driven (hybrid) network reaches "
        f"**{headline['fraction_of_wmmse']:.3f}** of WMMSE's sum rate, a gain of "
        f"**{100 * headline['gain_over_learned_zf']:+.1f}%** over learned channel + ZF.",
        "",
        "## Sum rate (bits/s/Hz)",
        "",
        markdown_table(rate_table, cols),
        "## Fraction of WMMSE",
        "",
        markdown_table(frac_table, cols),
        "## Downlink channel NMSE of each model's CSI-Net output (linear)",
        "",
        markdown_table(nmse_table, cols),
        "The unsupervised model's CSI-Net output is not trained to be a channel (train/hybrid.py).",
        "",
    ]
    _write(out_dir, scale, seed, rows, lines, headline=headline)
    return rows


def table1(out_dir, scale, snr_db=TABLE1_SNR_DB, seed=0):
    """Training time of the three loss forms at ``snr_db`` (module docstring); returns the rows."""
    from mimokd.plots import plot_bars
    from mimokd.tables import markdown_table

    out_dir = Path(out_dir)
    dirs = {label: out_dir / f"{_tag(label)}_P{snr_db:g}" for label in LOSS_FORMS}
    data = None
    if any(_finished(d, scale, seed, snr_db) is None for d in dirs.values()):
        data = datasets(snr_db, scale, seed)
    rows = []
    for label in LOSS_FORMS:
        print(f"zhang-table1 {label} at {snr_db:g} dB", flush=True)
        r = train_loss_form(dirs[label], label, snr_db, scale, seed, data=data)
        epochs = r["epoch_s"]
        rows.append({
            "scheme": label,
            "epoch_s": float(np.median(epochs[1:] if len(epochs) > 1 else epochs)),
            "first_epoch_s": epochs[0],
            "train_s": r["train_s"],
            "epochs": r["epochs"],
            "sum_rate": r["sum_rate"],
            "fraction": r["fraction"],
        })
    t0 = rows[0]["train_s"]
    for row in rows:
        row["relative_to_hybrid"] = row["train_s"] / t0
    plot_bars([r["scheme"] for r in rows], {"s per epoch": [r["epoch_s"] for r in rows],
                                            f"s to {scale.epochs} epochs": [r["train_s"] for r in rows]},
              out_dir / "train_time.png", "seconds")
    lines = [
        f"# Zhang et al.: training time of the three loss forms, Nt = K = {NT}, SNR {snr_db:g} dB",
        "",
        f"Scale: {asdict(scale)}, seed {seed}. Wall time on this machine; per epoch = median over the epochs "
        "after the first (the first includes tracing). Paper's Table I times other variants (original / "
        "reduced-dimension / ZF) in the massive MIMO case, so no paper numbers are comparable.",
        "",
        markdown_table(rows, [("scheme", "loss form"), ("epoch_s", "s / epoch"), ("first_epoch_s", "first epoch (s)"),
                              ("train_s", f"s to {scale.epochs} epochs"), ("relative_to_hybrid", "vs hybrid"),
                              ("sum_rate", "sum rate"), ("fraction", "fraction of WMMSE")]),
    ]
    _write(out_dir, scale, seed, rows, lines)
    return rows


ZHANG_EXPERIMENTS = {
    "zhang-fig2": (fig2, "Zhang et al. VII-A: sum rate vs SNR, Nt = K = 4: hybrid / supervised / "
                   "unsupervised / learned channel + ZF, SLNR / WMMSE"),
    "zhang-table1": (table1, "Zhang et al.: training time of the hybrid, supervised and unsupervised losses, 20 dB"),
}


def run_zhang(name, out_dir, scale, powers_db=None, seed=0):
    """Run the Zhang et al. experiment ``name`` at ``scale`` (``powers_db``: the SNRs of zhang-fig2)."""
    function, _ = ZHANG_EXPERIMENTS[name]
    if name == "zhang-table1":
        return function(out_dir, scale, seed=seed)
    return function(out_dir, scale, snrs_db=tuple(powers_db or PAPER_SNRS_DB), seed=seed)
