"""The broker's reason for a failed call, from the ``grpc-status-details-bin`` trailer, and
the exceptions SessionBusClient raises: one class per reason, as in the TypeScript SDK.

The broker attaches a ``google.rpc.Status`` whose details hold a ``sessionbus.v1.ErrorDetail``.
Both are decoded here from the protobuf wire format, so neither googleapis-common-protos nor
the generated code is needed.
"""

from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple, Type

import grpc

__all__ = [
    "EntityAlreadyExistsError",
    "EntityNotFoundError",
    "ErrorDetail",
    "InvalidArgumentError",
    "MessageAlreadySettledError",
    "MessageLockLostError",
    "MessageLockedError",
    "MessageNotFoundError",
    "MessageTooLargeError",
    "NotSessionEntityError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RequestTimeoutError",
    "SessionBusError",
    "SessionCannotBeLockedError",
    "SessionIdRequiredError",
    "SessionLockLostError",
    "SessionRequiredError",
    "SessionStateTooLargeError",
    "StoreUnavailableError",
    "UnauthenticatedError",
    "error_detail",
    "session_bus_error",
]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_DETAIL_TYPE = "sessionbus.v1.ErrorDetail"


@dataclass(frozen=True)
class ErrorDetail:
    """sessionbus.v1.ErrorDetail: branch on ``reason``."""

    reason: str = ""
    field: str = ""
    entity_path: str = ""
    session_id: Optional[str] = None
    position: int = 0
    missing_right: str = ""
    """For MISSING_RIGHT: "Manage", "Send" or "Listen"."""


def error_detail(error: grpc.RpcError) -> Optional[ErrorDetail]:
    """The ErrorDetail of a failed call, or None when the broker sent none."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        for number, detail in _fields(value):
            if number != 3:  # google.rpc.Status.details (google.protobuf.Any)
                continue
            any_fields = dict(_fields(detail))
            type_url = bytes(any_fields.get(1, b"")).decode("utf-8", "replace")
            if type_url.rsplit("/", 1)[-1] == _ERROR_DETAIL_TYPE:
                return _error_detail(any_fields.get(2, b""))
    return None


def _error_detail(data: bytes) -> ErrorDetail:
    strings = {1: "reason", 2: "field", 3: "entity_path", 4: "session_id", 6: "missing_right"}
    values = {}
    for number, value in _fields(data):
        if number in strings:
            values[strings[number]] = bytes(value).decode("utf-8", "replace")
        elif number == 5:
            position = value if value < 2**31 else value - 2**64  # int32, sign-extended
            values["position"] = position
    return ErrorDetail(**values)


def _fields(data: bytes) -> Iterator[Tuple[int, object]]:
    """(field number, value) of a protobuf message: ints for varints, bytes for the rest."""
    view = memoryview(data)
    at = 0
    while at < len(view):
        tag, at = _varint(view, at)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, at = _varint(view, at)
            yield number, value
        elif wire_type == 2:
            length, at = _varint(view, at)
            yield number, bytes(view[at : at + length])
            at += length
        elif wire_type == 1:
            at += 8
        elif wire_type == 5:
            at += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")


def _varint(view: memoryview, at: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = view[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, at
        shift += 7


class SessionBusError(Exception):
    """A call the broker (or the connection to it) failed. Branch on ``reason``: the
    broker's (docs/api.md, "Errors"), or the status code's name when it sent none, e.g.
    "UNAVAILABLE". ``code`` is the ``grpc.StatusCode``; ``detail`` the whole ErrorDetail
    (None without one). The RpcError is the ``__cause__``."""

    def __init__(self, message: str, reason: str, code: grpc.StatusCode, detail: Optional[ErrorDetail]):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.code = code
        self.detail = detail
        self.entity_path = (detail.entity_path or None) if detail else None
        self.session_id = detail.session_id if detail else None
        self.field = (detail.field or None) if detail else None
        self.missing_right = (detail.missing_right or None) if detail else None


class EntityNotFoundError(SessionBusError):
    """ENTITY_NOT_FOUND: the queue, topic, subscription or rule does not exist."""


class EntityAlreadyExistsError(SessionBusError):
    """ENTITY_ALREADY_EXISTS: an entity of that name (compared case-insensitively) exists."""


class MessageNotFoundError(SessionBusError):
    """MESSAGE_NOT_FOUND: no deferred message with that sequence number."""


class InvalidArgumentError(SessionBusError):
    """INVALID_ARGUMENT: a request field is out of range or malformed (``field`` says which)."""


class MessageTooLargeError(SessionBusError):
    """MESSAGE_TOO_LARGE: a message over max_message_size_bytes, or a batch over 1 MiB."""


class SessionStateTooLargeError(SessionBusError):
    """SESSION_STATE_TOO_LARGE: the state is over max_session_state_size_bytes; the old one stays."""


class SessionIdRequiredError(SessionBusError):
    """SESSION_ID_REQUIRED: a message without a session id sent to a session queue."""


class SessionRequiredError(SessionBusError):
    """SESSION_REQUIRED: receiving from a session queue without accepting a session."""


class NotSessionEntityError(SessionBusError):
    """NOT_SESSION_ENTITY: a session call on an entity without sessions."""


class SessionLockLostError(SessionBusError):
    """SESSION_LOCK_LOST: the session lock expired or was released; accept the session again."""


class MessageLockLostError(SessionBusError):
    """MESSAGE_LOCK_LOST: unknown, expired, recalled or foreign lock token."""


class MessageAlreadySettledError(SessionBusError):
    """MESSAGE_ALREADY_SETTLED: the delivery was already settled with this token."""


class SessionCannotBeLockedError(SessionBusError):
    """SESSION_CANNOT_BE_LOCKED: another receiver holds the session."""


class MessageLockedError(SessionBusError):
    """MESSAGE_LOCKED: the deferred message is locked by a receiver."""


class QuotaExceededError(SessionBusError):
    """QUOTA_EXCEEDED: the entity reached max_size_bytes."""


class StoreUnavailableError(SessionBusError):
    """STORE_UNAVAILABLE: NATS JetStream did not answer the broker; retry."""


class UnauthenticatedError(SessionBusError):
    """TOKEN_MISSING, TOKEN_INVALID or TOKEN_EXPIRED: pass a connection string or a fresh token."""


class PermissionDeniedError(SessionBusError):
    """MISSING_RIGHT: the token's rule lacks ``missing_right`` ("Manage", "Send", "Listen")."""


