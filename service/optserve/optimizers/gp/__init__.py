"""Gaussian-process model and acquisition functions of the Bayesian optimizer."""

from .acquisition import log_expected_improvement
from .model import GaussianProcess, Hyperparameters

__all__ = ["GaussianProcess", "Hyperparameters", "log_expected_improvement"]
