"""Distributed multicell training of Zhang et al.'s model-driven beamformer (Sec. VI-C, VII-C).

One network serves every BS (the homogeneous assumption of Sec. VI-C: "the trained neural network's
parameters are applicable to all cells in a distributed manner"). It works on a BS's **view** of a
network snapshot: the LS uplink input of eq. (34) at that BS, ``[batch, K_total, Nt, 2]``, with the
BS's own ``K_c = users_per_cell`` users FIRST (then every other user in increasing index,
:func:`~mimokd.channels.multicell.bs_view_order`), ``K_total = N_c K_c``. The model:

- **CSI-Net** (:func:`~mimokd.zoo.beamforming.build_csi_net`, ``per_user=False``: one FC net on all
  ``K_total`` users): uplink view -> downlink view ``h_hat`` (the channels from this BS to every
  user). Default hidden layers (Sec. VII-C): three FC ``tanh`` layers of ``2 Nt N_c^2`` neurons
  (``= 2 Nt K_total N_c`` with the paper's one user per cell; large: override ``csi_hidden``).
- **Power-Net** (:func:`~mimokd.zoo.beamforming.build_power_net` with ``outputs=K_c``), only when
  ``users_per_cell > 1``: ``h_hat`` -> softmax ``p_hat`` ``[batch, K_c]`` (the own users' ``p / P``;
  eq. 37 has no ``q``). With ONE user per cell (the paper's Sec. VII-C setting) the whole budget goes
  to that user, ``p = P``: there is no Power-Net, no ``L_P``, and ``alpha_p`` is ignored (kept in the
  config; ``power_mse`` is logged as 0 and ``y["powers"]`` may be left out).
- **Recovery** (no weights): ``recovery="slnr"`` the SLNR structure of eq. (35)
  (:class:`~mimokd.zoo.beamforming.SLNRRecovery`), or ``recovery="zf"`` the "ZF loss function"
  variant (:class:`~mimokd.zoo.beamforming.MulticellZFRecovery`: zero-forces all ``K_total`` users the
  BS sees, needs ``Nt >= K_total``). Output ``W`` ``[batch, Nt, K_c, 2]`` for the own users.

Loss of eq. (36) (weights ``alpha_h``, ``alpha_p``, ``alpha_r >= 0``):

    ``Loss = alpha_H L_H + alpha_P L_P - alpha_R R``

- ``L_H = MSE(downlink, h_hat)`` over the real-stored entries of the view (eq. 8);
- ``L_P = MSE(powers, p_hat)`` (eq. 37 on the normalized scale: labels ``p / P`` summing to 1, the
  SLNR alternating-optimization powers of Sec. VI-A);
- ``R = mean_batch`` :func:`~mimokd.zoo.beamforming.slnr_rate_tf` of the recovered ``W``: the SLNR
  rate of eq. (27)-(28) of the BS's own users, ``log2(1 + gamma_SLNR)`` or with ``approximate_rate=True``
  the paper's high-SNR ``log2(gamma_SLNR)``; on the TRUE downlink view by default (``rate_channel=
  "true"``, as :class:`~mimokd.train.hybrid.HybridBeamformer`), or on ``h_hat`` as the paper writes
  it (``rate_channel="learned"``). The paper's Sec. VII-C "alpha_R = -1" is its sign convention for
  ``L_R = -R``; here ``alpha_r > 0`` maximizes the rate.

A zero-weight term is left out of the loss (no gradient through it). Logged metrics: ``loss``,
``channel_mse``, ``power_mse``, ``slnr_rate`` (always the EXACT ``log2(1 + gamma_SLNR)`` per-view sum
on the true downlink view, whatever ``approximate_rate`` / ``rate_channel``).

Units: channels are divided by a scale ``s`` and the noise power is 1, so ``power = P s^2``,
``noise = 1``. Data: ``fit(x=uplink, y={"downlink": downlink, "powers": powers})`` with ``uplink``,
``downlink`` float32 ``[N, K_total, Nt, 2]`` views and ``powers`` float32 ``[N, K_c]``; views of one
snapshot are consecutive (``index = snapshot * num_cells + bs``).

Scoring (:func:`evaluate_multicell`) uses the actual SINR rates of eq. (26) of all BSs' beams
together (:func:`mimokd.classical.slnr.multicell_user_rates`), not the SLNR.
"""

import keras
import numpy as np
from keras import ops

