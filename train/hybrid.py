"""Hybrid supervised / unsupervised training of Zhang et al.'s model-driven beamformer (Sec. IV-C).

The network of Fig. 1: CSI-Net (uplink LS input -> downlink channel estimate ``h_hat``), Power-Net
(``h_hat`` -> softmax power fractions ``y_hat = [p_hat; q_hat]``) and the parameter-free
:class:`~mimokd.zoo.beamforming.BeamformingRecovery` (``(h_hat, p_hat, q_hat) -> W``, eq. 7). The
loss of eq. (10):

    ``Loss = alpha_H L_H + alpha_P L_P + alpha_R L_R``

- ``L_H = MSE(h_D, h_hat)`` over the real-stored entries (eq. 8: ``1 / (2 T Nt K) sum ||H_D - H_hat||^2``);
- ``L_P = MSE(power_targets(p, q, P), y_hat)`` over the ``2K`` entries (eq. 9 on the Power-Net's
  normalised scale ``[p; q] / (2P)``; ``p``, ``q`` the WMMSE labels on the TRUE downlink channels);
- ``L_R = -mean_batch R_sum(h, W)``: the sum rate of eq. (2) of the recovered ``W``, evaluated on
  the TRUE downlink channels ``h_D`` by default (``rate_channel="true"``: the quantity of interest,
  available in the training set) or on the learned ``h_hat`` as the paper writes it
  (``rate_channel="learned"``). The logged ``sum_rate`` is always on the true channels.

Variants (constructor ``alpha_h, alpha_p, alpha_r``): hybrid (all > 0), supervised-only
(``alpha_r = 0``), unsupervised-only (``alpha_h = alpha_p = 0``). In the unsupervised variant
nothing supervises the CSI-Net's output as a channel: it is trained ONLY through the rate gradient
that flows back through the recovery (and the Power-Net, whose input is ``h_hat``), so ``h_hat`` is
just an internal feature that makes ``W`` good on the true channels (``channel_mse`` is still logged
but is not minimised). A term whose weight is exactly 0 is left out of the loss (not multiplied by
0), so it contributes no gradient even when non-finite.

Logged metrics: ``loss`` (eq. 10), ``channel_mse`` (L_H), ``power_mse`` (L_P), ``sum_rate``
(``-L_R``, bits/s/Hz, on the true channels), whatever the weights.

Data (:func:`make_hybrid_dataset`): a dict of numpy arrays; ``fit`` takes ``x = data["uplink"]``
and ``y = {"downlink": data["downlink"], "powers": data["powers"]}`` (:func:`fit_arrays`).
"""

import keras
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from mimokd.channels.uplink_downlink import (
    fdd_multipath_channels,
    ls_input,
    make_front_end,
    received_uplink,
    squared_channels,
    tdd_mismatch_channels,
    uplink_pilots,
)
from mimokd.classical.miso import miso_sum_rate, wmmse
from mimokd.rng import as_generator
from mimokd.train.loss_terms import LossTermsModel
from mimokd.zoo.beamforming import (
    BeamformingRecovery,
    ReducedBeamformingRecovery,
    ZFRecovery,
    build_csi_net,
    build_power_net,
    miso_sum_rate_tf,
    power_targets,
    split_powers,
    to_real,
)

WMMSE_CHUNK = 4096  # samples per batched WMMSE call (bounds the memory of its intermediates)
CHANNEL_MODELS = ("tdd", "squared", "fdd")
RECOVERIES = {"wmmse": BeamformingRecovery, "reduced": ReducedBeamformingRecovery, "zf": ZFRecovery}


# ----------------------------------------------------------------------------- data