class RequestTimeoutError(SessionBusError):
    """REQUEST_TIMED_OUT: request_reply got no reply within its timeout; the request was withdrawn."""


_CLASSES: Dict[str, Type[SessionBusError]] = {
    "ENTITY_NOT_FOUND": EntityNotFoundError,
    "ENTITY_ALREADY_EXISTS": EntityAlreadyExistsError,
    "MESSAGE_NOT_FOUND": MessageNotFoundError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    "MESSAGE_TOO_LARGE": MessageTooLargeError,
    "SESSION_STATE_TOO_LARGE": SessionStateTooLargeError,
    "SESSION_ID_REQUIRED": SessionIdRequiredError,
    "SESSION_REQUIRED": SessionRequiredError,
    "NOT_SESSION_ENTITY": NotSessionEntityError,
    "SESSION_LOCK_LOST": SessionLockLostError,
    "MESSAGE_LOCK_LOST": MessageLockLostError,
    "MESSAGE_ALREADY_SETTLED": MessageAlreadySettledError,
    "SESSION_CANNOT_BE_LOCKED": SessionCannotBeLockedError,
    "MESSAGE_LOCKED": MessageLockedError,
    "QUOTA_EXCEEDED": QuotaExceededError,
    "STORE_UNAVAILABLE": StoreUnavailableError,
    "TOKEN_MISSING": UnauthenticatedError,
    "TOKEN_INVALID": UnauthenticatedError,
    "TOKEN_EXPIRED": UnauthenticatedError,
    "MISSING_RIGHT": PermissionDeniedError,
    "REQUEST_TIMED_OUT": RequestTimeoutError,
}

# A reason the table does not know keeps the class of its status code.
_CLASSES_OF_CODE: Dict[grpc.StatusCode, Type[SessionBusError]] = {
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
}


def session_bus_error(error: grpc.RpcError) -> SessionBusError:
    """The SessionBusError of the class of a failed call's reason."""
    detail = error_detail(error)
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    reason = (detail.reason if detail else "") or code.name
    cls = _CLASSES.get(reason) or _CLASSES_OF_CODE.get(code) or SessionBusError
    message = error.details() if hasattr(error, "details") else str(error)
    return cls(message or "", reason, code, detail)