from mimokd.channels.multicell import bs_view_order
from mimokd.classical.slnr import multicell_user_rates
from mimokd.train.loss_terms import LossTermsModel
from mimokd.zoo.beamforming import (
    _check_positive_int,
    MulticellZFRecovery,
    SLNRRecovery,
    build_csi_net,
    build_power_net,
    slnr_rate_tf,
)

RECOVERIES = ("slnr", "zf")
RATE_CHANNELS = ("true", "learned")
CSI_NET_LAYERS = 3  # Sec. VII-C: three FC tanh layers of 2 Nt N_c^2 neurons


# ----------------------------------------------------------------------------- model


@keras.saving.register_keras_serializable(package="mimokd")
class MulticellBeamformer(LossTermsModel):
    """CSI-Net -> (Power-Net) -> SLNR / ZF recovery for one BS's view, trained with eq. (36).

    ``call(uplink)`` returns ``W`` float32 ``[batch, Nt, users_per_cell, 2]``; :meth:`forward` also
    returns ``h_hat`` and ``p_hat``. See the module docstring for the loss and the data.

    Args:
        Nt: BS antennas. num_cells: ``N_c``. users_per_cell: ``K_c`` (``K_total = N_c K_c``).
        power: per-BS power in the model's units (``P s^2``). noise: ``N_0`` (1 in scaled units).
        alpha_h, alpha_p, alpha_r: the loss weights of eq. (36) (>= 0; the effective ones not all 0;
            ``alpha_p`` is ignored with ``users_per_cell == 1``).
        recovery: ``"slnr"`` (eq. 35) or ``"zf"`` (zero-forcing all users, needs ``Nt >= K_total``).
        approximate_rate: optimize ``log2(gamma_SLNR)`` (eq. 28's high-SNR form) instead of
            ``log2(1 + gamma_SLNR)``.
        rate_channel: ``"true"`` (default) or ``"learned"``: the view ``R`` is evaluated on.
        csi_hidden: CSI-Net hidden widths; default ``(2 Nt N_c^2,) * 3`` (Sec. VII-C).
        power_hidden, power_variant: the Power-Net's (defaults of :func:`build_power_net`: ``"fc"``,
            four layers of ``4 K_total Nt``; the paper gives none for the multicell Power-Net).
        linalg_dtype: the recovery's (``"float64"`` default, or ``"float32"``).
    """

    TRACKED = ("loss", "channel_mse", "power_mse", "slnr_rate")

    def __init__(self, Nt, num_cells, users_per_cell, power, noise=1.0, *, alpha_h=1.0, alpha_p=1.0,
                 alpha_r=1.0, recovery="slnr", approximate_rate=False, rate_channel="true", csi_hidden=None,
                 power_hidden=None, power_variant="fc", linalg_dtype="float64", name="multicell_beamformer",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        _check_positive_int(Nt=Nt, num_cells=num_cells, users_per_cell=users_per_cell)
        if recovery not in RECOVERIES:
            raise ValueError(f"`recovery` must be one of {RECOVERIES}. Received: recovery={recovery!r}")
        if rate_channel not in RATE_CHANNELS:
            raise ValueError(f"`rate_channel` must be one of {RATE_CHANNELS}. Received: rate_channel={rate_channel!r}")
        if not isinstance(approximate_rate, (bool, np.bool_)):
            raise ValueError(f"`approximate_rate` must be a bool. Received: approximate_rate={approximate_rate!r}")
        alphas = {"alpha_h": alpha_h, "alpha_p": alpha_p, "alpha_r": alpha_r}
        for key, value in alphas.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not (np.isfinite(value) and value >= 0):
                raise ValueError(f"`{key}` must be finite and >= 0. Received: {key}={value!r}")
        self.Nt, self.num_cells, self.users_per_cell = int(Nt), int(num_cells), int(users_per_cell)
        self.K_total = self.num_cells * self.users_per_cell
        effective = dict(alphas) if self.users_per_cell > 1 else {"alpha_h": alpha_h, "alpha_r": alpha_r}
        if not any(v > 0 for v in effective.values()):
            raise ValueError(f"At least one of {', '.join(effective)} must be > 0 (alpha_p is ignored with "
                             f"users_per_cell=1). Received: {alphas}, users_per_cell={users_per_cell}")
        if recovery == "zf" and self.Nt < self.K_total:
            raise ValueError(f"recovery='zf' zero-forces all K_total = num_cells * users_per_cell = {self.K_total} "
                             f"users and needs Nt >= K_total. Received: Nt={Nt}")
        self.power, self.noise = float(power), float(noise)
        self.alpha_h, self.alpha_p, self.alpha_r = float(alpha_h), float(alpha_p), float(alpha_r)
        self.recovery_name = recovery
        self.approximate_rate = bool(approximate_rate)
        self.rate_channel = rate_channel
        default_csi = (2 * self.Nt * self.num_cells**2,) * CSI_NET_LAYERS
        self.csi_hidden = tuple(default_csi if csi_hidden is None else csi_hidden)
        self.power_hidden = None if power_hidden is None else tuple(power_hidden)
        self.power_variant = power_variant
        self.linalg_dtype = linalg_dtype
        self.csi_net = build_csi_net(self.Nt, self.K_total, hidden=self.csi_hidden, per_user=False)
        self.power_net = None
        if self.users_per_cell > 1:
            self.power_net = build_power_net(self.Nt, self.K_total, hidden=self.power_hidden, variant=power_variant,
                                             outputs=self.users_per_cell)
        if recovery == "slnr":
            self.recovery = SLNRRecovery(self.power, self.noise, self.users_per_cell, linalg_dtype=linalg_dtype,
                                         name="recovery")
        else:
            self.recovery = MulticellZFRecovery(self.power, self.users_per_cell, noise=self.noise,
                                                linalg_dtype=linalg_dtype, name="recovery")
        # functional sub-networks built at construction (as HybridBeamformer): lets `.keras` saving store
        # the weights and a loaded model's optimizer be built before its state loads
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def forward(self, uplink, training=False):
        """``uplink [b, K_total, Nt, 2] -> (h_hat [b, K_total, Nt, 2], p_hat [b, K_c], W [b, Nt, K_c, 2])``;
        ``p_hat`` is all ones (the whole budget) with one user per cell."""
        h_hat = self.csi_net(uplink, training=training)
        if self.power_net is None:
            p_hat = ops.ones_like(h_hat[:, :1, 0, 0])  # [b, 1]
        else:
            p_hat = self.power_net(h_hat, training=training)
        return h_hat, p_hat, self.recovery([h_hat, p_hat])

    def call(self, inputs, training=False):
        return self.forward(inputs, training=training)[2]

    def loss_terms(self, uplink, downlink, powers=None, training=False):
        """The terms of eq. (36) on a batch: dict ``loss``, ``channel_mse``, ``power_mse``, ``slnr_rate``
        (exact, true view, logged) and ``rate_objective`` (the ``R`` in the loss).

        ``loss`` is the weighted sum, with a zero-weight term left out (no gradient through it).
        ``powers`` ``[b, K_c]`` is needed when ``users_per_cell > 1``; ``power_mse`` is 0 otherwise.
        """
        downlink = ops.cast(downlink, "float32")
        h_hat, p_hat, W = self.forward(uplink, training=training)
        channel_mse = ops.mean(ops.square(downlink - h_hat))
        if self.power_net is None:
            power_mse = ops.zeros((), "float32")
        else:
            if powers is None:
                raise ValueError(f"`powers` labels [batch, {self.users_per_cell}] are needed with users_per_cell > 1.")
            power_mse = ops.mean(ops.square(ops.cast(powers, "float32") - p_hat))
        kc, noise = self.users_per_cell, self.noise
        slnr_rate = ops.mean(slnr_rate_tf(downlink, W, noise, kc))
        rate_view = downlink if self.rate_channel == "true" else h_hat
        if rate_view is downlink and not self.approximate_rate:
            rate_objective = slnr_rate
        else:
            rate_objective = ops.mean(slnr_rate_tf(rate_view, W, noise, kc, approximate=self.approximate_rate))
        loss = ops.zeros((), "float32")
        if self.alpha_h > 0:
            loss = loss + self.alpha_h * channel_mse
        if self.alpha_p > 0 and self.power_net is not None:
            loss = loss + self.alpha_p * power_mse
        if self.alpha_r > 0:
            loss = loss - self.alpha_r * rate_objective
        return {"loss": loss, "channel_mse": channel_mse, "power_mse": power_mse, "slnr_rate": slnr_rate,
                "rate_objective": rate_objective}

    @staticmethod
    def _unpack(data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(y, dict):
            return x, y["downlink"], y.get("powers")
        return x, y, None  # y = downlink alone (one user per cell)

    def get_config(self):
        return {
            "name": self.name,
            "Nt": self.Nt,
            "num_cells": self.num_cells,
            "users_per_cell": self.users_per_cell,
            "power": self.power,
            "noise": self.noise,
            "alpha_h": self.alpha_h,
            "alpha_p": self.alpha_p,
            "alpha_r": self.alpha_r,
            "recovery": self.recovery_name,
            "approximate_rate": self.approximate_rate,
            "rate_channel": self.rate_channel,
            "csi_hidden": list(self.csi_hidden),
            "power_hidden": None if self.power_hidden is None else list(self.power_hidden),
            "power_variant": self.power_variant,
            "linalg_dtype": self.linalg_dtype,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# ----------------------------------------------------------------------------- evaluation


def _check_views(uplink_views, num_cells, name="uplink_views"):
    n_views = np.shape(uplink_views)[0]
    if n_views % num_cells:
        raise ValueError(f"`{name}` must hold num_cells={num_cells} consecutive views per snapshot. "
                         f"Received: {n_views} views")
    return n_views // num_cells


def evaluate_multicell(model, uplink_views, h_down, num_cells, channel_scale, batch_size=1024):
    """Actual multicell rates (SINR of eq. 26) of ``model``'s beams, every BS transmitting at once.

    ``W = model.predict(uplink_views)`` ``[N num_cells, Nt, K_c, 2]`` (views ``snapshot * num_cells +
    bs``) is reshaped to complex ``[N, num_cells, Nt, K_c]`` and scored by the numpy
    :func:`~mimokd.classical.slnr.multicell_user_rates` on ``h_down / channel_scale`` with noise
    ``model.noise`` (the model's scaled units).

    Args:
        model: a :class:`MulticellBeamformer` (anything with ``predict`` -> ``W`` and ``noise``).
        uplink_views: float32 ``[N num_cells, K_total, Nt, 2]``.
        h_down: complex ``[N, num_cells, K_total, Nt]``, the TRUE downlink channels in the classical
            layout (``h_down[:, i, u]`` BS ``i`` -> user ``u``, users cell-major; NOT permuted), in
            unscaled units.
        num_cells: ``N_c``. channel_scale: ``s`` (scalar or ``[N]``).

    Returns:
        dict: ``sum_rate`` (float: mean over snapshots of the sum over all users, bits/s/Hz),
        ``sum_rates`` float64 ``[N]`` and ``rates`` float64 ``[N, K_total]`` (per user).
    """
    _check_positive_int(num_cells=num_cells)
    n = _check_views(uplink_views, num_cells)
    h_down = np.asarray(h_down)
    if h_down.ndim != 4 or h_down.shape[:2] != (n, num_cells):
        raise ValueError(f"`h_down` must be complex [N={n}, num_cells={num_cells}, K_total, Nt]. "
                         f"Received: h_down.shape={h_down.shape}")
    W = np.asarray(model.predict(uplink_views, batch_size=batch_size, verbose=0), np.float64)
    W = (W[..., 0] + 1j * W[..., 1]).reshape(n, num_cells, *W.shape[1:3])
    scale = np.asarray(channel_scale, np.float64)
    if scale.ndim:
        scale = scale.reshape(-1, 1, 1, 1)
    rates = multicell_user_rates(h_down / scale, W, model.noise)
    sum_rates = rates.sum(axis=1)
    return {"sum_rate": float(np.mean(sum_rates)), "sum_rates": sum_rates, "rates": rates}


def learned_channels(model, uplink_views, num_cells, users_per_cell, batch_size=1024):
    """The CSI-Net's downlink estimates in the classical layout, for the "learned channel + SLNR" benchmark.

    Returns complex128 ``[N, num_cells, K_total, Nt]`` (``[:, i, u]`` BS ``i`` -> user ``u``, the view
    permutation of :func:`~mimokd.channels.multicell.bs_view_order` undone), in the model's SCALED units
    (divided by ``s``); e.g.
    ``multicell_slnr_beamformer(learned, model.power, model.noise, users_per_cell)``.
    """
    _check_positive_int(num_cells=num_cells, users_per_cell=users_per_cell)
    n = _check_views(uplink_views, num_cells)
    h = np.asarray(model.csi_net.predict(uplink_views, batch_size=batch_size, verbose=0), np.float64)
    h = (h[..., 0] + 1j * h[..., 1]).reshape(n, num_cells, *h.shape[1:3])  # view order
    if h.shape[2] != num_cells * users_per_cell:
        raise ValueError(f"The views have {h.shape[2]} users, not num_cells * users_per_cell = "
                         f"{num_cells * users_per_cell}.")
    out = np.empty_like(h)
    for i in range(num_cells):
        out[:, i, bs_view_order(num_cells, users_per_cell, i)] = h[:, i]
    return out


__all__ = ["MulticellBeamformer", "evaluate_multicell", "learned_channels"]