def make_hybrid_dataset(n, Nt, K, P, noise, rng, front_end=None, *, channel_model="tdd", pilot_length=None,
                        pilot_power=None, uplink_noise=None, wmmse_kwargs=None, channel_kwargs=None):
    """Training / test arrays: uplink LS input, true downlink channel and WMMSE labels.

    Channels (``channel_model``, all in :mod:`mimokd.channels.uplink_downlink`):

    - ``"tdd"``: :func:`tdd_mismatch_channels`, ``h_U`` i.i.d. CN(0, 1), ``h_D = c Phi h_U`` (eq. 38,
      Sec. VII-A, Fig. 4);
    - ``"squared"``: :func:`squared_channels`, ``h_D[i] = h_U[i]^2`` (Fig. 2; no front-end);
    - ``"fdd"``: :func:`fdd_multipath_channels`, the ULA multipath model of eq. (40) at 2.5 / 2.4 GHz
      (Sec. VII-B, Fig. 5, Table I); ``channel_kwargs`` go to it (e.g. ``paths``).

    Uplink: pilots ``X`` of :func:`uplink_pilots` (``L =
    pilot_length``, power ``pilot_power``), ``Y = H_U X + N`` with ``N ~ CN(0, uplink_noise)``, and the
    LS input ``Y X^H / (L P)`` of eq. (12). Labels: :func:`~mimokd.classical.miso.wmmse` on the true
    ``h_D`` (batched, in chunks of ``WMMSE_CHUNK``).

    Args:
        n, Nt, K: samples, BS antennas, users.
        P, noise: downlink power and noise ``sigma^2`` (linear).
        rng: a ``numpy.random.Generator`` or an int seed.
        front_end: ``(phi, c)`` of :func:`make_front_end` (``"tdd"``, ``"fdd"``); pass the SAME pair
            to the training and test sets. ``None``: drawn from ``rng`` (then two calls have different
            front-ends). Must be ``None`` for ``"squared"``.
        channel_model: ``"tdd"``, ``"squared"`` or ``"fdd"`` (above).
        pilot_length: ``L`` (default ``K``, orthogonal pilots).
        pilot_power: pilot power (default ``P``); uplink_noise: uplink noise (default ``noise``).
        wmmse_kwargs: extra keyword arguments of :func:`wmmse`.
        channel_kwargs: extra keyword arguments of the channel generator.

    Returns:
        dict of numpy arrays: ``"uplink"`` float32 ``[n, K, Nt, 2]`` (LS input), ``"downlink"``
        float32 ``[n, K, Nt, 2]`` (true ``h_D``), ``"p"``, ``"q"`` float64 ``[n, K]`` (WMMSE; ``sum p``
        can fall a few % short of ``P`` before WMMSE converges, so ``"powers"`` sums to ~1, not exactly),
        ``"powers"`` float32 ``[n, 2K]`` (:func:`power_targets`), ``"wmmse_rate"`` float64 ``[n]``
        (WMMSE's sum rate on ``h_D``), and ``"front_end"`` (the ``(phi, c)`` used, not an array;
        ``None`` for ``"squared"``).
    """
    if channel_model not in CHANNEL_MODELS:
        raise ValueError(f"`channel_model` must be one of {CHANNEL_MODELS}. Received: channel_model={channel_model!r}")
    g = as_generator(rng)
    if channel_model == "squared":
        if front_end is not None:
            raise ValueError("`front_end` does not apply to channel_model='squared'; pass None.")
        h_up, h_down = squared_channels(n, K, Nt, g, **(channel_kwargs or {}))
    else:
        front_end = make_front_end(Nt, g) if front_end is None else front_end
        phi, c = front_end
        generate = tdd_mismatch_channels if channel_model == "tdd" else fdd_multipath_channels
        h_up, h_down = generate(n, K, Nt, g, phi=phi, c=c, **(channel_kwargs or {}))
    pilots = uplink_pilots(K, pilot_length or K, P if pilot_power is None else pilot_power)
    y = received_uplink(h_up, pilots, noise if uplink_noise is None else uplink_noise, g)
    x = ls_input(y, pilots)
    hd = h_down.astype(np.complex128)
    p, q, rate = np.empty((n, K)), np.empty((n, K)), np.empty(n)
    for s in tqdm(range(0, n, WMMSE_CHUNK), desc="WMMSE labels", unit="chunk", disable=n <= WMMSE_CHUNK):
        W, p[s:s + WMMSE_CHUNK], q[s:s + WMMSE_CHUNK], _ = wmmse(hd[s:s + WMMSE_CHUNK], P, noise,
                                                                 **(wmmse_kwargs or {}))
        rate[s:s + WMMSE_CHUNK] = miso_sum_rate(hd[s:s + WMMSE_CHUNK], W, noise)
    return {
        "uplink": to_real(x),
        "downlink": to_real(h_down),
        "p": p,
        "q": q,
        "powers": power_targets(p, q, P),
        "wmmse_rate": rate,
        "front_end": front_end,
    }


