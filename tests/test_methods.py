"""mimokd.train.methods.fit_method: one call per training method."""

import numpy as np

from mimokd.train import TrainConfig
from mimokd.train.methods import fit_method


def test_fit_method_is_reproducible_from_its_seed_student_initialisation_included(tmp_path):
    """Also: ``out_dir`` may be a ``str`` (the run directories here are)."""
    csi = np.random.default_rng(0).random((8, 2, 32, 32), dtype=np.float32)
    runs = [fit_method("vanilla", "csinet", 64, csi, csi[:4], out_dir=str(tmp_path / name), verbose=0,
                       config=TrainConfig(epochs=1, batch_size=4, seed=seed))[0]
            for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    same = [np.array_equal(x, y) for x, y in zip(runs[0].get_weights(), runs[1].get_weights())]
    other = [np.array_equal(x, y) for x, y in zip(runs[0].get_weights(), runs[2].get_weights())]
    assert all(same) and not all(other)


def test_fit_method_starts_from_init_and_refuses_another_architecture(tmp_path):
    """``init=``: at learning rate 0 the trained weights are exactly ``init``'s (BatchNorm's moving
    statistics excepted: they follow the data), not the seed's initialisation; ``init`` itself is
    not changed."""
    import keras
    import pytest

    from mimokd.zoo import create_model

    csi = np.random.default_rng(1).random((8, 2, 32, 32), dtype=np.float32)
    keras.utils.set_random_seed(7)
    init = create_model("csinet", cr=64)
    before = [w.numpy().copy() for w in init.trainable_weights]
    frozen = TrainConfig(epochs=1, batch_size=4, seed=3, peak_lr=0.0, floor_lr=0.0)
    trained = fit_method("vanilla", "csinet", 64, csi, csi[:4], out_dir=tmp_path / "a", init=init, verbose=0,
                         config=frozen)[0]
    fresh = fit_method("vanilla", "csinet", 64, csi, csi[:4], out_dir=tmp_path / "b", verbose=0, config=frozen)[0]
    for got, want, other in zip(trained.trainable_weights, before, fresh.trainable_weights):
        np.testing.assert_array_equal(got.numpy(), want)
        if other.path.endswith("kernel"):  # random initialisers (biases start at 0 either way)
            assert not np.array_equal(other.numpy(), want), other.path
    for got, want in zip(init.trainable_weights, before):
        np.testing.assert_array_equal(got.numpy(), want)
    with pytest.raises(ValueError, match="init= must be a csinet network like the student"):
        fit_method("vanilla", "csinet", 64, csi, csi[:4], out_dir=tmp_path / "c", init=create_model("crnet", cr=64),
                   verbose=0, config=frozen)


def test_fit_method_init_at_another_ratio_copies_all_but_the_codeword_layers(tmp_path):
    """From a 1/32 network into a 1/64 one: every weight of the same shape is init's (learning rate
    0), the encoder's and decoder's dense layers (2048 x 32 there, 2048 x 64 in init) are the seed's."""
    import keras

    from mimokd.zoo import create_model

    csi = np.random.default_rng(2).random((8, 2, 32, 32), dtype=np.float32)
    keras.utils.set_random_seed(7)
    init = create_model("csinet", cr=32)
    frozen = TrainConfig(epochs=1, batch_size=4, seed=3, peak_lr=0.0, floor_lr=0.0)
    trained = fit_method("vanilla", "csinet", 64, csi, csi[:4], out_dir=tmp_path / "a", init=init, verbose=0,
                         config=frozen)[0]
    keras.utils.set_random_seed(3)
    seed = create_model("csinet", cr=64)
    own = {w.path: w.numpy() for w in trained.trainable_weights}
    given = {w.path: w.numpy() for w in init.trainable_weights}
    fresh = {w.path: w.numpy() for w in seed.trainable_weights}
    differing = sorted(p for p in own if own[p].shape != given[p].shape)
    assert differing == ["dec_dense/kernel", "enc_dense/bias", "enc_dense/kernel"]
    for path, value in own.items():
        np.testing.assert_array_equal(value, fresh[path] if path in differing else given[path], err_msg=path)
