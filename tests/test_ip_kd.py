"""Two-party training through pairs files: quantization, the pairs file, each party's step, and
the whole IP-protecting KD and sequential runs."""

import json
import re

import keras
import numpy as np
import pytest

from mimokd.metrics import nmse_db
from mimokd.train import TrainConfig
from mimokd.train.ip_kd import (
    PAIRS_VERSION,
    dequantize,
    export_pairs,
    fit_decoder_on_pairs,
    fit_encoder_on_pairs,
    fit_ip_kd,
    fit_sequential,
    load_pairs,
    quantize,
    save_pairs,
)
from mimokd.zoo import ComposedAutoencoder, create_model
from mimokd.zoo.autoencoder import copy_model
from weights import model_output  # tests/weights.py

TINY = TrainConfig(epochs=2, batch_size=20, seed=3)
ONE = TrainConfig(epochs=1, batch_size=20, seed=3)
EPS = np.finfo(np.float32).eps


def _csi(n, seed=0):
    rng = np.random.default_rng(seed)
    return (0.5 + 0.1 * rng.standard_normal((n, 2, 32, 32))).clip(0, 1).astype("float32")


def _codewords(n, d, seed=1):
    """Float32 ``[n, d]`` with a different range per dimension and a constant last dimension."""
    rng = np.random.default_rng(seed)
    cw = rng.uniform(-3, 3, d) + rng.uniform(0.01, 20, d) * rng.standard_normal((n, d))
    cw[:, -1] = 1.25
    return cw.astype(np.float32)


def _tolerance(bits, low, high):
    """Half a quantizer step per dimension, plus the float32 rounding of the dequantized value."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return (high - low) / (2**bits - 1) / 2 + EPS * np.maximum(np.abs(low), np.abs(high))


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


@pytest.fixture(scope="module")
def csi():
    return _csi(40)


@pytest.fixture(scope="module")
def teacher():
    """The BS autoencoder. The parties' mechanics run on the zoo's lightest model, CsiNet, for the
    teacher and the UE's student alike (codewords of 64 at 1/32)."""
    return create_model("csinet", cr=32)


@pytest.fixture(scope="module")
def teacher_codewords(teacher, csi):
    return model_output(teacher.encoder, csi)


# --- quantize / dequantize ------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
def test_quantize_round_trip_within_half_step(bits):
    rng = np.random.default_rng(bits)
    low = rng.uniform(-5, 1, 16)
    high = low + rng.uniform(0.01, 10, 16)  # ranges a thousand times apart: per-dimension scaling
    x = rng.uniform(low, high, (300, 16))
    x = np.concatenate([low[None], high[None], x]).astype(np.float32)
    codes = quantize(x, bits, low, high)
    assert codes.dtype == (np.uint8 if bits <= 8 else np.uint16)
    assert codes.shape == x.shape
    levels = 2**bits - 1
    np.testing.assert_array_equal(codes[0], 0)  # low -> 0, high -> the top code, in every dimension
    np.testing.assert_array_equal(codes[1], levels)
    assert codes.max() <= levels
    back = dequantize(codes, bits, low, high)
    assert back.dtype == np.float32 and back.shape == x.shape
    err = np.abs(back.astype(np.float64) - x)
    assert (err <= _tolerance(bits, low, high)).all(), err.max()
    np.testing.assert_array_equal(quantize(x, np.int64(bits), low, high), codes)  # numpy integers too


def test_finer_quantizer_is_more_accurate():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, 1000)
    errors = [np.abs(dequantize(quantize(x, b, 0.0, 1.0), b, 0.0, 1.0) - x).max() for b in (2, 6, 10)]
    assert errors[0] > 0.1 * 0.5 / 3 and errors[0] > errors[1] > errors[2]


def test_quantize_clips_out_of_range_values():
    low, high = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    x = np.array([[-3.0, 300.0], [2.0, -700.0], [1.0, -1.0]])
    codes = quantize(x, 8, low, high)
    np.testing.assert_array_equal(codes, [[0, 255], [255, 0], [255, 0]])  # no uint8 wrap-around
    np.testing.assert_allclose(dequantize(codes, 8, low, high), [[0, 1], [1, -1], [1, -1]])
    codes16 = quantize(np.array([-1e9, 1e9]), 16, 0.0, 1.0)
    np.testing.assert_array_equal(codes16, [0, 65535])


@pytest.mark.parametrize("bits", [0, 17, -8, 2.5, 8.0, True, False, "8", None])
def test_quantize_rejects_invalid_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize(np.zeros(3), bits, 0.0, 1.0)


