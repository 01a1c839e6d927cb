"""optserve: a self-hosted black-box optimization service."""

__version__ = "0.1.0"
