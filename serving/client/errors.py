"""The client's errors: one type, `ClientError`, with a subclass per thing that can be wrong.

Every failure a user can act on (a bad flag or input file, an unreachable server, an error
answer, a model config edit that is not allowed) is a `ctpipe.common.errors.UserError`, so `ctpipe`
prints its message as one line without wrappers in the command modules. When the server
answered with an error, `code` is its gRPC status: the code of the server side's
`ctpipe.serving.server.errors.RequestError`, whose message is quoted in this one's.
"""
from __future__ import annotations

import grpc

from ctpipe.common.errors import UserError


class ClientError(UserError):
    """A call or an input that failed; the message names the server, model or file."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.code = code


class ModelEndedError(ClientError):
    """A model version reached END: its load failed (TF Serving does not retry it later)."""


class ExampleError(ClientError, ValueError):
    """An input row cannot be turned into a tf.Example; the message names the row and column."""


class ModelConfigError(ClientError, ValueError):
    """The model config file, the model, the label or the version is wrong (nothing written)."""