def test_constant_dimension_round_trips_without_dividing_by_zero():
    x = np.array([[0.3, 2.0], [0.7, 2.0], [0.5, 2.0]], np.float32)
    low, high = x.min(axis=0), x.max(axis=0)
    for bits in (1, 8, 16):
        with np.errstate(all="raise"):  # a 0 / 0 would raise here
            codes = quantize(x, bits, low, high)
            back = dequantize(codes, bits, low, high)
        np.testing.assert_array_equal(codes[:, 1], 0)
        np.testing.assert_array_equal(back[:, 1], 2.0)
        assert (np.abs(back - x) <= _tolerance(bits, low, high)).all()


# --- the pairs file -------------------------------------------------------------------------------


def test_float_pairs_round_trip_exactly(tmp_path, csi):
    codewords = _codewords(40, 64)
    path = tmp_path / "pairs.npz"
    size = save_pairs(str(path), csi, codewords.astype(np.float64))
    assert size == path.stat().st_size
    got_csi, got_codewords = load_pairs(path)
    assert got_csi.dtype == got_codewords.dtype == np.float32
    np.testing.assert_array_equal(got_csi, csi)
    np.testing.assert_array_equal(got_codewords, codewords)
    with np.load(path) as raw:
        assert int(raw["version"]) == PAIRS_VERSION
        assert "codewords_bits" not in raw and "csi_bits" not in raw
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.npz"]  # no temporary left behind


@pytest.mark.parametrize("bits", [1, 8, 12])
def test_quantized_pairs_round_trip_within_half_step(tmp_path, csi, bits):
    codewords = _codewords(40, 64)
    path = tmp_path / "pairs.npz"
    save_pairs(path, csi, codewords, csi_bits=bits, codeword_bits=bits)
    got_csi, got_codewords = load_pairs(path)
    assert got_csi.dtype == got_codewords.dtype == np.float32
    assert got_csi.shape == csi.shape and got_codewords.shape == codewords.shape
    tolerance = _tolerance(bits, codewords.min(axis=0), codewords.max(axis=0))
    assert (np.abs(got_codewords.astype(np.float64) - codewords) <= tolerance).all()
    np.testing.assert_array_equal(got_codewords[:, -1], codewords[:, -1])  # the constant dimension
    assert (np.abs(got_csi.astype(np.float64) - csi) <= _tolerance(bits, 0.0, 1.0)).all()
    assert not np.array_equal(got_codewords, codewords)  # it was quantized
    with np.load(path) as raw:
        dtype = np.uint8 if bits <= 8 else np.uint16
        assert raw["codewords"].dtype == dtype and raw["csi"].dtype == dtype
        assert int(raw["codewords_bits"]) == int(raw["csi_bits"]) == bits


def test_quantized_file_sizes(tmp_path):
    n, d = 40, 256
    csi, codewords = _csi(n), _codewords(n, d)
    plain = save_pairs(tmp_path / "f32.npz", csi, codewords)
    q8 = save_pairs(tmp_path / "q8.npz", csi, codewords, codeword_bits=8)
    q16 = save_pairs(tmp_path / "q16.npz", csi, codewords, codeword_bits=16)
    both8 = save_pairs(tmp_path / "both8.npz", csi, codewords, codeword_bits=8, csi_bits=8)
    for name, size in (("f32", plain), ("q8", q8), ("q16", q16), ("both8", both8)):
        assert size == (tmp_path / f"{name}.npz").stat().st_size
    assert plain > q16 > q8 > both8
    # 8 bits save 3 of 4 bytes per codeword element, less a [D] float32 low and high (and a few
    # small headers); 16 bits save 2 of 4
    assert plain - q8 == pytest.approx(3 * n * d - 8 * d, abs=1500)
    assert plain - q16 == pytest.approx(2 * n * d - 8 * d, abs=1500)
    assert q8 - both8 == pytest.approx(3 * csi.size, abs=1500)


def test_load_pairs_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "pairs.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_pairs(path)
    with pytest.raises(FileNotFoundError):
        load_pairs(tmp_path)  # a folder is no file either


def test_load_pairs_rejects_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "pairs.npz"
    path.write_text("csi,codewords\n0.5,1.0\n")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_pairs(path)


def _write_empty(path):
    path.write_bytes(b"")


def _write_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 4), np.float32))


