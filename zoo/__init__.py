"""The CSI-feedback model zoo: CsiNet, CRNet, BCRNet, Cui et al.'s CRNet and CRNet-SE.

Every model is a :class:`CsiAutoencoder` whose ``encoder`` (UE) and ``decoder`` (BS) are separate
Keras models sharing its weights. Build them by name with :func:`create_model`, untrained or with
registered pretrained weights (``weights="cost2100-indoor"``, see :mod:`mimokd.pretrained`).
"""

from mimokd.zoo.autoencoder import ComposedAutoencoder, CsiAutoencoder, check_teacher
from mimokd.zoo.crnet import CRNet
from mimokd.zoo.csinet import CsiNet
from mimokd.zoo.layers import BinarizedDense, ReZero, ste_sign
from mimokd.zoo.registry import (
    COMPRESSION_RATIOS,
    PRESETS,
    accepted_overrides,
    create_model,
    list_models,
    model_pairs,
    teacher_of,
)

__all__ = [
    "COMPRESSION_RATIOS",
    "PRESETS",
    "BinarizedDense",
    "CRNet",
    "ComposedAutoencoder",
    "CsiAutoencoder",
    "CsiNet",
    "ReZero",
    "accepted_overrides",
    "check_teacher",
    "create_model",
    "list_models",
    "model_pairs",
    "ste_sign",
    "teacher_of",
]
