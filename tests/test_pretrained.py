"""Pretrained weights: the registry as data, float16 storage, offline / checkout / cache lookup, the
download over HTTP from a server on 127.0.0.1, sha256 refusal of tampered files, `mimokd pretrained`.

Every test runs against a registry of test entries (the real one is swapped out), with the checkout
folder, the cache and the download URL all pointing into the test's own temporary folders; the
only network is 127.0.0.1 (by default the URL names a closed loopback port, so an unexpected
download fails at once).
"""

import http.server
import io
import os
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from mimokd.cli import main
from mimokd.pretrained import registry, storage
from mimokd.pretrained.registry import (
    Metrics,
    PretrainedEntry,
    Recipe,
    UnknownEntryError,
    entry_stanza,
    get_entry,
    list_entries,
    registry_table,
)
from mimokd.pretrained.storage import (
    ChecksumError,
    WeightsUnavailableError,
    file_digest,
    load_entry_weights,
    make_entry,
    print_entry_stanza,
    save_entry_weights,
)
from mimokd.zoo import PRESETS, accepted_overrides, create_model

MODEL, CR, DATASET = "csinet", 64, "test-indoor"  # the smallest zoo model
NAME = f"{MODEL}-cr{CR}-{DATASET}"
REPO = Path(__file__).parents[1]
RECIPE = Recipe(data="builtin-indoor", data_seed=0, train_samples=100, epochs=1, batch_size=50,
                schedule="warm-up cosine, peak 2e-3", commit="0" * 40, machine="test: no training")
METRICS = Metrics(nmse_db=-1.5, nmse_db_per_batch=-1.4, rho=0.5, test_samples=20,
                  test_split="builtin-indoor test, seed 0", paper_nmse_db=-5.84, paper_source="test")


def _output(model, x):
    return np.asarray(model(x, training=False))


def _randomize(model, seed=0):
    """Random values in every variable (BatchNorm statistics too, variances positive)."""
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.uniform(0.5, 2.0, v.shape) if "variance" in v.path else 0.3 * rng.standard_normal(v.shape))
                       .astype("float32") for v in model.weights])
    return model


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A csinet 1/64 with random weights, its float16 entry file and its registry entry."""
    folder = tmp_path_factory.mktemp("stored")
    model = _randomize(create_model(MODEL, cr=CR))
    path = folder / f"{NAME}.weights.h5"
    sha256, size = save_entry_weights(model, path)
    entry = make_entry(MODEL, CR, DATASET, path, recipe=RECIPE, metrics=METRICS)
    assert (entry.sha256, entry.size, entry.dtype) == (sha256, size, "float16")
    return SimpleNamespace(model=model, path=path, entry=entry, bytes=path.read_bytes(),
                           weights=[w.copy() for w in model.get_weights()])


@pytest.fixture
def env(tmp_path, monkeypatch, stored):
    """The test entry registered, every lookup place in tmp_path, downloads to a closed port."""
    monkeypatch.setattr(registry, "ENTRIES", (stored.entry,))
    monkeypatch.setattr(storage, "CHECKOUT_WEIGHTS_DIR", tmp_path / "checkout")
    monkeypatch.delenv(storage.ENV_WEIGHTS_DIR, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv(storage.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(registry.ENV_WEIGHTS_URL, "http://127.0.0.1:9/")  # discard port: refused at once
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    return SimpleNamespace(root=tmp_path, cache=tmp_path / "cache", checkout=tmp_path / "checkout",
                           offline=tmp_path / "offline")


def _put(folder, data):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}.weights.h5"
    path.write_bytes(data)
    return path


def _tampered(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def _assert_loaded(model, stored):
    for got, want in zip(model.get_weights(), stored.weights):
        np.testing.assert_array_equal(got, want.astype(np.float16).astype(np.float32))


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; MIMOKD_WEIGHTS_URL points at it."""
    root = tmp_path / "served"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        timeout = 10  # a stuck connection cannot hang the suite

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)
            stopped.append(True)

    monkeypatch.setenv(registry.ENV_WEIGHTS_URL, f"http://127.0.0.1:{httpd.server_address[1]}/{{tag}}/")
    yield SimpleNamespace(root=root, hits=hits, stop=stop, tag_dir=root / registry.RELEASE_TAG)
    stop()
    assert not thread.is_alive()