def _write_truncated_npz(path):
    save_pairs(path, _csi(2), _codewords(2, 8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("write", [_write_empty, _write_npy, _write_truncated_npz],
                         ids=["empty", "npy", "truncated-npz"])
def test_load_pairs_rejects_other_unreadable_files(tmp_path, write):
    path = tmp_path / "pairs.npz"
    write(path)
    with pytest.raises(ValueError, match="not a readable pairs file"):
        load_pairs(path)


def test_load_pairs_missing_codewords_is_a_key_error(tmp_path):
    path = tmp_path / "pairs.npz"
    np.savez(path, version=np.int64(PAIRS_VERSION), csi=_csi(4))
    with pytest.raises(KeyError, match="codewords"):
        load_pairs(path)
    np.savez(path, version=np.int64(PAIRS_VERSION), codewords=_codewords(4, 8))
    with pytest.raises(KeyError, match="csi"):
        load_pairs(path)


@pytest.mark.parametrize("version", [PAIRS_VERSION + 1, 0, None])
def test_load_pairs_rejects_other_versions(tmp_path, version):
    path = tmp_path / "pairs.npz"
    arrays = {"csi": _csi(4), "codewords": _codewords(4, 8)}
    if version is not None:
        arrays["version"] = np.int64(version)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="version"):
        load_pairs(path)


def test_load_pairs_rejects_inconsistent_arrays(tmp_path):
    path = tmp_path / "pairs.npz"
    good = {"version": np.int64(PAIRS_VERSION), "csi": _csi(4), "codewords": _codewords(4, 8)}
    np.savez(path, **good)
    assert load_pairs(path)[1].shape == (4, 8)  # the hand-written file is a valid one
    for bad in ({"codewords": _codewords(3, 8)}, {"codewords": _codewords(4, 8)[0]},
                {"csi": np.full((4, 2, 32, 32), 1.5, np.float32)},
                {"csi": np.full((4, 2, 16, 32), 0.5, np.float32)}):
        np.savez(path, **{**good, **bad})
        with pytest.raises(ValueError):
            load_pairs(path)
    nan = _codewords(4, 8)
    nan[1, 2] = np.nan
    np.savez(path, **{**good, "codewords": nan})
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_pairs(path)


@pytest.mark.parametrize("case", ["nan", "inf", "short", "long", "1d", "csi_above_1", "csi_below_0"])
def test_save_pairs_validates_and_leaves_the_old_file(tmp_path, case):
    path = tmp_path / "pairs.npz"
    csi, codewords = _csi(6), _codewords(6, 8)
    save_pairs(path, csi, codewords)
    before = path.read_bytes()
    bad_csi, bad_codewords = csi.copy(), codewords.copy()
    if case == "nan":
        bad_codewords[2, 3] = np.nan
    elif case == "inf":
        bad_codewords[0, 0] = -np.inf
    elif case == "short":
        bad_codewords = bad_codewords[:5]
    elif case == "long":
        bad_codewords = np.concatenate([bad_codewords, bad_codewords[:1]])
    elif case == "1d":
        bad_codewords = bad_codewords[:, 0]
    elif case == "csi_above_1":
        bad_csi[1, 0, 0, 0] = 1.01
    else:
        bad_csi[1, 0, 0, 0] = -0.01
    with pytest.raises(ValueError):
        save_pairs(path, bad_csi, bad_codewords, codeword_bits=8)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.npz"]


def test_save_pairs_failing_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "pairs.npz"
    save_pairs(path, _csi(6), _codewords(6, 8))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="bits"):  # invalid bits, found while packing
        save_pairs(path, _csi(6), _codewords(6, 8), codeword_bits=0)
    assert path.read_bytes() == before

    def half_write(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_pairs(path, _csi(3, seed=9), _codewords(3, 8))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.npz"]


def test_export_pairs_writes_the_encoders_codewords(tmp_path, teacher, csi, teacher_codewords):
    path = tmp_path / "bs_pairs.npz"
    size = export_pairs(teacher.encoder, csi, path, batch_size=16)
    assert size == path.stat().st_size
    got_csi, got_codewords = load_pairs(path)
    np.testing.assert_array_equal(got_csi, csi)
    assert got_codewords.shape == (40, 64) and got_codewords.std() > 0
    np.testing.assert_allclose(got_codewords, teacher_codewords, rtol=1e-5, atol=1e-5)

    export_pairs(teacher.encoder, csi, path, codeword_bits=8)
    got_codewords = load_pairs(path)[1]
    tolerance = _tolerance(8, teacher_codewords.min(axis=0), teacher_codewords.max(axis=0))
    assert (np.abs(got_codewords - teacher_codewords) <= tolerance + 1e-5).all()


# --- each party's training step -------------------------------------------------------------------


def test_fit_encoder_on_pairs(tmp_path, csi, teacher_codewords):
    student = create_model("csinet", cr=32)
    encoder = student.encoder
    initial = [w.numpy().copy() for w in encoder.trainable_weights]
    decoder_before = _weights(student.decoder)
    trained, history = fit_encoder_on_pairs(encoder, csi, teacher_codewords, out_dir=tmp_path,
                                            config=TINY, verbose=0)
    assert trained is encoder
    moved = [not np.allclose(a, w.numpy()) for a, w in zip(initial, encoder.trainable_weights)]
    assert all(moved)
    for a, b in zip(decoder_before, _weights(student.decoder)):  # only the encoder is trained
        np.testing.assert_array_equal(a, b)
    assert len(history.history["val_loss"]) == 2
    assert "val_nmse" not in history.history  # the output is a codeword, not CSI
    for name in ("best.keras", "final.keras", "log.csv", "config.json"):
        assert (tmp_path / name).is_file()
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["role"] == "ue" and record["pairs"] == 40 and record["validation_pairs"] == 4

    best = keras.saving.load_model(tmp_path / "best.keras")
    assert tuple(best.input_shape) == (None, 2, 32, 32) and tuple(best.output_shape) == (None, 64)
    # validation = the last 10 % of the pairs; best.keras holds the lowest val_loss (codeword MSE)
    mse = np.mean((model_output(best, csi[36:]) - teacher_codewords[36:]) ** 2)
    assert mse == pytest.approx(min(history.history["val_loss"]), rel=1e-3)


@pytest.mark.parametrize("fit", [fit_encoder_on_pairs, fit_decoder_on_pairs])
def test_fit_on_pairs_rejects_mismatched_codeword_length(tmp_path, csi, fit):
    model = create_model("csinet", cr=32)  # codewords of 64
    wrong = np.zeros((40, 32), np.float32)
    with pytest.raises(ValueError, match="codeword length"):
        if fit is fit_encoder_on_pairs:
            fit(model.encoder, csi, wrong, out_dir=tmp_path, config=ONE, verbose=0)
        else:
            fit(model.decoder, wrong, csi, out_dir=tmp_path, config=ONE, verbose=0)
    assert not any(tmp_path.iterdir())


def test_fit_decoder_on_pairs(tmp_path, csi, teacher, teacher_codewords):
    decoder = copy_model(teacher.decoder)
    initial = [w.numpy().copy() for w in decoder.trainable_weights]
    trained, history = fit_decoder_on_pairs(decoder, teacher_codewords, csi, out_dir=tmp_path,
                                            config=TINY, verbose=0)
    assert trained is decoder
    moved = [not np.allclose(a, w.numpy()) for a, w in zip(initial, decoder.trainable_weights)]
    assert all(moved)
    for key in ("loss", "val_loss", "val_nmse", "val_rho"):
        assert len(history.history[key]) == 2
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["role"] == "bs" and record["step"] == "decoder"

    best = keras.saving.load_model(tmp_path / "best.keras")
    assert tuple(best.input_shape) == (None, 64) and tuple(best.output_shape) == (None, 2, 32, 32)
    pred = model_output(best, teacher_codewords[36:])
    assert nmse_db(csi[36:], pred) == pytest.approx(min(history.history["val_nmse"]), abs=1e-3)


# --- the whole runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ip_kd_run(tmp_path_factory, teacher, csi):
    out = tmp_path_factory.mktemp("ip_kd")
    teacher_before = _weights(teacher)
    student_encoder = create_model("csinet", cr=32).encoder
    model, sizes = fit_ip_kd(teacher, student_encoder, csi, out_dir=out, config=ONE, codeword_bits=8,
                             verbose=0)
    return out, model, sizes, teacher_before


def test_ip_kd_leaves_the_teacher_unchanged(ip_kd_run, teacher):
    _, _, _, teacher_before = ip_kd_run
    after = _weights(teacher)
    assert len(after) == len(teacher_before)
    for a, b in zip(teacher_before, after):  # trainable and not (batch-norm statistics)
        np.testing.assert_array_equal(a, b)


def test_ip_kd_pairs_files_hold_each_partys_codewords(ip_kd_run, teacher, csi, teacher_codewords):
    out, _, sizes, _ = ip_kd_run
    assert sizes == {"bs_pairs_bytes": (out / "bs_pairs.npz").stat().st_size,
                     "ue_pairs_bytes": (out / "ue_pairs.npz").stat().st_size}
    ue_encoder = keras.saving.load_model(out / "ue" / "best.keras")
    ue_codewords = model_output(ue_encoder, csi)
    for name, expected in (("bs_pairs.npz", teacher_codewords), ("ue_pairs.npz", ue_codewords)):
        with np.load(out / name) as raw:
            assert raw["codewords"].dtype == np.uint8 and int(raw["codewords_bits"]) == 8
        got_csi, got_codewords = load_pairs(out / name)
        np.testing.assert_array_equal(got_csi, csi)  # CSI not quantized
        tolerance = _tolerance(8, expected.min(axis=0), expected.max(axis=0)) + 1e-5
        assert (np.abs(got_codewords - expected) <= tolerance).all(), name
    assert not np.allclose(ue_codewords, teacher_codewords, atol=1e-2)  # two different encoders


def test_ip_kd_joins_the_ue_encoder_and_the_finetuned_bs_decoder(ip_kd_run, teacher, csi,
                                                                teacher_codewords):
    out, model, _, _ = ip_kd_run
    assert isinstance(model, ComposedAutoencoder)
    for run in ("ue", "bs"):
        assert (out / run / "log.csv").is_file()
    ue_encoder = keras.saving.load_model(out / "ue" / "best.keras")
    bs_decoder = keras.saving.load_model(out / "bs" / "best.keras")
    codewords = model_output(model.encoder, csi)
    np.testing.assert_allclose(codewords, model_output(ue_encoder, csi), atol=1e-5)
    reconstructed = model_output(bs_decoder, codewords)
    np.testing.assert_allclose(model_output(model.decoder, codewords), reconstructed, atol=1e-5)
    np.testing.assert_allclose(model_output(model, csi), reconstructed, atol=1e-5)
    # the BS decoder was fine-tuned: it differs from the teacher's
    assert not np.allclose(reconstructed, model_output(teacher.decoder, codewords), atol=1e-4)


def test_ip_kd_result_saves_and_loads(ip_kd_run, csi, tmp_path):
    _, model, _, _ = ip_kd_run
    model.save(tmp_path / "ip_kd.keras")
    loaded = keras.saving.load_model(tmp_path / "ip_kd.keras")
    assert isinstance(loaded, ComposedAutoencoder) and loaded.codeword_dim == 64
    np.testing.assert_allclose(model_output(loaded, csi), model_output(model, csi), atol=1e-6)


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory, csi):
    out = tmp_path_factory.mktemp("sequential")
    ue_encoder = create_model("csinet", cr=32).encoder
    initial = [w.numpy().copy() for w in ue_encoder.trainable_weights]
    model = fit_sequential(lambda: create_model("csinet", cr=32), ue_encoder, csi, _csi(10, seed=1),
                           out_dir=out, config=ONE, verbose=0)
    return out, model, ue_encoder, initial


