"""Kong et al.'s and Zhang et al.'s networks as deployable parts, and the inputs their checks run on.

:func:`~mimokd.export.artifacts.deployable_parts` of a trained system gives these parts (each a
:class:`~mimokd.export.artifacts.Part`, exported and checked like the CSI autoencoders' encoder and
decoder, in the formats of :data:`~mimokd.export.formats.PART_FORMATS`):

Kong et al. (a :class:`~mimokd.train.joint.JointTrainer`: ``best.keras`` / ``final.keras`` of
:func:`~mimokd.train.joint.fit_joint`, i.e. of ``mimokd experiment kong-*``):

- ``receiver`` (UE, eq. 4): received pilots float32 ``[batch, 2NL]`` -> feedback bits float32
  ``[batch, B]`` in {-1, +1}. Exported as :func:`hard_receiver`: the binarization's straight-through
  arithmetic is replaced by its forward value, a hard sign of the logits ``u``. Checked ``exact``:
  every bit must equal the Keras receiver's. Per-user receivers (``shared_receiver=False``) are
  the parts ``receiver_0`` ... ``receiver_{K-1}``.
- ``transmitter`` (BS, eq. 5): ``feedback`` float32 ``[batch, K*B]`` (user-major bits) and, if the
  network takes it, ``power_db`` float32 ``[batch, 1]`` -> ``V`` float32 ``[batch, M, K*N, 2]`` (unit
  columns; real, imaginary last). Checked to the format's tolerance.

The auxiliary transmitter (eq. 9) serves training only and is not exported.

Zhang et al. (a :class:`~mimokd.train.hybrid.HybridBeamformer`: ``best.keras`` / ``final.keras`` of
``mimokd experiment zhang-fig2 | -fig4 | -fig5 | -table1``), all at the BS:

- ``csi_net`` (Sec. IV-B): uplink LS estimate float32 ``[batch, K, Nt, 2]`` -> downlink channel
  estimate ``h_hat`` float32 ``[batch, K, Nt, 2]``;
- ``power_net`` (Sec. IV-B): ``h_hat`` -> softmax power fractions ``[p_hat; q_hat]`` float32
  ``[batch, 2K]`` (none with the ZF recovery, eq. 24);
- ``beamformer``: the whole network, uplink -> ``W`` float32 ``[batch, Nt, K, 2]``: CSI-Net,
  Power-Net and the closed-form recovery (eq. 7; eq. 20-23 or 24 with the other recoveries).

Why the recovery is its own part, in SavedModel only: it solves a complex ``Nt x Nt`` (or ``K x K``)
linear system in complex128 (``MatrixSolve``, complex ``MatMul``, ``eigh`` for eq. 20-23). The
TFLite converter refuses them (``MatrixSolve`` is neither a builtin nor a flex-free op, and LiteRT
has no complex tensors), and tf2onnx cannot convert a complex ``MatMul`` (it writes a graph with
the node unconverted). So ONNX and TFLite carry what they can run, CSI-Net and Power-Net, and the
device computes eq. (7) from their outputs (:class:`~mimokd.zoo.beamforming.BeamformingRecovery`
is a dozen lines of linear algebra); the SavedModel ``beamformer`` gives the beamformers directly.

Check inputs (:func:`system_inputs`) are drawn from the run directory's ``config.json``: Kong's
pilots from :func:`~mimokd.train.joint.channel_arrays` (its validation stream ``seed + 1``;
calibration from ``seed``), Zhang's uplink LS estimates from the experiment's own test and training
sets (:func:`mimokd.experiments.zhang.datasets`).
"""

import json
import zipfile
from pathlib import Path

import keras
import numpy as np

from mimokd.argtypes import RUN_CHECKPOINTS
from mimokd.export.formats import Endpoint

RECEIVER = Endpoint(signature="receive", input_name="pilots", output_name="bits")
TRANSMITTER = Endpoint(signature="precode", input_name="feedback", output_name="precoders")
TRANSMITTER_WITH_POWER = Endpoint(signature="precode", input_name="feedback", output_name="precoders",
                                  extra_inputs=("power_db",))
CSI_NET = Endpoint(signature="estimate", input_name="uplink", output_name="downlink")
POWER_NET = Endpoint(signature="allocate", input_name="downlink", output_name="powers")
BEAMFORMER = Endpoint(signature="beamform", input_name="uplink", output_name="beamformers")

