"""Two-party training through CSI-codeword files: Cui et al.'s IP-protecting encoder KD (Sec. IV-C,
Fig. 5) and BS-first sequential training (their ref. [49], Table XII).

The base station (BS) and the user equipment (UE) vendors never see each other's networks; the
only thing they exchange is a *pairs file* of CSI samples and codewords (:func:`save_pairs`):

1. BS: encode CSI with its (teacher) encoder and write the pairs (``mimokd ip-kd bs-export``).
2. UE: train its own encoder on the pairs, MSE to the codewords, eq. (11)
   (:func:`fit_encoder_on_pairs`, ``mimokd ip-kd ue-train``); encode CSI with it and write the
   UE's pairs (``mimokd ip-kd ue-export``).
3. BS: fine-tune only its decoder on the UE's pairs, codeword -> CSI
   (:func:`fit_decoder_on_pairs`, ``mimokd ip-kd bs-finetune``).

Sequential training is steps 1-2 with no teacher: the BS trains an autoencoder of the UE's own
(lightweight) architecture, exports its codewords, and the UE's encoder is deployed against the
BS decoder as it is (:func:`fit_sequential`).

The exchanged files can be quantized (the paper's third overhead-reduction strategy): a uniform
scalar quantizer of ``bits`` per element, per codeword dimension over that dimension's range
(:func:`quantize`), and over [0, 1] for CSI. A ``B``-bit file costs ``B`` bits per element against
32 for float32.

Pairs file (``.npz``): ``csi`` ``[N, 2, H, W]`` and ``codewords`` ``[N, D]``, each either float32
or unsigned integer codes with their ``*_low`` / ``*_high`` ranges and ``*_bits``; ``version``.
"""

import math
import zipfile
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from mimokd.channels.datasets import make_dataset
from mimokd.channels.layout import check_csi
from mimokd.fileio import atomic_path
from mimokd.train.runs import claim_run_dir, data_record, epoch_batches, fit_run, model_record
from mimokd.train.vanilla import TrainConfig, compile_autoencoder, fit_autoencoder
from mimokd.zoo import ComposedAutoencoder, check_teacher
from mimokd.zoo.autoencoder import copy_model

PAIRS_VERSION = 1


