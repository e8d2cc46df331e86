"""Tests of the dataset generation: recipes, sharded writer, statistics, load_csi and `mimokd data`.

Sample counts stay small (tens of drops of the fast COST 2100 indoor scenario, `umi-los` for the
38.901 path) so that the file runs in well under a minute on two cores.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import mimokd
from mimokd.channels import cost2100_model, cost2100_stats, load_cost2100, load_hf
from mimokd.channels import shards as shards_module
from mimokd.channels.dataset_stats import channel_statistics, csi_power_map
from mimokd.channels.datasets import load_csi
from mimokd.channels.recipes import RECIPES, CsiRecipe, generate_samples, get_recipe
from mimokd.channels.shards import (
    load_shards,
    read_manifest,
    shard_dataset,
    shard_name,
    shard_ranges,
    write_dataset,
)
from mimokd.cli import main
from mimokd.rng import split_seed

INDOOR = "cost2100-indoor"
SEED = 5
# The base dataset: the splits, their sizes and shard counts.
BASE_SPLITS = {"train": (30, 3), "val": (12, 2), "test": (10, 2)}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _hand_angular_delay(recipe, start, n, seed, **overrides):
    """A COST 2100 recipe's complex angular-delay matrices [n, 32, 32], computed step by step with numpy."""
    recipe = get_recipe(recipe, **overrides)
    ues = None
    if recipe.ue_annulus is not None:
        ues = np.zeros((n, 2))
        for k in range(n):  # each drop's own generator, key (index, 1)
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(start + k, 1))))
            u, phi = rng.random(2)
            r = np.sqrt(recipe.ue_annulus[0] ** 2 + u * (recipe.ue_annulus[1] ** 2 - recipe.ue_annulus[0] ** 2))
            ues[k] = r * np.cos(2 * np.pi * phi), r * np.sin(2 * np.pi * phi)
    drops = cost2100_model.generate_drops(recipe.scenario, n, seed, start=start, ue_positions=ues)
    delay = drops.delay.copy()
    for i in range(n):
        live = drops.gain[i] != 0
        if recipe.timing == "first-path":  # each drop's earliest path with a nonzero gain arrives at delay 0
            delay[i][live] -= delay[i][live].min()
        delay[i][live] += recipe.delay_offset
    drops = dataclasses.replace(drops, delay=delay)
    h = cost2100_model.frequency_response(drops, n_subcarriers=1024, bandwidth=recipe.bandwidth, steering_sign=-1,
                                          include_elevation=False).astype(np.complex128)
    angular = np.fft.fft(h, axis=1, norm="ortho")  # orthonormal DFT over the 32 antennas
    if recipe.angle_order == "centered":  # row k <-> spatial frequency (k - 16) / 32
        angular = np.concatenate([angular[:, 16:], angular[:, :16]], axis=1)
    delay_domain = np.fft.ifft(angular, axis=2, norm="ortho")  # orthonormal IDFT over the 1024 subcarriers
    return delay_domain[:, :, :32]


def _to_csi(h, scale):
    """0.5 + scale * (Re, Im) as [n, 2, 32, 32] (float64); ``scale`` a scalar or one per sample."""
    scale = np.broadcast_to(np.asarray(scale, np.float64), (h.shape[0],))[:, None, None, None]
    return 0.5 + scale * np.stack([h.real, h.imag], axis=1)


def _peak(h):
    return np.maximum(np.abs(h.real), np.abs(h.imag)).max(axis=(1, 2))


def _snapshot(directory):
    """{name: (mtime_ns, sha256)} of every file in ``directory``."""
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(Path(directory).iterdir())}


def _write(directory, samples, shards, split="train", seed=SEED, recipe=INDOOR, **kwargs):
    return write_dataset(recipe, directory, samples=samples, split=split, seed=seed, shards=shards,
                         workers=kwargs.pop("workers", 1), progress=False, **kwargs)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """An indoor npz dataset of seed SEED with the splits of BASE_SPLITS (treat as read-only)."""
    directory = tmp_path_factory.mktemp("base") / "indoor"
    for split, (samples, shards) in BASE_SPLITS.items():
        _write(directory, samples, shards, split=split)
    return directory


@pytest.fixture
def base_copy(base, tmp_path):
    """A private copy of the base dataset, for tests that change files."""
    return Path(shutil.copytree(base, tmp_path / "copy"))


