"""A model that is not a zoo autoencoder, given as a teacher, is refused with a message that says so
(issue 16, item 4): the KD trainers, fit_method and `mimokd distill`."""

import keras
import numpy as np
import pytest

from mimokd.cli import main
from mimokd.train.codeword_mimic import fit_codeword_mimic
from mimokd.train.distill import autoencoder_kd, encoder_kd, fit_distillation, output_kd
from mimokd.train.ip_kd import fit_ip_kd
from mimokd.train.methods import NEEDS_TEACHER, fit_method
from mimokd.zoo import check_teacher, create_model

EXPECTED = "Expected a mimokd.zoo.CsiAutoencoder with .encoder and .decoder"
CSI = np.full((4, 2, 32, 32), 0.5, np.float32)


@pytest.fixture(scope="module")
def plain():
    """A plain Keras model of an autoencoder's shapes: CSI [batch, 2, 32, 32] -> CSI."""
    inputs = keras.Input((2, 32, 32))
    return keras.Model(inputs, keras.layers.Activation("sigmoid")(inputs), name="plain")


@pytest.fixture(scope="module")
def student():
    return create_model("crnet_se", cr=32)


def test_a_zoo_autoencoder_passes(student):
    check_teacher(student)


def test_the_message_says_what_was_given_and_what_is_expected(plain):
    with pytest.raises(ValueError) as error:
        check_teacher(plain, origin="t.keras")
    assert str(error.value).startswith("The teacher t.keras is not a zoo autoencoder: it is a keras")
    assert "Functional 'plain' (None, 2, 32, 32) -> (None, 2, 32, 32)" in str(error.value)
    assert EXPECTED in str(error.value)
    with pytest.raises(ValueError, match="it is a builtins.str. " + EXPECTED):
        check_teacher("crnet")


@pytest.mark.parametrize("call", [
    lambda t, s, out: output_kd(t, s),
    lambda t, s, out: autoencoder_kd(t, s),
    lambda t, s, out: encoder_kd(t, s),
    lambda t, s, out: fit_distillation("output-kd", t, s, CSI, CSI, out_dir=out),
    lambda t, s, out: fit_codeword_mimic(t, s, CSI, CSI, out_dir=out),
    lambda t, s, out: fit_ip_kd(t, s.encoder, CSI, out_dir=out),
], ids=["output_kd", "autoencoder_kd", "encoder_kd", "fit_distillation", "fit_codeword_mimic", "fit_ip_kd"])
def test_the_kd_trainers_refuse_it(call, plain, student, tmp_path):
    with pytest.raises(ValueError, match="The teacher is not a zoo autoencoder"):
        call(plain, student, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.parametrize("method", NEEDS_TEACHER)
def test_fit_method_refuses_it(method, plain, tmp_path):
    with pytest.raises(ValueError, match="The teacher is not a zoo autoencoder"):
        fit_method(method, "crnet_se", 32, CSI, CSI, out_dir=tmp_path / "run", teacher=plain)
    assert not (tmp_path / "run").exists()


def test_mimokd_distill_refuses_it_with_status_1(plain, tmp_path, capsys):
    path = tmp_path / "plain.keras"
    plain.save(path)
    out = tmp_path / "run"
    assert main(["distill", "--method", "output-kd", "--teacher", str(path), "--student", "crnet_se",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: The teacher {path} is not a zoo autoencoder: it is a keras" in err and EXPECTED in err
    assert "Traceback" not in err and not out.exists()
