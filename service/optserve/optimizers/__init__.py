"""Optimizers behind one entry point: ``suggest``, chosen by the experiment type.

Each optimizer module registers itself (``base.register``) when imported here.

BLAS runs on one thread in this process: a multi-threaded BLAS splits its sums
by thread count, so the last bits of a fit, and from there the suggestion,
would depend on the machine's cores (a suggestion is a function of the
experiment, its seed and its history alone). The service's parallelism is
across requests and in the compiled maximizer, whose results do not depend on
its thread count.
"""

from threadpoolctl import threadpool_limits

from . import bayesian, grid, random_search
from .base import Optimizer, SuggestRequest, register, suggest

# after the imports above: NumPy's and SciPy's BLAS are loaded by then
threadpool_limits(limits=1, user_api="blas")

__all__ = [
    "Optimizer",
    "SuggestRequest",
    "bayesian",
    "grid",
    "random_search",
    "register",
    "suggest",
]
