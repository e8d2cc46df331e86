"""Every registered model: build, call, predict, config round trip, .keras save/load."""

import keras
import numpy as np
import pytest

from mimokd.zoo import CRNet, CsiAutoencoder, create_model, list_models, model_pairs, teacher_of

ALL = list_models()


def test_registry_lists_the_paper_models():
    assert set(ALL) == {"csinet", "csinet_authors", "crnet", "bcrnet", "crnet_cui", "crnet_se"}
    assert list_models("crnet*") == ["crnet", "crnet_cui", "crnet_se"]


@pytest.mark.parametrize("name", ALL)
def test_build_call_predict_save_load(name, csi_batch, tmp_path):
    model = create_model(name, cr=8)
    assert isinstance(model, CsiAutoencoder)
    out = model(csi_batch, training=False)
    assert out.shape == csi_batch.shape
    pred = model.predict(csi_batch, verbose=0)
    assert np.all((pred >= 0) & (pred <= 1))
    np.testing.assert_allclose(pred, keras.ops.convert_to_numpy(out), atol=1e-6)

    # encoder and decoder are the autoencoder's halves, sharing its weights
    code = model.encoder.predict(csi_batch, verbose=0)
    assert code.shape == (4, 2 * 32 * 32 // 8) == (4, model.codeword_dim)
    np.testing.assert_allclose(model.decoder.predict(code, verbose=0), pred, atol=1e-5)
    assert {id(w) for w in model.encoder.weights} <= {id(w) for w in model.weights}

    clone = model.__class__.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.predict(csi_batch, verbose=0), pred, atol=1e-6)
    np.testing.assert_allclose(
        loaded.encoder.predict(csi_batch, verbose=0), code, atol=1e-6
    )


@pytest.mark.parametrize("cr", [4, 8, 16, 32, 64])
def test_every_ratio_gives_its_codeword(cr):
    model = create_model("crnet_se", cr=cr)
    assert model.encoder.output.shape == (None, 2048 // cr)


@pytest.mark.parametrize("shape", [(32, 64), (64, 32), (64, 64)])
def test_other_csi_sizes(shape):
    h, w = shape
    model = create_model("crnet", cr=16, height=h, width=w)
    x = np.full((2, 2, h, w), 0.5, "float32")
    assert model(x).shape == (2, 2, h, w)
    assert model.encoder.output.shape[-1] == 2 * h * w // 16


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Unknown model name.*Received: name='crnett'"):
        create_model("crnett")
    with pytest.raises(ValueError, match="divisible by the compression ratio.*cr=3"):
        create_model("crnet", cr=3)
    with pytest.raises(ValueError, match="positive integer.*cr=0"):
        create_model("crnet", cr=0)
    with pytest.raises(ValueError, match="encoder.*Received: encoder='big'"):
        CRNet(encoder="big")
    with pytest.raises(ValueError, match="no teacher"):
        teacher_of("crnet")


def test_pairs_of_the_papers():
    assert teacher_of("bcrnet") == "crnet"
    assert teacher_of("crnet_se") == "crnet_cui"
    assert model_pairs() == [("crnet", "bcrnet"), ("crnet_cui", "crnet_se")]
    # a teacher and its student share the decoder architecture, not the encoder
    t, s = create_model("crnet", cr=4), create_model("bcrnet", cr=4)
    assert t.decoder.count_params() == s.decoder.count_params()


def test_variant_options_change_the_graph():
    base = create_model("crnet_cui", cr=16)
    wide = create_model("crnet_cui", cr=16, crblock_width=16)
    assert wide.decoder.count_params() > base.decoder.count_params()
    assert base.encoder.count_params() == wide.encoder.count_params()
    assert any(w.name == "scale" for w in base.decoder.weights)  # ReZero scalars
    assert not any(w.name == "scale" for w in create_model("crnet").decoder.weights)