SYSTEMS = {
    "JointTrainer": "Kong et al.'s receiver and transmitter (best.keras of `mimokd experiment kong-*`)",
    "HybridBeamformer": "Zhang et al.'s CSI-Net, Power-Net and beamformer (best.keras of `mimokd experiment "
                        "zhang-*`)",
}
"""The trainers whose networks export, by class name, with what a user passes for them."""

RUN_FILES = RUN_CHECKPOINTS


def hard_receiver(receiver):
    """The deployable form of a Kong receiver: its layers up to the logits ``u``, then
    :class:`~mimokd.zoo.precoding.HardSign`.

    Args:
        receiver: a model from :func:`~mimokd.zoo.precoding.build_receiver` (pilots float32
            ``[batch, 2NL]`` -> bits float32 ``[batch, B]``, its binarization a straight-through
            estimator).

    Returns:
        ``keras.Model`` over the same layers (same weights): pilots ``[batch, 2NL]`` -> bits
        ``[batch, B]`` in {-1, +1}, equal to the receiver's forward pass.
    """
    from mimokd.zoo.precoding import HardSign

    bits = HardSign(name="bits")(receiver.get_layer("logits").output)
    return keras.Model(receiver.input, bits, name=receiver.name)


def beamformer_model(hybrid):
    """Zhang et al.'s whole network as a functional model: uplink float32 ``[batch, K, Nt, 2]`` ->
    ``W`` float32 ``[batch, Nt, K, 2]`` (CSI-Net, Power-Net, recovery; the ``hybrid``'s own layers)."""
    uplink = keras.Input((hybrid.K, hybrid.Nt, 2), name="uplink")
    return keras.Model(uplink, hybrid(uplink), name="beamformer")


def system_kind(model):
    """``"kong"`` for a :class:`~mimokd.train.joint.JointTrainer`, ``"zhang"`` for a
    :class:`~mimokd.train.hybrid.HybridBeamformer`, else ``None``."""
    from mimokd.train.hybrid import HybridBeamformer
    from mimokd.train.joint import JointTrainer

    if isinstance(model, JointTrainer):
        return "kong"
    if isinstance(model, HybridBeamformer):
        return "zhang"
    return None


def system_parts(model):
    """The deployable parts of a Kong or Zhang system, ``{name: Part}`` (see the module docstring).

    Raises:
        ValueError: ``model`` is neither system.
    """
    from mimokd.export.artifacts import Part
    from mimokd.zoo.precoding import transmitter_has_power_input

    kind = system_kind(model)
    if kind == "kong":
        receivers = model.system.unique_receivers
        names = ["receiver"] if len(receivers) == 1 else [f"receiver_{k}" for k in range(len(receivers))]
        parts = {name: Part(name, r, RECEIVER, "UE", kind="receiver", exact=True, inference=hard_receiver(r))
                 for name, r in zip(names, receivers)}
        endpoint = TRANSMITTER_WITH_POWER if transmitter_has_power_input(model.transmitter) else TRANSMITTER
        parts["transmitter"] = Part("transmitter", model.transmitter, endpoint, "BS")
        return parts
    if kind == "zhang":
        parts = {"csi_net": Part("csi_net", model.csi_net, CSI_NET, "BS")}
        if model.power_net is not None:
            parts["power_net"] = Part("power_net", model.power_net, POWER_NET, "BS")
        parts["beamformer"] = Part("beamformer", beamformer_model(model), BEAMFORMER, "BS")
        return parts
    raise ValueError(f"Expected one of {', '.join(SYSTEMS.values())}. Received a {type(model).__name__}")


def system_input_shape(model):
    """The shape of a system's check inputs without the batch axis: Kong ``(K, 2NL)`` (every user's
    pilots), Zhang ``(K, Nt, 2)`` (the uplink estimate)."""
    if system_kind(model) == "kong":
        system = model.system
        return (system.num_users, 2 * system.num_rx * system.pilot_length)
    return (model.K, model.Nt, 2)


