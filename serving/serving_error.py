"""One error type for the model server, with TF Serving's status codes.

Every module of the server raises `ServingError(code, message)`. The REST API
answers it with `{"error": message}` and the HTTP status that TF Serving's own
HTTP server maps the code to (`http_server.cc`, `ToHTTPStatusCode`); the gRPC
API aborts the call with the same code. A few REST-only conditions (an
oversize body, a missing Content-Length) carry their own HTTP status.

Imports only the standard library (see `serving/server.py`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# The canonical status codes (google.rpc.Code / grpc.StatusCode names) and
# the HTTP status TF Serving answers each with.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 412,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A request the server refuses or could not answer.

    Args:
        code: a status code name from `HTTP_STATUS` (e.g. "INVALID_ARGUMENT").
        message: what is wrong, naming the field and the valid choices.
        http_status: overrides the HTTP status mapped from `code` (REST only:
            413 for an oversize body, 411 for a missing length).
    """

    def __init__(self, code: str, message: str, http_status: int | None = None):
        if code not in HTTP_STATUS:
            raise ValueError(
                f"Unknown status code {code!r}. Valid: {', '.join(HTTP_STATUS)}."
            )
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS[code]

    def __str__(self) -> str:
        return self.message


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


def choices(kind: str, name: str, valid: Iterable[str]) -> str:
    """`Unknown <kind> 'x'. Did you mean 'y'? Valid: a, b.` (for messages).

    The server imports nothing from `official`, so this is the server's own
    copy of `official.base.suggest.did_you_mean`, with the same cutoff.
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(name[:_SHOWN], valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(valid) if valid else "(none)"
    return f"Unknown {kind} {_clip(name)}.{hint} Valid: {listed}."


_SHOWN = 200  # characters of a received name quoted back


def _clip(name: str) -> str:
    """`repr(name)`, cut after `_SHOWN` characters (a request may send 5000)."""
    if len(name) <= _SHOWN:
        return repr(name)
    return f"{name[:_SHOWN]!r}... ({len(name)} characters)"
