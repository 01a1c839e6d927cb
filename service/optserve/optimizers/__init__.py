"""Optimizers behind one entry point: ``suggest``, chosen by the experiment type.

Each optimizer module registers itself (``base.register``) when imported here.
"""

from . import bayesian, grid, random_search
from .base import Optimizer, SuggestRequest, register, suggest

__all__ = [
    "Optimizer",
    "SuggestRequest",
    "bayesian",
    "grid",
    "random_search",
    "register",
    "suggest",
]