def part_inputs(model, part, inputs):
    """A system part's inputs, computed from the system's inputs with the Keras networks.

    Args:
        model: a Kong or Zhang system.
        part: one of its :func:`system_parts`.
        inputs: Kong: pilots float32 ``[N, K, 2NL]``; Zhang: uplink float32 ``[N, K, Nt, 2]``.

    Returns:
        float32 arrays in the part's input layout: a shared receiver gets every user's pilots,
        ``[N*K, 2NL]``; receiver ``k`` ``[N, 2NL]``; the transmitter ``[feedback [N, K*B], power_db
        [N, 1]]`` (the Keras receivers' bits, the run's ``P``) or the feedback alone; CSI-Net and the
        beamformer the uplink; Power-Net the CSI-Net's ``h_hat`` ``[N, K, Nt, 2]``.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    if part.kind == "receiver":
        if part.name == "receiver":
            return inputs.reshape(-1, inputs.shape[-1])
        return inputs[:, int(part.name.rsplit("_", 1)[1])]
    if part.kind == "transmitter":
        feedback = np.asarray(model.system.feedback(inputs), dtype=np.float32)
        if len(part.endpoint.input_names) == 1:
            return feedback
        return [feedback, np.full((len(inputs), 1), model.power_db, dtype=np.float32)]
    if part.kind == "power_net":
        return np.asarray(model.csi_net.predict(inputs, batch_size=1024, verbose=0), dtype=np.float32)
    return inputs


def resolve_checkpoint(path):
    """``path`` itself for a file; for a run directory its ``best.keras``, else its ``final.keras``.

    Raises:
        ValueError: a directory with neither.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    found = [path / name for name in RUN_FILES if (path / name).is_file()]
    if not found:
        raise ValueError(f"{path} is a directory without {' or '.join(RUN_FILES)}; expected a run directory, e.g. "
                         f"of {', or '.join(SYSTEMS.values())}, or a .keras file")
    return found[0]


def load_system(path):
    """The model of a Kong or Zhang run if the ``.keras`` file ``path`` holds one, else ``None``.

    Args:
        path: a ``.keras`` file (:func:`resolve_checkpoint` of a run directory).

    Returns:
        ``(model, run_dir)`` or ``None``: ``None`` for a file of another class, whose loading is
        left to the caller (:func:`mimokd.train.checkpoints.load_checkpoint`).

    Raises:
        ValueError: a mimokd trainer whose networks do not export (naming the kinds that do).
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        try:
            config = json.loads(archive.read("config.json"))
        except (KeyError, ValueError):
            return None
    class_name = config.get("class_name")
    if class_name in SYSTEMS:
        return keras.saving.load_model(path), path.parent
    if str(config.get("module", "")).startswith("mimokd.train"):
        raise ValueError(f"{path} holds a {class_name} ({config['module']}), a kind of network that does not "
                         f"export; expected a CSI autoencoder, or {', or '.join(SYSTEMS.values())}")
    return None


def system_inputs(model, run_dir, *, calibration_samples, check_samples):
    """``(calibration, check)`` inputs of a system, drawn as its run drew its data (its ``config.json``).

    Args:
        model: a Kong or Zhang system. run_dir: its run directory.
        calibration_samples, check_samples: how many samples of each.

    Returns:
        two float32 arrays ``[N, ...]`` of shape ``system_input_shape(model)`` per sample: Kong's
        pilots of fresh Rayleigh channels (calibration: ``seed``; check: ``seed + 1``, the run's
        validation stream), Zhang's uplink LS estimates drawn as the experiment draws its training
        (calibration) and test (check) sets: the same front-end ``(Phi, c)`` and seeds.

    Raises:
        ValueError: no ``config.json`` in ``run_dir``, or one that is not this kind of run's.
    """
    config_path = Path(run_dir) / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} has no config.json: the check inputs of a {type(model).__name__} are drawn "
                         "as its run drew its data; expected the run directory that trained it")
    record = json.loads(config_path.read_text())
    if system_kind(model) == "kong":
        from mimokd.train.joint import channel_arrays

        system = model.system
        dims = dict(num_users=system.num_users, num_tx=system.num_tx, num_rx=system.num_rx,
                    pilot_length=system.pilot_length)
        if "p_train" not in record:
            raise ValueError(f"{config_path} is not a Kong run's (no p_train); expected that of fit_joint")
        draw = {"p_train": record["p_train"], **dims}
        seed = record.get("seed", 0)
        return (channel_arrays(calibration_samples, seed=seed, **draw)[0],
                channel_arrays(check_samples, seed=seed + 1, **draw)[0])
    from dataclasses import replace

    from mimokd.experiments.zhang import Setting, ZhangScale, datasets

    if "setting" not in record:
        raise ValueError(f"{config_path} is not a Zhang experiment run's (no setting); expected that of "
                         "`mimokd experiment zhang-*`")
    scale = replace(ZhangScale(**record["scale"]), train=calibration_samples, test=check_samples)
    train, test = datasets(Setting(**record["setting"]), scale, record["seed"])
    return train["uplink"], test["uplink"]