# ----------------------------------------------------------------------------------------------
# recipes
# ----------------------------------------------------------------------------------------------
def test_recipes_registry_and_overrides():
    assert {"cost2100-indoor", "cost2100-outdoor", "cost2100-outdoor-los", "cost2100-outdoor-nlos",
            "umi-los"} <= set(RECIPES)
    assert all(isinstance(r, CsiRecipe) and r.name == name for name, r in RECIPES.items())
    assert RECIPES["cost2100-outdoor"].scenario == RECIPES["cost2100-outdoor-los"].scenario
    umi = RECIPES["umi-los"]
    assert umi.model == "tr38901" and not umi.keep_hf and umi.suffix is None
    indoor = get_recipe(INDOOR)
    # the calibrated defaults of issue 14 (docs/results/cost2100/fidelity.md)
    assert (indoor.model, indoor.suffix, indoor.bandwidth, indoor.timing, indoor.angle_order, indoor.scaling) == (
        "cost2100", "in", 32e6, "absolute", "centered", "peak")
    outdoor = get_recipe("cost2100-outdoor")
    assert (outdoor.scenario, outdoor.bandwidth, outdoor.delay_offset) == ("semi_urban_300mhz_los", 3e6, 4e-6)
    changed = get_recipe(INDOOR, timing="first-path", bandwidth=None, scaling=0.25)
    assert changed.timing == "first-path" and changed.scaling == 0.25
    assert changed.bandwidth == 32e6  # None values are ignored
    assert get_recipe(changed) == changed
    assert json.loads(json.dumps(indoor.settings())) == indoor.settings()

    with pytest.raises(ValueError, match="Unknown dataset scenario.*'cost2100-attic'"):
        get_recipe("cost2100-attic")
    with pytest.raises(ValueError, match=r"Unknown recipe settings \['colour'\]"):
        get_recipe(INDOOR, colour="red")
    with pytest.raises(ValueError, match="timing"):
        get_recipe(INDOOR, timing="last-path")
    for bad in ("max", -1.0, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scaling"):
            get_recipe(INDOOR, scaling=bad)
    with pytest.raises(ValueError, match="n_delay"):
        get_recipe("umi-los", n_delay=64)


def test_generate_samples_matches_an_independent_computation():
    start, n, seed = 7, 4, 11
    out = generate_samples(INDOOR, start, n, seed)
    assert set(out) == {"HT", "HF"}
    ht, hf = out["HT"], out["HF"]
    assert ht.shape == (n, 2, 32, 32) and ht.dtype == np.float32
    assert hf.shape == (n, 32, 125) and hf.dtype == np.complex64

    h = _hand_angular_delay(INDOOR, start, n, seed)
    np.testing.assert_allclose(ht, _to_csi(h, 0.5 / _peak(h)), rtol=0, atol=1e-6)

    # HF: the 257-point FFT of (HT - 0.5) over the delay axis, first 125 bins
    complex_csi = (ht[:, 0].astype(np.float64) - 0.5) + 1j * (ht[:, 1].astype(np.float64) - 0.5)
    expected_hf = np.fft.fft(complex_csi, n=257, axis=2)[:, :, :125]
    np.testing.assert_allclose(hf, expected_hf, rtol=0, atol=1e-5)

    # peak scaling: every sample lies in [0, 1] and its largest component touches 0 or 1
    assert ht.min() >= 0.0 and ht.max() <= 1.0
    np.testing.assert_allclose(np.abs(ht - 0.5).max(axis=(1, 2, 3)), 0.5, atol=1e-6)
    assert all(np.isclose(x.min(), 0.0, atol=1e-6) or np.isclose(x.max(), 1.0, atol=1e-6) for x in ht)


def test_generate_samples_arguments_and_empty_batch():
    for bad in ({"start": -1}, {"n": 1.5}, {"seed": -3}, {"n": True}):
        args = {"start": 0, "n": 1, "seed": 0, **bad}
        with pytest.raises(ValueError, match=f"`{next(iter(bad))}`"):
            generate_samples(INDOOR, **args)
    empty = generate_samples(INDOOR, 3, 0, 1)
    assert empty["HT"].shape == (0, 2, 32, 32) and empty["HF"].shape == (0, 32, 125)
    assert empty["HT"].dtype == np.float32 and empty["HF"].dtype == np.complex64
    assert set(generate_samples("umi-los", 0, 0, 1)) == {"HT"}


def test_first_path_timing_and_dft_order_match_independent_computations():
    start, n, seed = 3, 3, 2
    for overrides in ({"timing": "first-path"}, {"angle_order": "dft"}, {"timing": "first-path", "angle_order": "dft"}):
        ht = generate_samples(get_recipe(INDOOR, **overrides), start, n, seed)["HT"]
        h = _hand_angular_delay(INDOOR, start, n, seed, **overrides)
        np.testing.assert_allclose(ht, _to_csi(h, 0.5 / _peak(h)), rtol=0, atol=1e-6)
    default = generate_samples(INDOOR, start, n, seed)["HT"]
    first_path = generate_samples(get_recipe(INDOOR, timing="first-path"), start, n, seed)["HT"]
    assert np.abs(default - first_path).max() > 1e-2


def test_centered_angle_order_is_the_dft_order_rotated_by_half():
    start, n, seed = 0, 4, 6
    centered = generate_samples(INDOOR, start, n, seed)["HT"]
    dft = generate_samples(get_recipe(INDOOR, angle_order="dft"), start, n, seed)["HT"]
    np.testing.assert_array_equal(centered, np.roll(dft, 16, axis=2))


def test_delay_offset_of_whole_taps_shifts_the_delay_axis():
    # With absolute subcarrier frequencies, a delay offset tau_0 multiplies H(f) by exp(-j 2 pi f tau_0):
    # a common phase exp(-j 2 pi f_0 tau_0) times a cyclic shift of the 1024-tap delay axis by
    # tau_0 * bandwidth taps. So for a whole number k of taps, tap m + k of the shifted channel has the
    # magnitude of tap m of the unshifted one (before truncation to 32 taps).
    recipe = get_recipe(INDOOR)
    k = 3
    start, n, seed = 2, 3, 8
    base = _hand_angular_delay(INDOOR, start, n, seed)
    shifted = _hand_angular_delay(INDOOR, start, n, seed, delay_offset=k / recipe.bandwidth)
    np.testing.assert_allclose(np.abs(shifted[:, :, k:]), np.abs(base[:, :, :32 - k]), rtol=1e-4, atol=1e-7)
    ht = generate_samples(get_recipe(INDOOR, delay_offset=k / recipe.bandwidth), start, n, seed)["HT"]
    np.testing.assert_allclose(ht, _to_csi(shifted, 0.5 / _peak(shifted)), rtol=0, atol=1e-6)


def test_ue_annulus_places_the_ue_uniformly_over_its_area():
    from scipy import stats

    from mimokd.channels.recipes import annulus_positions

    radii = (40.0, 90.0)
    xy = annulus_positions(radii, 0, 400, 3)
    r = np.hypot(*xy.T)
    assert r.min() >= radii[0] and r.max() <= radii[1]
    # area-uniform: r^2 is uniform on [r_min^2, r_max^2]; the azimuth is uniform
    assert stats.kstest((r ** 2 - radii[0] ** 2) / (radii[1] ** 2 - radii[0] ** 2), "uniform").pvalue > 0.01
    assert stats.kstest(np.mod(np.arctan2(xy[:, 1], xy[:, 0]), 2 * np.pi) / (2 * np.pi), "uniform").pvalue > 0.01
    np.testing.assert_array_equal(annulus_positions(radii, 100, 50, 3), xy[100:150])  # shard-stable
    start, n, seed = 1, 3, 4
    ht = generate_samples(get_recipe(INDOOR, ue_annulus=(5.0, 9.0)), start, n, seed)["HT"]
    h = _hand_angular_delay(INDOOR, start, n, seed, ue_annulus=(5.0, 9.0))
    np.testing.assert_allclose(ht, _to_csi(h, 0.5 / _peak(h)), rtol=0, atol=1e-6)


def test_recipe_settings_round_trip_through_json():
    recipe = get_recipe(INDOOR, ue_annulus=(1.0, 8.0), delay_offset=5e-8)
    settings = json.loads(json.dumps(recipe.settings()))
    assert settings == recipe.settings()
    name = settings.pop("name")
    assert get_recipe(name, **settings) == recipe
    for bad in ({"angle_order": "fftshift"}, {"delay_offset": -1e-9}, {"delay_offset": float("nan")},
                {"ue_annulus": (9.0, 2.0)}, {"ue_annulus": (1.0,)}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            get_recipe(INDOOR, **bad)


def test_first_path_timing_moves_outdoor_energy_to_the_first_taps():
    # The exact per-angle energies of the two timings differ (a fractional delay shift leaks energy
    # across the cut at 32 taps), so this compares where the energy sits: outdoor UEs are up to
    # 283 m away (~19 taps at 20 MHz), which first-path timing removes.
    taps = np.arange(32)
    mean_tap = {}
    for timing in ("first-path", "absolute"):
        recipe = get_recipe("cost2100-outdoor-los", timing=timing, bandwidth=20e6, delay_offset=0.0)
        ht = generate_samples(recipe, 0, 20, 2)["HT"]
        power = ((ht.astype(np.float64) - 0.5) ** 2).sum(axis=(1, 2))  # [n, delay]
        mean_tap[timing] = (power * taps).sum(axis=1) / power.sum(axis=1)
    assert (mean_tap["first-path"] < mean_tap["absolute"]).mean() >= 0.9
    assert mean_tap["absolute"].mean() - mean_tap["first-path"].mean() > 3


def test_fixed_scaling():
    start, n, seed = 0, 3, 4
    h = _hand_angular_delay(INDOOR, start, n, seed)
    scale = float(0.4 / _peak(h).max())  # one global scale that keeps every sample inside [0, 1]
    ht = generate_samples(get_recipe(INDOOR, scaling=scale), start, n, seed)["HT"]
    np.testing.assert_allclose(ht, _to_csi(h, scale), rtol=0, atol=1e-6)
    assert np.abs(ht - 0.5).max() == pytest.approx(0.4, abs=1e-5)  # not peak-scaled per sample
    for too_large in (3 * scale, 1e9):
        with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
            generate_samples(get_recipe(INDOOR, scaling=too_large), start, n, seed)


@pytest.mark.parametrize("recipe", [INDOOR, "umi-los"])
def test_generate_samples_is_shard_stable(recipe):
    whole = generate_samples(recipe, 0, 40, 9)
    part = generate_samples(recipe, 10, 20, 9)
    assert set(whole) == set(part)
    # Drop i is the same in any batch, but not bit for bit: BLAS may sum in another order for
    # another batch size, so the comparison is allclose.
    for key in whole:
        np.testing.assert_allclose(part[key], whole[key][10:30], rtol=0, atol=1e-5 if key == "HF" else 1e-6)
    other_seed = generate_samples(recipe, 10, 20, 10)["HT"]
    assert np.abs(other_seed - part["HT"]).max() > 0.1


# ----------------------------------------------------------------------------------------------
# the sharded writer
# ----------------------------------------------------------------------------------------------
def test_shard_ranges_and_names():
    assert shard_ranges(10, 3) == [(0, 3), (3, 3), (6, 4)]
    assert shard_ranges(5, 5) == [(k, 1) for k in range(5)]
    assert shard_ranges(7, 1) == [(0, 7)]
    ranges = shard_ranges(100_003, 7)
    assert sum(c for _, c in ranges) == 100_003 and max(c for _, c in ranges) - min(c for _, c in ranges) <= 1
    assert all(s + c == s2 for (s, c), (s2, _) in zip(ranges, ranges[1:]))
    with pytest.raises(ValueError, match="cannot exceed"):
        shard_ranges(3, 4)
    with pytest.raises(ValueError, match="`samples`"):
        shard_ranges(0, 1)
    assert shard_name("val", 3, 12) == "val-00003-of-00012.npz"


def test_written_shards_cover_each_split_in_order(base):
    recipe = get_recipe(INDOOR)
    names = sorted(p.name for p in base.iterdir())
    expected_names = ["manifest.json"] + [shard_name(split, k, shards) for split, (_, shards) in BASE_SPLITS.items()
                                          for k in range(shards)]
    assert names == sorted(expected_names)

    for split, (samples, shards) in BASE_SPLITS.items():
        direct = generate_samples(recipe, 0, samples, split_seed(SEED, split))
        loaded = load_shards(base, split)
        assert loaded.shape == (samples, 2, 32, 32) and loaded.dtype == np.float32
        np.testing.assert_allclose(loaded, direct["HT"], rtol=0, atol=1e-6)
        indices = []
        for k, (start, count) in enumerate(shard_ranges(samples, shards)):
            with np.load(base / shard_name(split, k, shards)) as data:
                # HF is stored for the test split only, as in the public files
                keys = {"meta", "index", "HT", "HF"} if split == "test" else {"meta", "index", "HT"}
                assert set(data.files) == keys
                meta = json.loads(str(data["meta"]))
                assert data["index"].dtype == np.int64
                np.testing.assert_array_equal(data["index"], np.arange(start, start + count))
                indices.append(data["index"])
            assert meta == {"recipe": get_recipe(recipe, keep_hf=split == "test").settings(), "seed": SEED,
                            "split": split, "split_seed": split_seed(SEED, split), "shard": k, "shards": shards,
                            "start": start, "count": count}
        np.testing.assert_array_equal(np.concatenate(indices), np.arange(samples))
    np.testing.assert_allclose(load_shards(base, "test", key="HF"),
                               generate_samples(recipe, 0, 10, split_seed(SEED, "test"))["HF"], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="holds no 'HF'"):
        load_shards(base, "train", key="HF")
    np.testing.assert_array_equal(load_shards(base, "train", num_samples=12), load_shards(base, "train")[:12])
    with pytest.raises(ValueError, match="fewer than asked for"):
        load_shards(base, "val", num_samples=13)


def test_manifest(base, tmp_path):
    def files(split, samples, shards):
        names = [shard_name(split, k, shards) for k in range(shards)]
        return {name: {"samples": count, "sha256": hashlib.sha256((base / name).read_bytes()).hexdigest()}
                for name, (_, count) in zip(names, shard_ranges(samples, shards))}

    assert read_manifest(base) == {
        "format": "npz", "mimokd": mimokd.__version__, "recipe": get_recipe(INDOOR).settings(), "seed": SEED,
        "splits": {split: {"samples": samples, "shards": shards, "split_seed": split_seed(SEED, split),
                           "files": files(split, samples, shards)}
                   for split, (samples, shards) in BASE_SPLITS.items()}}
    with pytest.raises(FileNotFoundError, match="No manifest.json"):
        read_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="No manifest.json"):
        load_shards(tmp_path, "train")


def test_rerun_skips_existing_shards(base_copy):
    shard_files = [p for p in base_copy.iterdir() if p.suffix == ".npz"]
    before = {p.name: p.stat().st_mtime_ns for p in shard_files}
    manifest = read_manifest(base_copy)
    for split, (samples, shards) in BASE_SPLITS.items():
        assert _write(base_copy, samples, shards, split=split) == []
    assert {p.name: p.stat().st_mtime_ns for p in shard_files} == before
    assert read_manifest(base_copy) == manifest


def test_shard_ids_write_a_subset_and_complete_later(base, tmp_path):
    directory = tmp_path / "parts"
    written = _write(directory, 30, 3, shard_ids=[2, 0])
    assert written == [directory / shard_name("train", k, 3) for k in (0, 2)]
    with pytest.raises(FileNotFoundError, match=re.escape("train shards [1] of 3 are missing")) as info:
        load_shards(directory, "train")
    assert "--shard-ids 1" in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_csi(directory)
    with pytest.raises(FileNotFoundError, match="missing"):
        shard_dataset(directory, "train", batch_size=4)
    with pytest.raises(ValueError, match="shard_ids"):
        _write(directory, 30, 3, shard_ids=[3])

    assert _write(directory, 30, 3, shard_ids=[1]) == [directory / shard_name("train", 1, 3)]
    np.testing.assert_allclose(load_shards(directory, "train"), load_shards(base, "train"), rtol=0, atol=1e-6)


def test_other_settings_are_refused_and_files_left_untouched(base_copy):
    before = _snapshot(base_copy)
    attempts = [
        ({"seed": SEED + 1}, f"a dataset of other settings (seed: {SEED} -> {SEED + 1})"),
        ({"recipe": "cost2100-outdoor"}, 'recipe.name: "cost2100-indoor" -> "cost2100-outdoor"'),
        ({"timing": "first-path"}, '(recipe.timing: "absolute" -> "first-path"); pass --overwrite'),
        ({"format": "mat"}, '(format: "npz" -> "mat")'),
        ({"samples": 31}, "already holds a train split of 30 samples in 3 shards (samples: 30 -> 31)"),
        ({"shards": 2}, "already holds a train split of 30 samples in 3 shards (shards: 3 -> 2)"),
    ]
    for change, message in attempts:
        args = {"samples": 30, "shards": 3, **change}
        with pytest.raises(ValueError, match=re.escape(message)):
            _write(base_copy, **args)
    assert _snapshot(base_copy) == before


def test_a_shard_of_other_settings_is_refused(base_copy):
    # a shard whose meta disagrees with the run (here: another seed, with the manifest edited to agree)
    manifest = read_manifest(base_copy)
    manifest["seed"] = SEED + 1
    manifest["splits"] = {}
    (base_copy / "manifest.json").write_text(json.dumps(manifest))
    before = _snapshot(base_copy)
    path = base_copy / shard_name("val", 0, 2)
    with pytest.raises(ValueError, match=re.escape(f"{path} exists with other settings")):
        _write(base_copy, 12, 2, split="val", seed=SEED + 1)
    after = _snapshot(base_copy)
    assert {k: v for k, v in after.items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_a_damaged_shard_is_named_on_load_and_regenerated_by_a_rerun(base, base_copy, damage):
    path = base_copy / shard_name("train", 1, 3)
    raw = path.read_bytes()
    damaged = {"garbage": b"\x00garbage" * 50, "truncated": raw[: len(raw) // 2],
               "flipped": raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:]}[damage]
    path.write_bytes(damaged)
    recorded = read_manifest(base_copy)["splits"]["train"]["files"][path.name]["sha256"]
    found = hashlib.sha256(damaged).hexdigest()
    expected = f"{path} is damaged: its sha256 is {found} where {base_copy / 'manifest.json'} records {recorded}"
    for read in (lambda: load_shards(base_copy, "train"), lambda: load_csi(base_copy, split="train"),
                 lambda: list(shard_dataset(base_copy, "train", batch_size=8).as_numpy_iterator())):
        with pytest.raises(Exception, match=re.escape(expected)):
            read()
    with pytest.warns(UserWarning, match=re.escape(f"{path} is damaged: sha256 {found}")):
        assert _write(base_copy, 30, 3) == [path]  # not skipped as "present"
    assert path.read_bytes() == raw
    np.testing.assert_array_equal(load_shards(base_copy, "train"), load_shards(base, "train"))


def test_a_refused_run_writes_no_manifest(base_copy):
    (base_copy / "manifest.json").unlink()  # e.g. shards copied in from another machine
    with pytest.raises(ValueError, match="exists with other settings"):
        _write(base_copy, 30, 3, seed=SEED + 1)
    assert not (base_copy / "manifest.json").exists()


def test_writes_are_atomic(base, tmp_path, monkeypatch):
    directory = tmp_path / "atomic"
    real_savez = np.savez
    calls = []

    def failing_savez(file, *args, **kwargs):
        calls.append(Path(file))
        if len(calls) == 2:  # the second shard dies half written
            Path(file).write_bytes(b"PK\x03\x04 half a shard")
            raise OSError("disk full")
        return real_savez(file, *args, **kwargs)

    monkeypatch.setattr(shards_module.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        _write(directory, 30, 3)
    monkeypatch.setattr(shards_module.np, "savez", real_savez)

    assert calls[1] != directory / shard_name("train", 1, 3)  # it wrote to a temporary file
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", shard_name("train", 0, 3)]
    # the interrupted run resumes where it stopped
    assert _write(directory, 30, 3) == [directory / shard_name("train", k, 3) for k in (1, 2)]
    np.testing.assert_allclose(load_shards(directory, "train"), load_shards(base, "train"), rtol=0, atol=1e-6)


def test_write_dataset_arguments(tmp_path):
    directory = tmp_path / "bad"
    for change, message in [({"samples": 0}, "`samples`"), ({"workers": 0}, "`workers`"), ({"seed": -1}, "`seed`"),
                            ({"split": "dev"}, "Unknown split"), ({"format": "h5"}, "Unknown format"),
                            ({"shards": 0}, "`shards`"), ({"shards": 5, "samples": 4}, "cannot exceed"),
                            ({"scaling": "max"}, "scaling"), ({"colour": "red"}, "colour")]:
        args = {"samples": 4, "shards": 1, **change}
        with pytest.raises(ValueError, match=message):
            _write(directory, **args)
    assert not (directory / "manifest.json").exists()


def test_workers_2_give_the_same_data(base, tmp_path, monkeypatch):
    monkeypatch.setattr(shards_module, "WORK_UNIT", 4)  # several tasks per shard, spread over the workers
    environment = dict(os.environ)
    directory = tmp_path / "two"
    assert len(_write(directory, 20, 2, workers=2)) == 2
    assert dict(os.environ) == environment  # the BLAS thread settings are restored
    np.testing.assert_allclose(load_shards(directory, "train"), load_shards(base, "train")[:20], rtol=0, atol=1e-6)
    for k in range(2):
        with np.load(directory / shard_name("train", k, 2)) as data:
            np.testing.assert_array_equal(data["index"], np.arange(10 * k, 10 * k + 10))


# ----------------------------------------------------------------------------------------------
# .mat layout, 3GPP 38.901
# ----------------------------------------------------------------------------------------------
def test_mat_format_matches_the_npz_path(base, tmp_path):
    directory = tmp_path / "mat"
    assert write_dataset(INDOOR, directory, samples=12, split="train", seed=SEED, workers=1, format="mat",
                         progress=False) == [directory / "DATA_Htrainin.mat"]
    assert write_dataset(INDOOR, directory, samples=10, split="test", seed=SEED, workers=1, format="mat",
                         progress=False) == [directory / "DATA_Htestin.mat", directory / "DATA_HtestFin_all.mat"]
    assert sorted(p.name for p in directory.iterdir()) == [
        "DATA_HtestFin_all.mat", "DATA_Htestin.mat", "DATA_Htrainin.mat", "manifest.json"]
    manifest = read_manifest(directory)
    assert manifest["format"] == "mat" and set(manifest["splits"]) == {"train", "test"}

    train = load_cost2100(directory / "DATA_Htrainin.mat")
    np.testing.assert_allclose(train, load_shards(base, "train")[:12], rtol=0, atol=1e-6)  # shard-stable
    np.testing.assert_allclose(load_cost2100(directory / "DATA_Htestin.mat"), load_shards(base, "test"),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(load_hf(directory / "DATA_HtestFin_all.mat"), load_shards(base, "test", key="HF"),
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(load_csi(directory, split="train", num_samples=5), train[:5])
    map_ = csi_power_map(directory, "train")
    assert map_.shape == (32, 32) and map_.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="holds .mat files"):
        load_shards(directory, "train")

    before = _snapshot(directory)
    assert write_dataset(INDOOR, directory, samples=12, split="train", seed=SEED, workers=1, format="mat",
                         progress=False) == []
    assert {k: v for k, v in _snapshot(directory).items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"}


def test_tr38901_dataset(tmp_path):
    directory = tmp_path / "umi"
    with pytest.raises(ValueError, match="no COST2100 file names"):
        write_dataset("umi-los", directory, samples=4, format="mat", progress=False)
    assert not directory.exists() or not any(directory.iterdir())

    assert len(_write(directory, 8, 2, split="test", recipe="umi-los")) == 2
    with np.load(directory / shard_name("test", 0, 2)) as data:
        assert set(data.files) == {"meta", "index", "HT"}  # no HF for 38.901
    np.testing.assert_allclose(load_shards(directory, "test"),
                               generate_samples("umi-los", 0, 8, split_seed(SEED, "test"))["HT"], rtol=0, atol=1e-6)
    assert read_manifest(directory)["recipe"] == get_recipe("umi-los").settings()
    with pytest.raises(ValueError, match="COST 2100 recipes only"):
        channel_statistics(directory, drops=10)
    assert csi_power_map(directory, "test").sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------
# tf.data streaming, load_csi
# ----------------------------------------------------------------------------------------------
def _rows(array):
    return sorted(x.tobytes() for x in array)


def test_shard_dataset_streams_every_sample(base):
    reference = load_shards(base, "train")
    batches = list(shard_dataset(base, "train", batch_size=7).as_numpy_iterator())
    assert [x.shape for x, _ in batches] == [(7, 2, 32, 32)] * 4 + [(2, 2, 32, 32)]
    assert all(x.dtype == np.float32 and np.array_equal(x, y) for x, y in batches)
    streamed = np.concatenate([x for x, _ in batches])
    np.testing.assert_array_equal(streamed, reference)  # in drop order without shuffling

    shuffled = np.concatenate([x for x, _ in shard_dataset(base, "train", batch_size=8, shuffle=True, seed=1)
                               .as_numpy_iterator()])
    assert shuffled.shape == reference.shape
    assert not np.array_equal(shuffled, reference)
    assert _rows(shuffled) == _rows(reference)
    with pytest.raises(ValueError, match="batch_size"):
        shard_dataset(base, "train", batch_size=0)


def test_load_csi_reads_a_generated_folder(base, tmp_path):
    val = load_shards(base, "val")
    np.testing.assert_array_equal(load_csi(base, split="val", num_samples=5), val[:5])
    np.testing.assert_array_equal(load_csi(str(base), split="val"), val)
    np.testing.assert_array_equal(load_csi(base, split="test"), load_shards(base, "test"))
    with pytest.raises(ValueError, match="fewer than asked for"):
        load_csi(base, split="val", num_samples=13)
    only_train = tmp_path / "only-train"
    shutil.copytree(base, only_train)
    manifest = read_manifest(only_train)
    del manifest["splits"]["val"]
    (only_train / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="has no val split"):
        load_csi(only_train, split="val")


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def test_csi_power_map_equals_a_direct_computation(base):
    for split in ("train", "val"):
        x = load_shards(base, split).astype(np.float64) - 0.5
        power = x[:, 0] ** 2 + x[:, 1] ** 2
        expected = (power / power.sum(axis=(1, 2), keepdims=True)).mean(axis=0)
        result = csi_power_map(base, split)
        assert result.shape == (32, 32)
        np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-14)
        assert result.sum() == pytest.approx(1.0, abs=1e-9)


def test_channel_statistics(base):
    rows, port_map, reference_map = channel_statistics(base, drops=60)
    assert [r["statistic"] for r in rows] == list(cost2100_stats.SCALAR_STATS + cost2100_stats.PROFILE_STATS)
    assert len(rows) == 9
    for row in rows:
        assert set(row) == {"statistic", "reference", "port", "p_value", "pass"}
        assert 0.0 <= row["p_value"] <= 1.0 and isinstance(row["pass"], bool)
        assert np.isfinite(row["reference"]) and np.isfinite(row["port"])
    for map_ in (port_map, reference_map):
        assert map_.shape == (32, 32) and map_.sum() == pytest.approx(1.0, abs=1e-6) and map_.min() >= 0
    with pytest.raises(ValueError, match="`drops`"):
        channel_statistics(base, drops=1)


# ----------------------------------------------------------------------------------------------
# the `mimokd data` command
# ----------------------------------------------------------------------------------------------
def test_cli_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in RECIPES:
        assert f"| {name} |" in out


def test_cli_data_generate_and_stats(tmp_path, capsys):
    directory, png = tmp_path / "D", tmp_path / "maps" / "P.png"
    assert main(["data", "generate", INDOOR, "--samples", "50", "--out", str(directory), "--workers", "1"]) == 0
    assert "wrote 1 file(s)" in capsys.readouterr().err  # status lines are logged to stderr
    assert load_shards(directory, "train").shape == (50, 2, 32, 32)
    assert read_manifest(directory)["seed"] == 0
    assert main(["data", "generate", INDOOR, "--samples", "50", "--out", str(directory), "--workers", "1"]) == 0
    assert "all present, skipped" in capsys.readouterr().err

    assert main(["data", "stats", str(directory), "--drops", "40", "--png", str(png)]) == 0
    captured = capsys.readouterr()
    assert "KS p-value" in captured.out and "rms_delay_spread" in captured.out and f"wrote {png}" in captured.err
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_cli_data_generate_takes_the_calibration_settings(tmp_path):
    directory = tmp_path / "S"
    args = ["data", "generate", INDOOR, "--samples", "4", "--out", str(directory), "--workers", "1",
            "--timing", "first-path", "--angle-order", "dft", "--bandwidth", "2e7", "--delay-offset", "5e-8",
            "--ue-annulus", "2", "7"]
    assert main(args) == 0
    recipe = read_manifest(directory)["recipe"]
    assert (recipe["timing"], recipe["angle_order"], recipe["bandwidth"], recipe["delay_offset"],
            recipe["ue_annulus"]) == ("first-path", "dft", 2e7, 5e-8, [2.0, 7.0])
    name = recipe.pop("name")
    expected = generate_samples(get_recipe(name, **recipe), 0, 4, split_seed(0, "train"))["HT"]
    np.testing.assert_array_equal(load_shards(directory, "train"), expected)


def test_cli_data_errors(tmp_path, capsys):
    out = str(tmp_path / "E")
    cases = [
        (["cost2100-attic", "--samples", "5"], "Unknown dataset scenario"),
        ([INDOOR, "--samples", "5", "--scaling", "big"], "--scaling: expected 'peak' or a positive finite number"),
        ([INDOOR, "--samples", "5", "--scaling", "-2"], "--scaling: expected 'peak' or a positive finite number"),
        ([INDOOR, "--samples", "0"], "--samples: expected a positive integer, got '0'"),
        ([INDOOR, "--samples", "5", "--ue-annulus", "9", "2"], "`ue_annulus` must be None or (r_min, r_max)"),
        ([INDOOR, "--samples", "5", "--delay-offset=-1e-9"], "--delay-offset: expected a finite number >= 0"),
    ]
    for args, message in cases:  # the parser's errors exit with status 2, the command's return 1
        try:
            status = main(["data", "generate", *args, "--out", out, "--workers", "1"])
        except SystemExit as exit_:
            status = exit_.code
        err = capsys.readouterr().err
        assert status == (2 if message.startswith("--") else 1) and "error: " in err and message in err
    assert main(["data", "generate", "cost2100-attic", "--samples", "5", "--out", out]) == 1
    assert "'cost2100-attic'" in capsys.readouterr().err
    assert not Path(out).exists()
    assert main(["data", "stats", str(tmp_path)]) == 1
    assert "No manifest.json" in capsys.readouterr().err


def test_channel_statistics_redraws_the_drops_with_the_datasets_own_settings(tmp_path, monkeypatch):
    directory = tmp_path / "annulus"
    _write(directory, 4, 1, ue_annulus=(3.0, 6.0))
    seen = {}
    original = cost2100_model.generate_drops

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(cost2100_model, "generate_drops", spy)
    channel_statistics(directory, drops=5)
    radii = np.hypot(*np.asarray(seen["ue_positions"]).T)
    assert radii.shape == (5,) and radii.min() >= 3.0 and radii.max() <= 6.0