def fit_arrays(data):
    """``(x, y)`` for ``HybridBeamformer.fit`` from a :func:`make_hybrid_dataset` dict."""
    return data["uplink"], {"downlink": data["downlink"], "powers": data["powers"]}


# ----------------------------------------------------------------------------- model


@keras.saving.register_keras_serializable(package="mimokd")
class HybridBeamformer(LossTermsModel):
    """CSI-Net -> Power-Net -> BeamformingRecovery, trained with the hybrid loss of eq. (10).

    ``call(uplink)`` returns ``W`` float32 ``[batch, Nt, K, 2]``; :meth:`forward` also returns
    ``h_hat`` and the Power-Net output. ``fit(x=uplink, y={"downlink": h_D, "powers":
    power_targets(p, q, P)})`` (:func:`fit_arrays`).

    Args:
        Nt, K: antennas, users. power, noise: ``P`` and ``sigma^2`` (linear).
        alpha_h, alpha_p, alpha_r: the loss weights of eq. (10) (>= 0, not all 0). ``alpha_p``
            defaults to 1, or to 0 for ``recovery="zf"`` (which has no powers).
        recovery: the beamforming recovery (Sec. V-B, Table I): ``"wmmse"`` the original eq. (7)
            (:class:`BeamformingRecovery`, an ``Nt x Nt`` solve), ``"reduced"`` its reduced-dimension
            form eq. (20)-(23) (a ``K x K`` solve after a ``K x K`` eigendecomposition; the same ``W``),
            or ``"zf"`` eq. (24) (:class:`ZFRecovery` of ``h_hat``: no Power-Net, no ``L_P``; the
            paper's "ZF loss" variant).
        csi_hidden, power_hidden: hidden widths (defaults of :func:`build_csi_net` /
            :func:`build_power_net`). per_user: the single-user CSI-Net (default).
        power_variant: ``"fc"`` or ``"cnn"``. linalg_dtype: the recovery's (``"float64"``).
    """

    TRACKED = ("loss", "channel_mse", "power_mse", "sum_rate")

    def __init__(self, Nt, K, power, noise, *, alpha_h=1.0, alpha_p=None, alpha_r=1.0, csi_hidden=None,
                 power_hidden=None, per_user=True, power_variant="fc", linalg_dtype="float64",
                 rate_channel="true", recovery="wmmse", name="hybrid_beamformer", **kwargs):
        super().__init__(name=name, **kwargs)
        if recovery not in RECOVERIES:
            raise ValueError(f"`recovery` must be one of {tuple(RECOVERIES)}. Received: recovery={recovery!r}")
        if alpha_p is None:
            alpha_p = 0.0 if recovery == "zf" else 1.0
        if recovery == "zf" and alpha_p != 0:
            raise ValueError(f"recovery='zf' has no powers to supervise: `alpha_p` must be 0. "
                             f"Received: alpha_p={alpha_p}")
        alphas = {"alpha_h": alpha_h, "alpha_p": alpha_p, "alpha_r": alpha_r}
        for key, value in alphas.items():
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"`{key}` must be finite and >= 0. Received: {key}={value}")
        if not any(v > 0 for v in alphas.values()):
            raise ValueError(f"At least one of alpha_h, alpha_p, alpha_r must be > 0. Received: {alphas}")
        if rate_channel not in ("true", "learned"):
            raise ValueError(f"`rate_channel` must be 'true' or 'learned'. Received: rate_channel={rate_channel!r}")
        self.rate_channel = rate_channel
        self.recovery_name = recovery
        self.Nt, self.K = int(Nt), int(K)
        self.power, self.noise = float(power), float(noise)
        self.alpha_h, self.alpha_p, self.alpha_r = float(alpha_h), float(alpha_p), float(alpha_r)
        self.csi_hidden = None if csi_hidden is None else tuple(csi_hidden)
        self.power_hidden = None if power_hidden is None else tuple(power_hidden)
        self.per_user = bool(per_user)
        self.power_variant = power_variant
        self.linalg_dtype = linalg_dtype
        self.csi_net = build_csi_net(self.Nt, self.K, hidden=self.csi_hidden, per_user=self.per_user)
        self.power_net = None if recovery == "zf" else build_power_net(self.Nt, self.K, hidden=self.power_hidden,
                                                                        variant=power_variant)
        self.recovery = RECOVERIES[recovery](self.power, self.noise, linalg_dtype=linalg_dtype, name="recovery")
        # the sub-networks are functional models, built at construction; marking the model built lets
        # `.keras` saving store the weights and a loaded model's optimizer be built before its state loads
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def forward(self, uplink, training=False):
        """``uplink [b, K, Nt, 2] -> (h_hat [b, K, Nt, 2], y_hat [b, 2K], W [b, Nt, K, 2])``;
        ``y_hat`` is ``None`` for ``recovery="zf"``."""
        h_hat = self.csi_net(uplink, training=training)
        if self.power_net is None:
            return h_hat, None, self.recovery(h_hat)
        y_hat = self.power_net(h_hat, training=training)
        p_hat, q_hat = split_powers(y_hat)
        return h_hat, y_hat, self.recovery([h_hat, p_hat, q_hat])

    def call(self, inputs, training=False):
        return self.forward(inputs, training=training)[2]

    def loss_terms(self, uplink, downlink, powers, training=False):
        """The terms of eq. (10) on a batch: dict ``loss``, ``channel_mse``, ``power_mse``, ``sum_rate``.

        ``loss`` is the weighted sum, with a zero-weight term left out (no gradient through it).
        ``power_mse`` is 0 for ``recovery="zf"`` (no Power-Net).
        """
        downlink = ops.cast(downlink, "float32")
        powers = ops.cast(powers, "float32")
        h_hat, y_hat, W = self.forward(uplink, training=training)
        channel_mse = ops.mean(ops.square(downlink - h_hat))
        power_mse = ops.zeros((), "float32") if y_hat is None else ops.mean(ops.square(powers - y_hat))
        sum_rate = ops.mean(miso_sum_rate_tf(downlink, W, self.noise))
        rate_term = sum_rate if self.rate_channel == "true" else ops.mean(miso_sum_rate_tf(h_hat, W, self.noise))
        loss = ops.zeros((), "float32")
        if self.alpha_h > 0:
            loss = loss + self.alpha_h * channel_mse
        if self.alpha_p > 0:
            loss = loss + self.alpha_p * power_mse
        if self.alpha_r > 0:
            loss = loss - self.alpha_r * rate_term
        return {"loss": loss, "channel_mse": channel_mse, "power_mse": power_mse, "sum_rate": sum_rate}

    @staticmethod
    def _unpack(data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, y["downlink"], y["powers"]

    def get_config(self):
        return {
            "name": self.name,
            "Nt": self.Nt,
            "K": self.K,
            "power": self.power,
            "noise": self.noise,
            "alpha_h": self.alpha_h,
            "alpha_p": self.alpha_p,
            "alpha_r": self.alpha_r,
            "csi_hidden": None if self.csi_hidden is None else list(self.csi_hidden),
            "power_hidden": None if self.power_hidden is None else list(self.power_hidden),
            "per_user": self.per_user,
            "power_variant": self.power_variant,
            "linalg_dtype": self.linalg_dtype,
            "rate_channel": self.rate_channel,
            "recovery": self.recovery_name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# ----------------------------------------------------------------------------- evaluation


def evaluate(model, data, batch_size=1024):
    """Mean sum rate of ``model``'s ``W`` on the true downlink channels, and its fraction of WMMSE's.

    ``W = model.predict(data["uplink"])``; the rate is the numpy :func:`miso_sum_rate` on
    ``data["downlink"]`` (independent of the TF loss). Returns a dict: ``sum_rate`` (mean, bits/s/Hz),
    ``wmmse_sum_rate`` (mean of ``data["wmmse_rate"]``, same channels) and ``fraction`` (their ratio).
    """
    W = model.predict(data["uplink"], batch_size=batch_size, verbose=0).astype(np.float64)
    h = data["downlink"].astype(np.float64)
    rate = float(np.mean(miso_sum_rate(h[..., 0] + 1j * h[..., 1], W[..., 0] + 1j * W[..., 1], model.noise)))
    ref = float(np.mean(data["wmmse_rate"]))
    return {"sum_rate": rate, "wmmse_sum_rate": ref, "fraction": rate / ref}


__all__ = ["HybridBeamformer", "evaluate", "fit_arrays", "make_hybrid_dataset"]
