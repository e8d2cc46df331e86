"""Deployment side: complexity counts by formula (``flops``); exported artifacts come later."""

from mimokd.export.flops import Complexity, count_complexity

__all__ = ["Complexity", "count_complexity"]
