"""Tests of the dataset API: the source registry, load_csi's resolution rules and make_dataset."""

import numpy as np
import pytest

from mimokd.channels import builtin, datasets
from mimokd.channels.cost2100 import save_cost2100
from mimokd.channels.datasets import list_sources, load_csi, make_dataset, register_source, split_seed


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so that a test's sources do not outlive it."""
    monkeypatch.setattr(datasets, "_SOURCES", dict(datasets._SOURCES))
    return datasets._SOURCES


def _csi(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 2, 32, 32)).astype(np.float32)


def _batches(dataset):
    return [(x.copy(), y.copy()) for x, y in dataset.as_numpy_iterator()]


# ----------------------------------------------------------------------------------------------
# sources
# ----------------------------------------------------------------------------------------------
def test_builtin_sources_are_registered():
    assert {"builtin-indoor", "builtin-outdoor"} <= set(list_sources())


def test_builtin_source_uses_one_derived_seed_per_split():
    train = load_csi("builtin-indoor", split="train", num_samples=40, seed=3)
    val = load_csi("builtin-indoor", split="val", num_samples=40, seed=3)
    test = load_csi("builtin-indoor", split="test", num_samples=40, seed=3)
    assert train.shape == (40, 2, 32, 32) and train.dtype == np.float32
    np.testing.assert_array_equal(
        train, builtin.generate_csi(40, "indoor", seed=split_seed(3, "train"), progress=False)
    )
    # no sample in common between the splits
    flat = [a.reshape(40, -1) for a in (train, val, test)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not (flat[i][:, None, :] == flat[j][None, :, :]).all(axis=2).any()
    np.testing.assert_array_equal(train, load_csi("builtin-indoor", split="train", num_samples=40, seed=3))
    assert not np.allclose(train, load_csi("builtin-indoor", split="train", num_samples=40, seed=4))


def test_split_seeds_differ():
    seeds = {split_seed(0, s) for s in ("train", "val", "test")} | {split_seed(1, s) for s in ("train", "val", "test")}
    assert len(seeds) == 6


def test_unknown_source_lists_the_known_ones():
    known = r"Unknown CSI source.*'builtin-indoor', 'builtin-outdoor'.*Received: source='cost9999'"
    with pytest.raises(ValueError, match=known):
        load_csi("cost9999")
    with pytest.raises(FileNotFoundError, match=r"No such \.mat file or folder"):
        load_csi("data/DATA_Htrainin.mat")
    with pytest.raises(TypeError, match="source name or a path"):
        load_csi(3)


def test_bad_split_num_samples_seed_and_scenario():
    with pytest.raises(ValueError, match=r"Unknown split.*Received: split='validation'"):
        load_csi("builtin-indoor", split="validation")
    with pytest.raises(ValueError, match="num_samples=0"):
        load_csi("builtin-indoor", num_samples=0)
    with pytest.raises(ValueError, match="seed=-2"):
        load_csi("builtin-indoor", num_samples=5, seed=-2)
    with pytest.raises(ValueError, match=r"is the indoor scenario.*Received: scenario='outdoor'"):
        load_csi("builtin-indoor", num_samples=5, scenario="outdoor")
    with pytest.raises(ValueError, match=r"Unknown scenario.*Received: scenario='urban'"):
        load_csi("builtin-indoor", num_samples=5, scenario="urban")
    # a scenario that agrees with the source's name is accepted
    np.testing.assert_array_equal(load_csi("builtin-outdoor", num_samples=5, scenario="outdoor"),
                                  load_csi("builtin-outdoor", num_samples=5))


def test_register_source(registry):
    calls = []

    def constant(*, split, num_samples, seed, progress):
        calls.append((split, num_samples, seed))
        return np.full((num_samples or 7, 2, 32, 32), 0.5, np.float32)

    register_source("constant", constant)
    assert "constant" in list_sources()
    assert load_csi("constant", split="val", seed=9).shape == (7, 2, 32, 32)
    assert calls == [("val", None, 9)]
    with pytest.raises(ValueError, match="already registered"):
        register_source("constant", constant)
    register_source("constant", lambda **kw: np.full((2, 2, 32, 32), 2.0), overwrite=True)
    with pytest.raises(ValueError, match=r"source 'constant'.*\[0, 1\]"):
        load_csi("constant")
    with pytest.raises(ValueError, match="path separators"):
        register_source("a/b", constant)
    with pytest.raises(TypeError, match="callable"):
        register_source("nothing", None)


def test_a_source_returning_the_wrong_count_is_caught(registry):
    register_source("short", lambda **kw: np.full((3, 2, 32, 32), 0.5, np.float32))
    with pytest.raises(ValueError, match="returned 3 samples instead of the 5"):
        load_csi("short", num_samples=5)


def test_mat_file_source(tmp_path):
    csi = _csi(12)
    path = save_cost2100(tmp_path / "mine.mat", csi)
    np.testing.assert_array_equal(load_csi(path), csi)
    np.testing.assert_array_equal(load_csi(str(path), num_samples=5), csi[:5])
    with pytest.raises(ValueError, match="holds 12 samples, fewer than asked for"):
        load_csi(path, num_samples=13)
    np.testing.assert_array_equal(load_csi(path, scenario="indoor"), csi)  # unused by a file


def test_folder_source(tmp_path):
    save_cost2100(tmp_path / "DATA_Htrainin.mat", _csi(8, 0))
    save_cost2100(tmp_path / "DATA_Hvalin.mat", _csi(6, 1))
    save_cost2100(tmp_path / "DATA_Hvalout.mat", _csi(5, 2))
    np.testing.assert_array_equal(load_csi(tmp_path, split="val", scenario="indoor"), _csi(6, 1))
    np.testing.assert_array_equal(load_csi(str(tmp_path), split="val", scenario="outdoor"), _csi(5, 2))
    np.testing.assert_array_equal(load_csi(tmp_path, scenario="indoor", num_samples=3), _csi(8, 0)[:3])
    with pytest.raises(ValueError, match=r"needs scenario='indoor' or 'outdoor'.*Received: scenario=None"):
        load_csi(tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match=r"DATA_Htestin\.mat.*DATA_Htrainin\.mat"):
        load_csi(tmp_path, split="test", scenario="indoor")


# ----------------------------------------------------------------------------------------------
# make_dataset
# ----------------------------------------------------------------------------------------------
def test_make_dataset_yields_autoencoder_pairs_in_order():
    csi = _csi(10)
    batches = _batches(make_dataset(csi, batch_size=4))
    assert [x.shape[0] for x, _ in batches] == [4, 4, 2]
    for x, y in batches:
        assert x.dtype == np.float32 and x.shape[1:] == (2, 32, 32)
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), csi)