def quantize(x, bits, low, high):
    """Uniform scalar quantization of ``x`` to ``bits`` bits over ``[low, high]`` (broadcast).

    Returns:
        Unsigned integer codes ``round((x - low) / (high - low) * (2**bits - 1))`` (uint8 up to 8
        bits, uint16 up to 16), clipped to the range. :func:`dequantize` inverts it to within half
        a step, ``(high - low) / (2**bits - 1) / 2``.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise ValueError(f"`bits` must be an integer from 1 to 16. Received: bits={bits!r}")
    levels = 2**bits - 1
    span = np.where(np.asarray(high) > np.asarray(low), np.asarray(high) - np.asarray(low), 1.0)
    codes = np.rint((np.asarray(x, np.float64) - low) / span * levels)
    return np.clip(codes, 0, levels).astype(np.uint8 if bits <= 8 else np.uint16)


def dequantize(codes, bits, low, high):
    """Inverse of :func:`quantize`: float32 ``low + codes * (high - low) / (2**bits - 1)``."""
    levels = 2**bits - 1
    return (np.asarray(low) + codes.astype(np.float64) * (np.asarray(high) - np.asarray(low)) / levels).astype(
        np.float32
    )


def _pack(name, values, bits, low, high):
    if bits is None:
        return {name: values.astype(np.float32)}
    return {
        name: quantize(values, bits, low, high),
        f"{name}_bits": np.int64(bits),
        f"{name}_low": np.asarray(low, np.float32),
        f"{name}_high": np.asarray(high, np.float32),
    }


def save_pairs(path, csi, codewords, *, csi_bits=None, codeword_bits=None):
    """Write a pairs file atomically (see the module docstring).

    Args:
        path: the ``.npz`` to write.
        csi: float32 ``[N, 2, H, W]`` in [0, 1].
        codewords: float ``[N, D]``, finite.
        csi_bits, codeword_bits: quantize that array to so many bits (``None``: float32).

    Returns:
        The size of the file in bytes.
    """
    csi = check_csi(csi)
    codewords = np.asarray(codewords, np.float32)
    if codewords.ndim != 2 or len(codewords) != len(csi):
        raise ValueError(
            f"`codewords` must be [N, D] with N = {len(csi)} (one per CSI sample). "
            f"Received: codewords.shape={codewords.shape}"
        )
    if not np.isfinite(codewords).all():
        raise ValueError("`codewords` contains NaN or infinite values")
    arrays = {"version": np.int64(PAIRS_VERSION)}
    arrays.update(_pack("csi", csi, csi_bits, 0.0, 1.0))
    arrays.update(_pack("codewords", codewords, codeword_bits, codewords.min(axis=0), codewords.max(axis=0)))
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path.stat().st_size


def _unpack(data, name, path):
    if name not in data:
        raise KeyError(f"{path} is not a pairs file: it has no {name!r} array (it holds {sorted(data)})")
    values = data[name]
    if f"{name}_bits" in data:
        values = dequantize(values, int(data[f"{name}_bits"]), data[f"{name}_low"], data[f"{name}_high"])
    return values.astype(np.float32)


def load_pairs(path):
    """Read a pairs file: ``(csi float32 [N, 2, H, W], codewords float32 [N, D])``, dequantized.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable ``.npz``, or its arrays are inconsistent.
        KeyError: an array is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No pairs file at {path} (expected a .npz from `mimokd ip-kd bs-export`)")
    try:
        with np.load(path) as data:
            data = dict(data)  # a .npy file gives an array, which is no context manager: TypeError
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable pairs file (.npz): {err!r}") from err
    version = int(data.get("version", -1))
    if version != PAIRS_VERSION:
        raise ValueError(f"{path} has pairs-file version {version}; this mimokd reads version {PAIRS_VERSION}")
    csi = check_csi(_unpack(data, "csi", path))
    codewords = _unpack(data, "codewords", path)
    if codewords.ndim != 2 or len(codewords) != len(csi):
        raise ValueError(f"{path}: {len(csi)} CSI samples but codewords of shape {codewords.shape}")
    if not np.isfinite(codewords).all():
        raise ValueError(f"{path}: the codewords contain NaN or infinite values")
    return csi, codewords


def export_pairs(encoder, csi, path, *, csi_bits=None, codeword_bits=None, batch_size=500):
    """Encode ``csi`` with ``encoder`` (CSI ``[N, 2, H, W]`` -> ``[N, D]``) and :func:`save_pairs`.

    Returns:
        The size of the file in bytes.
    """
    codewords = encoder.predict(check_csi(csi), batch_size=batch_size, verbose=0)
    return save_pairs(path, csi, codewords, csi_bits=csi_bits, codeword_bits=codeword_bits)


def _split(n, val_fraction):
    if not 0 < val_fraction < 1:
        raise ValueError(f"`val_fraction` must be in (0, 1). Received: val_fraction={val_fraction}")
    n_val = max(1, round(n * val_fraction))
    if n_val >= n:
        raise ValueError(f"Need at least 2 pairs to hold some out for validation. Received: {n} pairs")
    return n - n_val


