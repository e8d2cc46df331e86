"""Pretrained weights: a registry (url, sha256, metrics) with cached, checksummed downloads.

Nothing is registered yet: the weights come with the pretrained-weights issue. Until then, train
with ``mimokd train`` and load the ``.keras`` file it writes.
"""
