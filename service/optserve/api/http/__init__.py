"""SigOpt-compatible HTTP/JSON API (``optserve serve --http-port P``)."""

from .app import HttpServer, build_app

__all__ = ["HttpServer", "build_app"]
