"""Trainers: vanilla ``fit`` of a zoo autoencoder (KD trainers build on it), schedules, strategies."""

from mimokd.train.distribute import STRATEGIES, make_strategy
from mimokd.train.schedules import WarmupCosine, warmup_cosine  # WarmupCosine: deprecated
from mimokd.train.vanilla import TrainConfig, compile_autoencoder, evaluate_autoencoder, fit_autoencoder

__all__ = [
    "STRATEGIES",
    "TrainConfig",
    "WarmupCosine",
    "compile_autoencoder",
    "evaluate_autoencoder",
    "fit_autoencoder",
    "make_strategy",
    "warmup_cosine",
]
