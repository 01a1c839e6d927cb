"""Uniform sampling of linearly constrained parameter blocks.

The double block of an experiment is a polytope, its int block the integer
points of one; both are sampled by hit-and-run in the compiled
:mod:`optserve._sampler`. This package only prepares the problem (start point,
rounding, defaults) and checks what comes back.
"""

from optserve.sampling.polytope import (
    EmptyPolytopeError,
    IntegerPolytope,
    Polytope,
    maximin_design,
)

__all__ = ["EmptyPolytopeError", "IntegerPolytope", "Polytope", "maximin_design"]
