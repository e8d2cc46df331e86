"""Tests of the COST2100 .mat reader / writer on files the tests write themselves in the public layout."""

import os
import re

import numpy as np
import pytest
import scipy.io

from mimokd.channels import cost2100
from mimokd.channels.cost2100 import (
    cost2100_filename,
    find_cost2100,
    load_cost2100,
    load_hf,
    save_cost2100,
)


def _ht(n=6, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 2048))


def _hf(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4000)) + 1j * rng.standard_normal((n, 4000))


@pytest.fixture
def mat(tmp_path):
    """Writes a v5 .mat file with scipy, as the public files are, and returns its path."""

    def write(name="data.mat", **variables):
        path = tmp_path / name
        scipy.io.savemat(path, variables)
        return path

    return write


def test_load_cost2100_reads_the_public_layout(mat):
    ht = _ht()
    csi = load_cost2100(mat(HT=ht))
    assert csi.shape == (6, 2, 32, 32) and csi.dtype == np.float32
    # C order: HT[b, plane * 1024 + angle * 32 + delay] = csi[b, plane, angle, delay]
    b, plane, angle, delay = 4, 1, 9, 30
    assert csi[b, plane, angle, delay] == np.float32(ht[b, plane * 1024 + angle * 32 + delay])
    np.testing.assert_array_equal(csi.reshape(6, -1), ht.astype(np.float32))


def test_load_cost2100_other_sizes_and_keys(mat):
    ht = _ht(3)[:, : 2 * 16 * 32]
    csi = load_cost2100(mat(X=ht), key="X", height=16, width=32)
    assert csi.shape == (3, 2, 16, 32)


def test_load_hf_reads_the_public_layout(mat):
    hf = _hf()
    got = load_hf(mat(HF_all=hf))
    assert got.shape == (6, 32, 125) and got.dtype == np.complex64
    assert got[2, 31, 124] == pytest.approx(hf[2, 31 * 125 + 124], rel=1e-6)
    assert got[5, 3, 7] == pytest.approx(hf[5, 3 * 125 + 7], rel=1e-6)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*Received: path="):
        load_cost2100(tmp_path / "DATA_Htrainin.mat")
    with pytest.raises(IsADirectoryError, match="not a directory"):
        load_cost2100(tmp_path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "notes.mat"
    path.write_text("these are not the CSI you are looking for\n" * 20)
    with pytest.raises(ValueError, match=r"not a readable MATLAB \.mat file"):
        load_cost2100(path)
    empty = tmp_path / "empty.mat"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"not a readable MATLAB \.mat file"):
        load_hf(empty)