def test_make_dataset_shuffle_is_deterministic_given_the_seed():
    csi = _csi(64)
    first = make_dataset(csi, batch_size=16, shuffle=True, seed=5)
    again = make_dataset(csi, batch_size=16, shuffle=True, seed=5)
    other = make_dataset(csi, batch_size=16, shuffle=True, seed=6)
    epochs = [np.concatenate([x for x, _ in _batches(first)]) for _ in range(2)]
    epochs_again = [np.concatenate([x for x, _ in _batches(again)]) for _ in range(2)]
    for a, b in zip(epochs, epochs_again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(epochs[0], csi)  # shuffled ...
    assert not np.array_equal(epochs[0], epochs[1])  # ... anew every epoch ...
    # ... a permutation of the same samples, and another seed gives another order
    np.testing.assert_array_equal(np.sort(epochs[0].reshape(64, -1), axis=0), np.sort(csi.reshape(64, -1), axis=0))
    assert not np.array_equal(np.concatenate([x for x, _ in _batches(other)]), epochs[0])


def test_make_dataset_with_targets_and_drop_remainder():
    csi = _csi(10)
    codes = np.arange(10 * 3, dtype=np.float64).reshape(10, 3)
    batches = _batches(make_dataset(csi, batch_size=4, targets=codes, shuffle=True, seed=1, drop_remainder=True))
    assert len(batches) == 2
    for x, y in batches:
        assert y.dtype == np.float32 and y.shape == (4, 3)
        # each target row stays with its own CSI sample
        rows = (y[:, 0] / 3).astype(int)
        np.testing.assert_array_equal(x, csi[rows])


@pytest.mark.parametrize(
    "csi, kwargs, error, match",
    [
        (np.full((4, 32, 32, 2), 0.5, np.float32), {}, ValueError, r"Received: csi.shape=\(4, 32, 32, 2\)"),
        (np.ones((4, 2, 32, 32), np.int32), {}, TypeError, "real floating"),
        (np.full((4, 2, 32, 32), 1.5, np.float32), {}, ValueError, r"\[0, 1\]"),
        (np.full((4, 2, 32, 32), np.nan, np.float32), {}, ValueError, "NaN"),
        (np.full((4, 2, 32, 32), 0.5, np.float32), {"batch_size": 0}, ValueError, "batch_size=0"),
        (np.full((4, 2, 32, 32), 0.5, np.float32), {"targets": np.zeros(3)}, ValueError,
         r"one entry per CSI sample \(4\)"),
        (np.full((4, 2, 32, 32), 0.5, np.float32), {"targets": np.array(["a"] * 4)}, TypeError, "numeric"),
    ],
)
def test_make_dataset_validates_up_front(csi, kwargs, error, match):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        make_dataset(csi, **kwargs)