def test_sequential_deploys_the_bs_decoder_as_trained(sequential_run, csi):
    out, model, _, _ = sequential_run
    assert isinstance(model, ComposedAutoencoder)
    bs = keras.saving.load_model(out / "bs" / "best.keras")
    codewords = model_output(bs.encoder, csi)
    np.testing.assert_allclose(model_output(model.decoder, codewords),
                               model_output(bs.decoder, codewords), atol=1e-6)
    # the pairs the UE trained on are the BS encoder's codewords (float, not quantized)
    got_csi, got_codewords = load_pairs(out / "bs_pairs.npz")
    np.testing.assert_array_equal(got_csi, csi)
    np.testing.assert_allclose(got_codewords, codewords, atol=1e-5)
    assert not (out / "bs_pairs.npz").with_name("ue_pairs.npz").exists()  # nothing sent back


def test_sequential_deploys_the_ue_encoder(sequential_run, csi):
    out, model, ue_encoder, initial = sequential_run
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(initial, ue_encoder.trainable_weights))
    ue_best = keras.saving.load_model(out / "ue" / "best.keras")
    np.testing.assert_allclose(model_output(model.encoder, csi), model_output(ue_best, csi),
                               atol=1e-6)
    bs = keras.saving.load_model(out / "bs" / "best.keras")
    assert not np.allclose(model_output(model.encoder, csi), model_output(bs.encoder, csi),
                           atol=1e-3)  # the UE's own encoder, not a copy of the BS's
