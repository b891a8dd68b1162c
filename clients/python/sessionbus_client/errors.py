"""The broker's reason for a failed call, from the ``grpc-status-details-bin`` trailer.

The broker attaches a ``google.rpc.Status`` whose details hold a ``sessionbus.v1.ErrorDetail``.
Both are decoded here from the protobuf wire format, so neither googleapis-common-protos nor
the generated code is needed.
"""

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import grpc

__all__ = ["ErrorDetail", "error_detail"]

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
