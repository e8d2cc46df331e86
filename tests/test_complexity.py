"""UE encoder complexity reproduces Table I of Lu et al. and Table III of Cui et al."""

import pytest

from mimokd.export.flops import count_complexity, zoo_complexity_table
from mimokd.zoo import create_model

# Lu et al. Table I: (multiplications, parameters) in thousands, rounded as printed.
LU_TABLE_I = {
    ("crnet", 4): (1204, 1049),
    ("crnet", 8): (680, 525),
    ("crnet", 16): (418, 262),
    ("crnet", 32): (287, 131),
    ("bcrnet", 4): (156, 33),
    ("bcrnet", 8): (156, 17),
    ("bcrnet", 16): (156, 8),
    ("bcrnet", 32): (156, 4),
}

# Cui et al. Table III: UE FLOPs by eq. (13)-(14), exact.
CUI_TABLE_III = {
    ("crnet_cui", 16): 11_407_232,
    ("crnet_cui", 32): 11_145_152,
    ("crnet_se", 16): 601_984,
    ("crnet_se", 32): 339_904,
}


@pytest.mark.parametrize("key", sorted(LU_TABLE_I))
def test_lu_table_i(key):
    name, cr = key
    counts = count_complexity(create_model(name, cr=cr).encoder)
    mults, params = LU_TABLE_I[key]
    assert round(counts.mults / 1000) == mults
    assert round(counts.params_binary / 1000) == params


@pytest.mark.parametrize("key", sorted(CUI_TABLE_III))
def test_cui_table_iii(key):
    name, cr = key
    assert count_complexity(create_model(name, cr=cr).encoder).flops == CUI_TABLE_III[key]


def test_cui_encoder_flops_ratio():
    # "the FLOPs of CRNet-SE are 5.28% and 3.05% of CRNet FLOPs" (Cui et al., Sec. V-B-2)
    for cr, ratio in ((16, 5.28), (32, 3.05)):
        se = count_complexity(create_model("crnet_se", cr=cr).encoder).flops
        teacher = count_complexity(create_model("crnet_cui", cr=cr).encoder).flops
        assert round(100 * se / teacher, 2) == ratio


def test_counts_by_hand_for_a_single_conv_encoder():
    # CsiNet encoder at 1/16: conv 3x3 2->2 with bias, BN (2 scale + 2 offset), dense 2048->128.
    counts = count_complexity(create_model("csinet", cr=16).encoder)
    assert counts.params == (3 * 3 * 2 * 2 + 2) + 4 + (2048 * 128 + 128)
    assert counts.mults == 32 * 32 * 2 * 9 * 2 + 2048 * 128
    assert counts.flops == 2 * 32 * 32 * (2 * 9 + 1) * 2 + (2 * 2048 - 1) * 128


def test_readme_model_table_is_generated_from_the_registry():
    from pathlib import Path

    from mimokd.export.flops import COMPLEXITY_COLUMNS
    from mimokd.tables import markdown_table

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert markdown_table(zoo_complexity_table(), COMPLEXITY_COLUMNS) in readme
