"""The worker's web server: views, blueprints, table routes and the built-in pages.

Example::

    from faust.web import Blueprint, Request, Response, View

    @app.page('/hello/{name}/')
    async def hello(self: View, request: Request, name: str) -> Response:
        return self.json({'hello': name})
"""

from .blueprints import Blueprint
from .cors import CorsOptions
from .server import WebServer
from .views import HTTPError, Request, Response, View

__all__ = ["Blueprint", "CorsOptions", "HTTPError", "Request", "Response", "View", "WebServer"]
