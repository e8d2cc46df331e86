"""The shard input pipeline (issue 17, item 3): shard_dataset streams memory-mapped, checked shards
in batches, every sample once per epoch, shuffled across shards in an order set by (seed, epoch),
with the values of load_shards; damaged or missing shards are still named.

One tiny umi-los dataset (48 samples in 6 shards of 8; generating it takes well under a second).
"""

import hashlib
import re
import shutil

import numpy as np
import pytest

from mimokd.channels.shards import load_shards, read_manifest, shard_dataset, shard_name, write_dataset

SHARDS, PER_SHARD = 6, 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The train split: 48 umi-los samples in 6 shards of 8 (treat as read-only)."""
    directory = tmp_path_factory.mktemp("pipeline") / "umi"
    write_dataset("umi-los", directory, samples=SHARDS * PER_SHARD, shards=SHARDS, seed=5, progress=False)
    return directory


@pytest.fixture(scope="module")
def reference(data):
    return load_shards(data, "train")


def _epochs(dataset, count):
    """``count`` iterations of a dataset of ``(x, x)`` batches, each as float32 ``[N, 2, 32, 32]``."""
    epochs = []
    for _ in range(count):
        batches = list(dataset.as_numpy_iterator())
        assert all(np.array_equal(x, y) for x, y in batches)
        epochs.append(np.concatenate([x for x, _ in batches]))
    return epochs


def _indices(streamed, reference):
    """The drop index (row of ``reference``) of every streamed sample."""
    rows = {row.tobytes(): i for i, row in enumerate(reference)}
    assert len(rows) == len(reference)  # the samples are distinct, so values identify them
    return np.array([rows[row.tobytes()] for row in streamed])


def test_in_order_stream_equals_load_shards(data, reference):
    batches = list(shard_dataset(data, "train", batch_size=5).as_numpy_iterator())
    assert [x.shape for x, _ in batches] == [(5, 2, 32, 32)] * 9 + [(3, 2, 32, 32)]  # batches span shards
    assert all(x.dtype == np.float32 for x, _ in batches)
    for epoch in _epochs(shard_dataset(data, "train", batch_size=5), 2):
        np.testing.assert_array_equal(epoch, reference)


@pytest.mark.parametrize("shuffle_buffer", [1, 16, 10_000])  # windows of 2, 2 and all 6 shards
def test_shuffled_epochs_hold_every_sample_once_in_new_orders(data, reference, shuffle_buffer):
    dataset = shard_dataset(data, "train", batch_size=7, shuffle=True, seed=3, shuffle_buffer=shuffle_buffer)
    assert [len(x) for x, _ in dataset.as_numpy_iterator()] == [7] * 6 + [6]
    orders = [_indices(epoch, reference) for epoch in _epochs(dataset, 3)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(len(reference)))  # values of load_shards, once each
    assert len({order.tobytes() for order in orders}) == 3  # every epoch another order


def test_the_order_follows_from_the_seed_and_epoch(data, reference):
    first = _epochs(shard_dataset(data, "train", batch_size=8, shuffle=True, seed=11), 3)
    again = _epochs(shard_dataset(data, "train", batch_size=8, shuffle=True, seed=11), 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = _epochs(shard_dataset(data, "train", batch_size=8, shuffle=True, seed=12), 1)[0]
    assert not np.array_equal(other, first[0])
    resumed = _epochs(shard_dataset(data, "train", batch_size=8, shuffle=True, seed=11, initial_epoch=2), 1)[0]
    np.testing.assert_array_equal(resumed, first[2])  # iteration k is epoch initial_epoch + k


def test_shuffling_crosses_shard_boundaries(data, reference):
    """Windows of 2 shards: each window's 16 positions mix the samples of both its shards."""
    dataset = shard_dataset(data, "train", batch_size=4, shuffle=True, seed=0, shuffle_buffer=PER_SHARD * 2)
    for order in (_indices(epoch, reference) for epoch in _epochs(dataset, 2)):
        shards = order // PER_SHARD
        windows = shards.reshape(SHARDS // 2, 2 * PER_SHARD)
        assert all(len(set(window)) == 2 for window in windows)  # two shards per window
        assert all((window[:PER_SHARD] != window[0]).any() for window in windows)  # not one shard, then the other


def _damage(directory, k):
    path = directory / shard_name("train", k, SHARDS)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path, hashlib.sha256(bytes(raw)).hexdigest()


@pytest.mark.parametrize("shuffle", [False, True])
def test_damaged_or_missing_shards_are_named(data, tmp_path, shuffle):
    copy = shutil.copytree(data, tmp_path / "copy")
    path, found = _damage(copy, 4)
    recorded = read_manifest(copy)["splits"]["train"]["files"][path.name]["sha256"]
    expected = f"{path} is damaged: its sha256 is {found} where {copy / 'manifest.json'} records {recorded}"
    with pytest.raises(Exception, match=re.escape(expected)):
        list(shard_dataset(copy, "train", batch_size=8, shuffle=shuffle).as_numpy_iterator())
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"train shards [4] of 6 are missing ({path.name})")):
        shard_dataset(copy, "train", batch_size=8, shuffle=shuffle)


def test_bad_arguments_are_refused(data):
    for kwargs, name in [({"batch_size": 0}, "batch_size"), ({"batch_size": 4, "seed": -1}, "seed"),
                         ({"batch_size": 4, "shuffle": True, "shuffle_buffer": 0}, "shuffle_buffer"),
                         ({"batch_size": 4, "initial_epoch": -1}, "initial_epoch")]:
        with pytest.raises(ValueError, match=name):
            shard_dataset(data, "train", **kwargs)
