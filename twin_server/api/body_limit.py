"""An ASGI middleware that refuses request bodies over a size limit with 413.

Without it, FastAPI reads a body whole before the route (and the sign-in check of a login)
sees it: five unauthenticated 100 MB login bodies at once took the server from 104 to
1,468 MiB. The limit is checked twice: by ``Content-Length`` before anything is read, and by
the bytes actually streamed (a chunked body has no length), so no request ever holds more
than ``max_bytes`` of body in memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimitMiddleware", "BodyTooLarge"]

# The largest body any route takes is a coaching note (2,000 characters of text).
DEFAULT_MAX_BODY_BYTES = 256 * 1024


def _route_pattern(path: str) -> re.Pattern[str]:
    """A route path as a regular expression: each ``{name}`` is one path segment."""
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit.

    An ``HTTPException``, so FastAPI's body parsing lets it through (it turns any other
    error into a 400) and the app answers 413 like any refusal.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for an HTTP request body over ``max_bytes``.

    Parameters
    ----------
    app : ASGIApp
        The wrapped app.
    max_bytes : int
        The largest body accepted.
    path_limits : mapping of str to int, optional
        Route paths (``/api/editor/{site}/plan``: a ``{name}`` is one path segment) whose
        routes take larger bodies (uploads they read as a stream and cap themselves), with
        their own limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        path_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self._path_limits = [(_route_pattern(path), int(n)) for path, n in (path_limits or {}).items()]

    def limit_for(self, path: str) -> int:
        """The body limit of a request path: its route's own, else ``max_bytes``."""
        for pattern, limit in self._path_limits:
            if pattern.match(path):
                return max(limit, self.max_bytes)
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > max_bytes
            except ValueError:
                too_large = False  # the server has already refused a malformed length
            if too_large:
                await self._refuse(scope, receive, send, max_bytes)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Raised where no exception handler turned it into a response (e.g. a plain
            # Starlette route): answer here, unless an answer has already begun.
            if started:
                raise
            await self._refuse(scope, receive, send, max_bytes)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {max_bytes} bytes"}, 413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)
