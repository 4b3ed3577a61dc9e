"""The server's errors: what a request is answered with, and why the server could not start.

`RequestError` is the one error of the request path: every check, on both front ends, raises it
with TF Serving's status code and message; the gRPC front end sends it as the call's status, the
REST one as `{"error": message}` with TF Serving's HTTP status. On the client side the same code
and message arrive inside a `ctpipe.serving.client.errors.ClientError`, whose `code` is this `code`.
"""
from __future__ import annotations

import grpc

MAX_MESSAGE_CHARS = 1024
_TRUNCATION_MARK = "...TRUNCATED"

# TF Serving's HTTP mapping of status codes (REST API).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.CANCELLED: 499,
}


class RequestError(Exception):
    """A request TF Serving would answer with `code` and `message`."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = truncate(message)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


class StartupError(RuntimeError):
    """The server cannot start (an initial version ended in error, a port or a file is wrong):
    TF Serving exits with `Failed to start server`."""


def truncate(message: str) -> str:
    """TF Serving keeps the first 1024 characters of a longer message and marks the cut."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + _TRUNCATION_MARK


def invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.NOT_FOUND, message)