def test_truncated_file(mat):
    path = mat(HT=_ht(50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_cost2100(path)


def test_missing_key_lists_the_keys_present(mat):
    path = mat(HX=_ht(), other=np.zeros(3))
    with pytest.raises(KeyError, match=re.escape("keys present: ['HX', 'other']")):
        load_cost2100(path)
    with pytest.raises(KeyError, match="'HF_all' is not in"):
        load_hf(path)


@pytest.mark.parametrize("shape", [(6, 2000), (6, 2, 32, 32), (2048, 6)])
def test_wrong_shape(mat, shape):
    path = mat(HT=np.full(shape, 0.5))
    with pytest.raises(ValueError, match=r"shape \(N, 2048\).*Received: HT.shape="):
        load_cost2100(path)


def test_wrong_hf_shape(mat):
    with pytest.raises(ValueError, match=r"\(N, 4000\).*Received: HF_all.shape=\(6, 3999\)"):
        load_hf(mat(HF_all=_hf()[:, :3999]))


def test_empty_array(mat):
    with pytest.raises(ValueError, match="no sample"):
        load_cost2100(mat(HT=np.zeros((0, 2048))))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(mat, bad):
    ht = _ht()
    ht[3, 100] = bad
    with pytest.raises(ValueError, match=r"1 NaN or infinite value.*first \[3\]"):
        load_cost2100(mat(HT=ht))
    hf = _hf()
    hf[1, 5] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_hf(mat(name="hf.mat", HF_all=hf))


@pytest.mark.parametrize("value", [-0.01, 1.2])
def test_values_outside_the_unit_range(mat, value):
    ht = _ht()
    ht[0, 0] = value
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*Received: HT with min="):
        load_cost2100(mat(HT=ht))


def test_complex_csi_is_rejected(mat):
    with pytest.raises(TypeError, match="real numeric"):
        load_cost2100(mat(HT=_ht() + 0.1j))


def test_save_writes_the_exact_layout_and_round_trips(tmp_path):
    csi = _ht().astype(np.float32).reshape(6, 2, 32, 32)
    hf = _hf().astype(np.complex64).reshape(6, 32, 125)
    path = save_cost2100(tmp_path / "DATA_Htestin.mat", csi, hf)
    raw = scipy.io.loadmat(path)
    assert raw["HT"].shape == (6, 2048) and raw["HT"].dtype == np.float32
    assert raw["HF_all"].shape == (6, 4000) and raw["HF_all"].dtype == np.complex64
    np.testing.assert_array_equal(raw["HT"], csi.reshape(6, -1))
    np.testing.assert_array_equal(load_cost2100(path), csi)
    np.testing.assert_array_equal(load_hf(path), hf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DATA_Htestin.mat"]


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.mat"
    save_cost2100(path, np.full((2, 2, 32, 32), 0.25))
    save_cost2100(path, np.full((3, 2, 32, 32), 0.75))
    np.testing.assert_array_equal(load_cost2100(path), np.full((3, 2, 32, 32), 0.75, np.float32))


def test_failed_save_leaves_the_existing_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "DATA_Htrainin.mat"
    save_cost2100(path, np.full((4, 2, 32, 32), 0.25))
    before = path.read_bytes()

    def fail_halfway(file, variables, **kwargs):
        file.write(b"MATLAB 5.0 MAT-file, half written")
        raise OSError("disk full")

    monkeypatch.setattr(scipy.io, "savemat", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_cost2100(path, np.full((8, 2, 32, 32), 0.75))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["DATA_Htrainin.mat"]  # no temporary file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(load_cost2100(path), np.full((4, 2, 32, 32), 0.25, np.float32))


def test_save_validates_its_arguments(tmp_path):
    good = np.full((2, 2, 32, 32), 0.5)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        save_cost2100(tmp_path / "a.mat", good + 1)
    with pytest.raises(ValueError, match=r"one sample per CSI sample \(2\)"):
        save_cost2100(tmp_path / "a.mat", good, np.zeros((3, 32, 125), np.complex64))
    with pytest.raises(ValueError, match=r"\[N, 32, 125\] or \(N, 4000\)"):
        save_cost2100(tmp_path / "a.mat", good, np.zeros((2, 125, 32), np.complex64))
    with pytest.raises(ValueError, match=r"must end in \.mat"):
        save_cost2100(tmp_path / "a.npy", good)
    assert list(tmp_path.iterdir()) == []
    # a missing folder is created
    assert load_cost2100(save_cost2100(tmp_path / "new" / "a.mat", good)).shape == (2, 2, 32, 32)


def test_public_file_names():
    assert cost2100_filename("train", "indoor") == "DATA_Htrainin.mat"
    assert cost2100_filename("val", "outdoor") == "DATA_Hvalout.mat"
    assert cost2100_filename("test", "indoor") == "DATA_Htestin.mat"
    assert cost2100_filename("test", "outdoor", frequency=True) == "DATA_HtestFout_all.mat"
    with pytest.raises(ValueError, match="test split only"):
        cost2100_filename("train", "indoor", frequency=True)
    with pytest.raises(ValueError, match=r"Unknown split.*Received: split='validation'"):
        cost2100_filename("validation", "indoor")
    with pytest.raises(ValueError, match=r"Unknown COST2100 scenario.*Received: scenario='in'"):
        cost2100_filename("train", "in")


def test_find_cost2100(tmp_path):
    for name in ("DATA_Htrainin.mat", "DATA_HtestFin_all.mat", "data_hvalout.MAT"):
        (tmp_path / name).write_bytes(b"")
    assert find_cost2100(tmp_path, "train", "indoor") == tmp_path / "DATA_Htrainin.mat"
    assert find_cost2100(tmp_path, "test", "indoor", frequency=True) == tmp_path / "DATA_HtestFin_all.mat"
    assert find_cost2100(tmp_path, "val", "outdoor") == tmp_path / "data_hvalout.MAT"
    with pytest.raises(FileNotFoundError, match=r"DATA_Htestout\.mat.*present: \['DATA_HtestFin_all\.mat'"):
        find_cost2100(tmp_path, "test", "outdoor")
    with pytest.raises(FileNotFoundError, match="No directory"):
        find_cost2100(tmp_path / "nowhere", "train", "indoor")


def test_matlab_v73_files_are_read_through_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    ht = _ht(4).astype(np.float32)
    hf = _hf(4).astype(np.complex64)
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["HT"] = ht.T  # MATLAB writes column-major: the HDF5 dataset is the transpose
        pair = np.dtype([("real", "<f4"), ("imag", "<f4")])
        stored = np.empty((4000, 4), pair)
        stored["real"], stored["imag"] = hf.T.real, hf.T.imag
        f["HF_all"] = stored
    header = b"MATLAB 7.3 MAT-file, written by the test".ljust(116) + b"\0" * 8 + b"\x00\x02IM"
    with open(path, "r+b") as f:
        f.write(header)
    np.testing.assert_array_equal(load_cost2100(path).reshape(4, -1), ht)
    np.testing.assert_array_equal(load_hf(path).reshape(4, -1), hf)
    with pytest.raises(KeyError, match=re.escape("keys present: ['HF_all', 'HT']")):
        load_cost2100(path, key="H")


def test_module_constants_match_the_public_dataset():
    assert cost2100.COST2100_SPLITS == {"train": 100_000, "val": 30_000, "test": 20_000}


def test_a_saved_file_depends_on_the_data_alone_not_on_the_time(tmp_path, monkeypatch):
    import time

    from mimokd.channels.cost2100 import MAT_HEADER, load_cost2100, save_cost2100

    csi = np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)
    files = []
    for when in ("Mon Dec  7 01:00:00 2026", "Tue Dec  8 02:00:01 2026"):  # scipy writes time.asctime()
        monkeypatch.setattr(time, "asctime", lambda when=when: when)
        files.append(save_cost2100(tmp_path / f"{len(files)}.mat", csi))
    assert files[0].read_bytes() == files[1].read_bytes() and files[0].read_bytes()[:116] == MAT_HEADER
    np.testing.assert_array_equal(load_cost2100(files[0]), csi)
