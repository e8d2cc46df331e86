"""Every registered pretrained entry, re-measured from its stored file (slow: opt in with -m slow).

The registry's figures are not copied from a training log: this loads each entry the way a user
does (``create_model(..., weights=dataset)``, sha256 checked), regenerates its fixed test split and
measures NMSE (both conventions) and rho again. The quick consistency checks of the registry
against its files (sha256, size) are in ``test_pretrained.py``.
"""

import functools

import pytest

from mimokd.channels.recipes import split_samples
from mimokd.pretrained.registry import ENTRIES
from mimokd.train.vanilla import evaluate_autoencoder
from mimokd.zoo import create_model

pytestmark = pytest.mark.slow
fixed_test_split = functools.cache(split_samples)  # entries of one dataset share its fixed test split


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_figures_are_measured_from_the_stored_file(entry):
    model = create_model(entry.model, cr=entry.cr, weights=entry.dataset)
    test = fixed_test_split(entry.dataset, "test", entry.metrics.test_samples, entry.recipe.data_seed)
    measured = evaluate_autoencoder(model, test["HT"], hf=test["HF"])
    assert measured["nmse_db"] == pytest.approx(entry.metrics.nmse_db, abs=0.01)
    assert measured["nmse_db_per_batch"] == pytest.approx(entry.metrics.nmse_db_per_batch, abs=0.01)
    assert measured["rho"] == pytest.approx(entry.metrics.rho, abs=1e-4)