# ---------------------------------------------------------------------------------------------
# The registry as data
# ---------------------------------------------------------------------------------------------


def test_the_real_registry_is_consistent_with_its_files():
    """Every registered entry: a zoo model, a known teacher and initial entry, its file in the
    checkout verified."""
    entries = registry.ENTRIES
    assert len({e.name for e in entries}) == len(entries) and len({e.file for e in entries}) == len(entries)
    names = {e.name for e in entries}
    for e in entries:
        assert e.model in PRESETS, e.name
        assert e.file == f"{e.name}.weights.h5"
        assert e.recipe.teacher is None or e.recipe.teacher in names, e.name
        assert e.recipe.init is None or e.recipe.init in names, e.name
        assert e.metrics.test_samples > 0 and e.recipe.commit, e.name
        path = REPO / "pretrained" / "weights" / e.file
        assert file_digest(path) == (e.sha256, e.size), e.name
    if entries:  # the README's table is generated from the registry
        assert registry_table() in (REPO / "README.md").read_text()


def test_weight_files_are_not_packaged():
    """pretrained/weights/ is data of the repository, not of the wheel: no package data names it
    (checked by building a wheel with a file there: only the modules of mimokd/pretrained/ go in)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg.get("options", "include_package_data", fallback="false").lower() in ("false", "0", "no")
    for section in ("options.package_data", "options.data_files"):
        values = dict(cfg.items(section)).values() if cfg.has_section(section) else ()
        assert not any("weights" in v or "h5" in v for v in values)
    manifest = REPO / "MANIFEST.in"
    assert not manifest.exists() or "weights" not in manifest.read_text()


def test_entries_are_validated_and_named(stored, monkeypatch):
    entry = stored.entry
    assert entry.name == NAME and entry.file == f"{NAME}.weights.h5"
    monkeypatch.delenv(registry.ENV_WEIGHTS_URL, raising=False)
    assert entry.url == ("https://raw.githubusercontent.com/mimokd/mimokd/"
                         f"{registry.RELEASE_TAG}/pretrained/weights/{NAME}.weights.h5")
    assert replace(entry, tag="v9").url.endswith(f"/v9/pretrained/weights/{NAME}.weights.h5")
    monkeypatch.setenv(registry.ENV_WEIGHTS_URL, "http://mirror.example/w")
    assert entry.url == f"http://mirror.example/w/{NAME}.weights.h5"
    with pytest.raises(ValueError, match="sha256 must be 64 lowercase hex digits"):
        replace(entry, sha256="abc")
    with pytest.raises(ValueError, match="dtype must be one of"):
        replace(entry, dtype="bfloat16")
    with pytest.raises(ValueError, match="bare '\\*.weights.h5' name"):
        replace(entry, file="../x.weights.h5")


def test_lookup_and_its_errors(stored):
    e = stored.entry
    other = replace(e, dataset="test-outdoor", file=f"{MODEL}-cr16-test-outdoor.weights.h5", cr=16)
    reg = (e, other)
    assert get_entry(NAME, registry=reg) is e
    assert get_entry((MODEL, CR, DATASET), registry=reg) is e
    assert list_entries(registry=reg) == [e, other]
    assert list_entries(dataset="test-outdoor", registry=reg) == [other]
    assert list_entries(model="crnet", registry=reg) == []
    with pytest.raises(UnknownEntryError, match="^csinet has pretrained weights for test-indoor at cr 64 only; "
                       "received cr 4$"):
        get_entry((MODEL, 4, DATASET), registry=(e,))
    with pytest.raises(UnknownEntryError, match="for test-indoor at cr 64 and test-outdoor at cr 16 only; "
                       "received dataset 'pretrained' at cr 64"):
        get_entry((MODEL, CR, "pretrained"), registry=reg)
    with pytest.raises(UnknownEntryError, match="crnet has no pretrained weights; the registry has weights for csinet"):
        get_entry("crnet-cr4-test-indoor", registry=reg)
    with pytest.raises(UnknownEntryError, match=f"Unknown pretrained entry 'nonsense'.*Registered entries: {NAME}"):
        get_entry("nonsense", registry=reg)
    with pytest.raises(UnknownEntryError, match="No pretrained weights are registered yet"):
        get_entry(NAME, registry=())
    with pytest.raises(ValueError, match="names some entries twice"):
        list_entries(registry=(e, e))


def test_registry_table_and_stanza(stored):
    table = registry_table(registry=(stored.entry,))
    assert table.startswith("| entry | ratio | dataset | NMSE dB (global) | NMSE dB (per batch) |")
    assert f"| {NAME} | 1/64 | test-indoor | -1.50 | -1.40 | 0.5000 | -5.84 (test) |" in table
    assert "vanilla, 1 epochs x 100 samples" in table and "float16" in table
    assert registry_table(registry=()) == "No pretrained weights are registered yet.\n"
    stanza = entry_stanza(stored.entry)
    assert "height=" not in stanza and "tag=" not in stanza  # defaults are left out
    assert eval(stanza, dict(PretrainedEntry=PretrainedEntry, Recipe=Recipe, Metrics=Metrics)) == stored.entry
    printed = io.StringIO()
    entry = print_entry_stanza(MODEL, CR, DATASET, stored.path, recipe=RECIPE, metrics=METRICS, file=printed)
    assert entry == stored.entry
    assert printed.getvalue() == stanza + ",\n" and f"sha256={stored.entry.sha256!r}," in stanza
    with pytest.raises(ValueError, match="is named crnet-cr64-test-indoor.weights.h5. Received: .*csinet-cr64"):
        make_entry("crnet", CR, DATASET, stored.path, recipe=RECIPE, metrics=METRICS)


# ---------------------------------------------------------------------------------------------
# Storage: float16 files
# ---------------------------------------------------------------------------------------------


def test_float16_storage_round_trip(stored, tmp_path, csi_batch):
    with h5py.File(stored.path) as f:
        dtypes = set()
        f.visititems(lambda n, o: dtypes.add(o.dtype.name) if isinstance(o, h5py.Dataset) else None)
        assert dtypes == {"float16"} and "optimizer" not in f
    model = load_entry_weights(create_model(MODEL, cr=CR), stored.path)
    _assert_loaded(model, stored)  # every weight is the float16 rounding of the original
    np.testing.assert_allclose(_output(model, csi_batch), _output(stored.model, csi_batch), atol=1e-2)
    # float16 halves the file; the same weights give the same bytes; float32 is exact
    full = tmp_path / "full.weights.h5"
    assert save_entry_weights(stored.model, full, dtype="float32")[1] > 1.5 * stored.entry.size
    exact = load_entry_weights(create_model(MODEL, cr=CR), full)
    for got, want in zip(exact.get_weights(), stored.weights):
        np.testing.assert_array_equal(got, want)
    again = tmp_path / f"{NAME}.weights.h5"
    assert save_entry_weights(stored.model, again) == (stored.entry.sha256, stored.entry.size)


def test_saving_refuses_what_float16_cannot_hold(tmp_path):
    model = create_model(MODEL, cr=CR)
    weights = model.get_weights()
    weights[0][...] = 1e6
    model.set_weights(weights)
    with pytest.raises(ValueError, match="does not fit float16: max \\|value\\| 1e\\+06"):
        save_entry_weights(model, tmp_path / "big.weights.h5")
    assert not list(tmp_path.iterdir())  # nothing half-written
    with pytest.raises(ValueError, match="named '\\*.weights.h5'"):
        save_entry_weights(model, tmp_path / "x.h5")


def test_loading_checks_the_architecture_first(stored, tmp_path):
    crnet = create_model("crnet", cr=CR)
    before = [w.copy() for w in crnet.get_weights()]
    with pytest.raises(ValueError, match="does not fit crnet_cr64: the file holds 48 arrays, the model 94 variables"):
        load_entry_weights(crnet, stored.path)
    assert all(np.array_equal(a, b) for a, b in zip(before, crnet.get_weights()))
    with h5py.File(tmp_path / "keras2.h5", "w") as f:
        f.create_group("model_weights")
    with pytest.raises(ValueError, match="not a Keras 3 weights file.*mimokd import"):
        load_entry_weights(crnet, tmp_path / "keras2.h5")


# ---------------------------------------------------------------------------------------------
# create_model(..., weights=...): offline copies, checkout, cache, download
# ---------------------------------------------------------------------------------------------


def test_weights_from_an_offline_folder_argument_and_env(env, stored, monkeypatch):
    _put(env.offline, stored.bytes)
    _assert_loaded(create_model(MODEL, cr=CR, weights=DATASET, weights_dir=env.offline), stored)
    monkeypatch.setenv(storage.ENV_WEIGHTS_DIR, str(env.offline))
    model = create_model(MODEL, cr=CR, weights=DATASET)
    _assert_loaded(model, stored)
    assert model.name == f"{MODEL}_cr{CR}"
    _assert_loaded(create_model(MODEL, cr=CR, weights=NAME), stored)  # the entry's name works too
    assert not env.cache.exists()  # nothing downloaded or cached


def test_weights_from_the_checkout(env, stored):
    _put(env.checkout, stored.bytes)
    _assert_loaded(create_model(MODEL, cr=CR, weights=DATASET), stored)
    places = storage.locate(stored.entry)
    assert [p.where for p in places] == ["checkout", "cache"]
    assert places[1].path == env.cache / stored.entry.file


def test_the_checkout_folder_is_found_beside_the_package():
    import mimokd.pretrained

    assert storage.CHECKOUT_WEIGHTS_DIR == Path(mimokd.pretrained.__file__).resolve().parent / "weights"


def test_default_cache_is_under_keras_home(monkeypatch, tmp_path):
    monkeypatch.delenv(storage.ENV_CACHE_DIR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert storage.default_cache_dir() == tmp_path / "mimokd"
    monkeypatch.delenv("KERAS_HOME")
    assert storage.default_cache_dir() == Path.home() / ".keras" / "mimokd"


def test_download_over_loopback_http_then_the_cache(env, stored, server, tmp_path):
    _put(server.tag_dir, stored.bytes)  # served at <url>/<RELEASE_TAG>/<file>
    cache = tmp_path / "my-cache"
    model = create_model(MODEL, cr=CR, weights=DATASET, cache_dir=cache)
    _assert_loaded(model, stored)
    assert server.hits == [f"/{registry.RELEASE_TAG}/{NAME}.weights.h5"]
    assert (cache / f"{NAME}.weights.h5").read_bytes() == stored.bytes
    assert [p.name for p in cache.iterdir()] == [f"{NAME}.weights.h5"]  # no temporary folder left
    server.stop()
    _assert_loaded(create_model(MODEL, cr=CR, weights=DATASET, cache_dir=cache), stored)  # no server needed
    assert len(server.hits) == 1


def test_a_tampered_offline_copy_is_refused_and_left_as_is(env, stored):
    bad = _put(env.offline, _tampered(stored.bytes))
    good = _put(env.cache, stored.bytes)  # a good copy later in the order is not used instead
    mtime = bad.stat().st_mtime_ns
    with pytest.raises(ChecksumError) as info:
        create_model(MODEL, cr=CR, weights=DATASET, weights_dir=env.offline)
    message = str(info.value)
    actual = file_digest(bad)[0]
    assert str(bad) in message and stored.entry.sha256 in message and actual in message
    assert "offline copy of " + NAME in message and "was not loaded" in message
    assert bad.read_bytes() == _tampered(stored.bytes) and bad.stat().st_mtime_ns == mtime
    assert good.read_bytes() == stored.bytes
    assert isinstance(info.value, ValueError) and info.value.actual == actual


def test_a_tampered_cached_copy_is_refused_not_downloaded_over(env, stored, server):
    """keras.utils.get_file would download over a cached file whose hash differs; we refuse it."""
    _put(server.tag_dir, stored.bytes)
    bad = _put(env.cache, _tampered(stored.bytes))
    with pytest.raises(ChecksumError, match=f"cache copy of {NAME}"):
        create_model(MODEL, cr=CR, weights=DATASET)
    with pytest.raises(ChecksumError):
        storage.download_entry(stored.entry)
    assert server.hits == [] and bad.read_bytes() == _tampered(stored.bytes)


def test_a_git_lfs_pointer_is_named(env, stored):
    _put(env.checkout, b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    with pytest.raises(ChecksumError, match="Git LFS pointer"):
        create_model(MODEL, cr=CR, weights=DATASET)


def test_a_download_that_does_not_match_is_refused_and_not_cached(env, stored, server):
    _put(server.tag_dir, _tampered(stored.bytes))
    with pytest.raises(ChecksumError, match=f"downloaded copy of {NAME}.*The download was discarded"):
        create_model(MODEL, cr=CR, weights=DATASET)
    assert len(server.hits) == 1
    assert list(env.cache.iterdir()) == []  # neither the file nor a temporary folder


def test_a_failed_download_says_where_it_looked(env, stored, server):
    with pytest.raises(WeightsUnavailableError, match=f"Could not download {NAME} from http://127.0.0.1:.*404"):
        create_model(MODEL, cr=CR, weights=DATASET)
    with pytest.raises(FileNotFoundError, match="download=False"):
        storage.fetch_entry(NAME, download=False)


def test_unknown_entries_ratios_and_keywords(env, stored):
    with pytest.raises(UnknownEntryError, match="csinet has pretrained weights for test-indoor at cr 64 only; "
                       "received cr 16"):
        create_model(MODEL, cr=16, weights=DATASET)
    with pytest.raises(UnknownEntryError, match="received dataset 'pretrained'"):
        create_model(MODEL, cr=CR, weights="pretrained")
    with pytest.raises(UnknownEntryError, match="crnet has no pretrained weights"):
        create_model("crnet", cr=CR, weights=DATASET)
    with pytest.raises(ValueError, match=f"entry {NAME} is for csinet at cr 64; received model='csinet_authors'"):
        create_model("csinet_authors", cr=CR, weights=NAME)
    with pytest.raises(ValueError, match="holds weights for 32 x 32 CSI"):
        create_model(MODEL, cr=CR, height=64, weights=DATASET)
    with pytest.raises(ValueError, match="overrides \\['batchnorm'\\] change its architecture"):
        create_model(MODEL, cr=CR, weights=DATASET, batchnorm="columns")
    with pytest.raises(ValueError, match="weights_dir= and cache_dir= apply to weights="):
        create_model(MODEL, cr=CR, weights_dir="somewhere")


def test_create_model_rejects_unknown_keywords():
    with pytest.raises(ValueError, match="create_model\\('csinet'\\) got unknown keyword arguments \\['wieghts'\\]. "
                       "It accepts cr, height, width, weights, weights_dir, cache_dir and the CsiNet arguments "
                       "batchnorm, name. Received: wieghts='x'"):
        create_model("csinet", wieghts="x")
    with pytest.raises(ValueError, match="unknown keyword arguments \\['crblock_width'\\]"):
        create_model("csinet", crblock_width=16)
    assert accepted_overrides("crnet") == ["binarized", "crblock_width", "encoder", "encoder_width", "name",
                                           "rezero"]
    assert create_model("crnet", cr=CR, crblock_width=3, name="mine").name == "mine"


def test_weights_from_a_path(env, stored, tmp_path):
    _assert_loaded(create_model(MODEL, cr=CR, weights=stored.path), stored)
    _assert_loaded(create_model(MODEL, cr=CR, weights=str(stored.path), name="x"), stored)
    with pytest.raises(FileNotFoundError, match="No weights file at"):
        create_model(MODEL, cr=CR, weights=str(tmp_path / "none.weights.h5"))
    with pytest.raises(ValueError, match="is a whole .keras model"):
        create_model(MODEL, cr=CR, weights="best.keras")


# ---------------------------------------------------------------------------------------------
# mimokd pretrained list | download | verify, mimokd models
# ---------------------------------------------------------------------------------------------


def test_cli_list(env, stored, capsys, monkeypatch):
    assert main(["pretrained", "list"]) == 0
    assert f"| {NAME} | 1/64 | test-indoor | -1.50 |" in capsys.readouterr().out
    assert main(["pretrained", "list", "--model", "crnet"]) == 0
    assert "No pretrained weights are registered for this selection." in capsys.readouterr().out
    assert main(["models", "--cr", "64"]) == 0
    assert f"| {NAME} | 1/64 |" in capsys.readouterr().out
    monkeypatch.setattr(registry, "ENTRIES", ())
    assert main(["pretrained", "list"]) == 0
    assert "No pretrained weights are registered yet." in capsys.readouterr().out
    assert main(["pretrained", "verify"]) == 0
    assert "nothing to verify" in capsys.readouterr().out


def test_cli_verify(env, stored, capsys):
    _put(env.checkout, stored.bytes)
    assert main(["pretrained", "verify"]) == 0
    out = capsys.readouterr().out
    assert "checkout  OK" in out and "cache     missing" in out and "0 MISMATCH" in out
    bad = _put(env.offline, _tampered(stored.bytes))
    assert main(["pretrained", "verify", NAME, "--weights-dir", str(env.offline)]) == 1
    captured = capsys.readouterr()
    assert f"offline   MISMATCH  {bad} (sha256 {file_digest(bad)[0]}" in captured.out
    assert "1 MISMATCH" in captured.out and "do not match" in captured.err
    assert bad.read_bytes() == _tampered(stored.bytes)
    assert main(["pretrained", "verify", "crnet-cr4-test-indoor"]) == 1
    assert "error: crnet has no pretrained weights" in capsys.readouterr().err


def test_cli_download(env, stored, server, capsys, tmp_path):
    _put(server.tag_dir, stored.bytes)
    cache = tmp_path / "cli-cache"
    assert main(["pretrained", "download", NAME, "--cache-dir", str(cache)]) == 0
    assert f"{NAME}: downloaded, sha256 verified: {cache / stored.entry.file}" in capsys.readouterr().out
    assert main(["pretrained", "download", "--all", "--cache-dir", str(cache)]) == 0
    assert f"{NAME}: already cached" in capsys.readouterr().out
    assert len(server.hits) == 1
    with pytest.raises(SystemExit) as exit_:  # a usage error
        main(["pretrained", "download"])
    assert exit_.value.code == 2 and "or pass --all" in capsys.readouterr().err
    assert main(["pretrained", "download", "nonsense"]) == 1
    assert "error: Unknown pretrained entry 'nonsense'" in capsys.readouterr().err
    _put(env.cache, _tampered(stored.bytes))  # the default cache holds a bad copy: refused, kept
    assert main(["pretrained", "download", NAME]) == 1
    assert "does not match the registry" in capsys.readouterr().err
    assert (env.cache / stored.entry.file).read_bytes() == _tampered(stored.bytes)
    server.stop()
    os.remove(cache / stored.entry.file)
    assert main(["pretrained", "download", NAME, "--cache-dir", str(cache)]) == 1
    assert f"error: Could not download {NAME}" in capsys.readouterr().err
