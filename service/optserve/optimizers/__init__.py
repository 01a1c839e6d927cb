"""Optimizers behind one entry point: ``suggest``, chosen by the experiment type."""

from .base import SuggestRequest, suggest

__all__ = ["SuggestRequest", "suggest"]
