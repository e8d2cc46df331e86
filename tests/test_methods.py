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