def _fit_on_pairs(model, inputs, targets, *, out_dir, config, val_fraction, metrics, monitor, record,
                  callbacks, verbose, overwrite):
    config = config or TrainConfig()
    cut = _split(len(inputs), val_fraction)
    keras.utils.set_random_seed(config.seed)
    compile_autoencoder(model, config=config, steps_per_epoch=math.ceil(cut / config.batch_size), metrics=metrics)
    # make_dataset checks CSI, so the CSI side goes first and pairs are swapped back for the decoder
    csi_first = inputs.ndim == 4
    csi, other = (inputs, targets) if csi_first else (targets, inputs)
    val = make_dataset(csi[cut:], targets=other[cut:], batch_size=config.batch_size)
    history = fit_run(
        model,
        epoch_batches(inputs[:cut], targets[:cut], batch_size=config.batch_size, seed=config.seed),
        val if csi_first else val.map(lambda a, b: (b, a)),
        out_dir=out_dir,
        epochs=config.epochs,
        record={**record, "pairs": len(inputs), "validation_pairs": len(inputs) - cut,
                "data": data_record(inputs, targets),
                "train": asdict(config)},
        monitor=monitor,
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    return model, history


def fit_encoder_on_pairs(encoder, csi, codewords, *, out_dir, config=None, val_fraction=0.1, callbacks=(),
                         verbose="auto", overwrite=False):
    """The UE's step 2: train ``encoder`` (CSI -> ``[N, D]``) on MSE to the received codewords.

    The last ``val_fraction`` of the pairs is held out; ``best.keras`` is the encoder of the lowest
    validation codeword MSE (``val_loss``). ``out_dir`` is a run directory (:mod:`mimokd.train.runs`;
    ``overwrite`` replaces a run with other settings there). Returns ``(encoder, history)``.
    """
    if encoder.output_shape[-1] != codewords.shape[-1]:
        raise ValueError(
            f"The encoder's codeword length ({encoder.output_shape[-1]}) must match the pairs' "
            f"({codewords.shape[-1]})"
        )
    return _fit_on_pairs(encoder, csi, codewords, out_dir=out_dir, config=config, val_fraction=val_fraction,
                         metrics=(), monitor="val_loss",
                         record={"role": "ue", "step": "encoder", "encoder": encoder.get_config()},
                         callbacks=callbacks, verbose=verbose, overwrite=overwrite)


def fit_decoder_on_pairs(decoder, codewords, csi, *, out_dir, config=None, val_fraction=0.1, callbacks=(),
                         verbose="auto", overwrite=False):
    """The BS's step 3: fine-tune ``decoder`` (``[N, D]`` -> CSI) on the UE's codewords.

    ``best.keras`` is the decoder of the best validation NMSE; ``out_dir`` is a run directory
    (:mod:`mimokd.train.runs`; ``overwrite`` replaces a run with other settings there). Returns
    ``(decoder, history)``.
    """
    if decoder.input_shape[-1] != codewords.shape[-1]:
        raise ValueError(
            f"The decoder's codeword length ({decoder.input_shape[-1]}) must match the pairs' "
            f"({codewords.shape[-1]})"
        )
    return _fit_on_pairs(decoder, codewords, csi, out_dir=out_dir, config=config, val_fraction=val_fraction,
                         metrics=None, monitor="val_nmse",
                         record={"role": "bs", "step": "decoder", "decoder": model_record(decoder)},
                         callbacks=callbacks, verbose=verbose, overwrite=overwrite)


def fit_ip_kd(teacher, student_encoder, train_csi, *, out_dir, config=None, finetune_config=None,
              codeword_bits=None, csi_bits=None, verbose="auto", overwrite=False):
    """The whole IP-protecting encoder KD in one process (both roles; files in ``out_dir``).

    Writes ``bs_pairs.npz`` (teacher codewords), trains the student encoder in ``out_dir/ue``,
    writes ``ue_pairs.npz`` (student codewords on the same CSI), fine-tunes a copy of the teacher's
    decoder in ``out_dir/bs``. ``out_dir/config.json`` records the call: another call into the
    same ``out_dir`` is refused before anything is written, unless ``overwrite``.

    Returns:
        ``(autoencoder, {"bs_pairs_bytes": ..., "ue_pairs_bytes": ...})``: the UE encoder joined
        to the fine-tuned BS decoder.
    """
    check_teacher(teacher)
    out_dir = Path(out_dir)
    quant = {"codeword_bits": codeword_bits, "csi_bits": csi_bits}
    claim_run_dir(out_dir, {"method": "ip-kd", "teacher": model_record(teacher),
                            "encoder": student_encoder.get_config(),
                            "data": data_record(train_csi), **quant, "train": asdict(config or TrainConfig()),
                            "finetune": asdict(finetune_config or config or TrainConfig())}, overwrite=overwrite)
    sizes = {"bs_pairs_bytes": export_pairs(teacher.encoder, train_csi, out_dir / "bs_pairs.npz", **quant)}
    csi, codewords = load_pairs(out_dir / "bs_pairs.npz")
    fit_encoder_on_pairs(student_encoder, csi, codewords, out_dir=out_dir / "ue", config=config, verbose=verbose,
                         overwrite=overwrite)
    encoder = keras.saving.load_model(out_dir / "ue" / "best.keras")
    sizes["ue_pairs_bytes"] = export_pairs(encoder, csi, out_dir / "ue_pairs.npz", **quant)
    csi, codewords = load_pairs(out_dir / "ue_pairs.npz")
    fit_decoder_on_pairs(copy_model(teacher.decoder), codewords, csi, out_dir=out_dir / "bs",
                         config=finetune_config or config, verbose=verbose, overwrite=overwrite)
    decoder = keras.saving.load_model(out_dir / "bs" / "best.keras")
    return ComposedAutoencoder(encoder=encoder, decoder=decoder, name="ip_kd"), sizes


def fit_sequential(bs_model, ue_encoder, train_csi, val_csi, *, out_dir, config=None, encoder_config=None,
                   codeword_bits=None, verbose="auto", overwrite=False):
    """BS-first sequential training: no teacher, the BS decoder is not fine-tuned.

    Args:
        bs_model: a zero-argument builder of the BS's own autoencoder (trained here, vanilla, in
            ``out_dir/bs``), or a trained :class:`~mimokd.zoo.CsiAutoencoder`.
        ue_encoder: the UE's encoder, CSI -> ``[N, D]`` (trained on the BS's pairs in ``out_dir/ue``).
        train_csi, val_csi: float32 ``[N, 2, H, W]``.
        config: :class:`~mimokd.train.TrainConfig` of the BS autoencoder.
        encoder_config: that of the UE encoder (default: ``config``).
        overwrite: replace runs with other settings in ``out_dir`` (its sub-directories) instead of
            refusing; without it another call into the same ``out_dir`` is refused before anything
            is written (``out_dir/config.json`` records the call).

    Returns:
        The UE encoder joined to the BS decoder, a :class:`~mimokd.zoo.ComposedAutoencoder`.
    """
    out_dir = Path(out_dir)
    trained = isinstance(bs_model, keras.Model)
    claim_run_dir(out_dir, {"method": "sequential", "bs": model_record(bs_model) if trained else "trained here",
                            "encoder": ue_encoder.get_config(), "codeword_bits": codeword_bits,
                            "data": {"train": data_record(train_csi), "val": data_record(val_csi)},
                            "train": asdict(config or TrainConfig()),
                            "encoder_train": asdict(encoder_config or config or TrainConfig())}, overwrite=overwrite)
    if trained:
        bs = bs_model
    else:
        fit_autoencoder(bs_model, train_csi, val_csi, out_dir=out_dir / "bs", config=config, verbose=verbose,
                        overwrite=overwrite)
        bs = keras.saving.load_model(out_dir / "bs" / "best.keras")
    export_pairs(bs.encoder, train_csi, out_dir / "bs_pairs.npz", codeword_bits=codeword_bits)
    csi, codewords = load_pairs(out_dir / "bs_pairs.npz")
    fit_encoder_on_pairs(ue_encoder, csi, codewords, out_dir=out_dir / "ue", config=encoder_config or config,
                         verbose=verbose, overwrite=overwrite)
    encoder = keras.saving.load_model(out_dir / "ue" / "best.keras")
    return ComposedAutoencoder.from_parts(encoder, bs.decoder, name="sequential")
