"""Connection strings in the Service Bus form.

``Endpoint=sb://host:port/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>``, or with a
ready-made ``SharedAccessSignature=<token>`` instead of the key pair. ``EntityPath=<queue or
topic>`` narrows tokens to that entity (needed for a rule that lives on an entity), and
``UseDevelopmentEmulator=true`` means the broker serves plaintext; without it, TLS.

Several brokers on one store are a comma-separated list of endpoints,
``Endpoint=sb://a:50051/,sb://b:50051/``: create_channel then connects to the first that
answers (see its documentation). Tokens point at the first endpoint; brokers read only the
path of a token's resource, so one token is good on every broker of the namespace.

Field names are case-insensitive and unknown fields are ignored, as Service Bus clients do.
No error message ever contains a key or a token.
"""

from dataclasses import dataclass
from typing import Optional, Tuple
from urllib.parse import urlsplit

__all__ = ["ConnectionString", "ConnectionStringError", "parse_connection_string"]

# The port an sb:// endpoint without one means: the broker's default gRPC port.
DEFAULT_GRPC_PORT = 50051

_FIELDS = {
    "endpoint": "Endpoint",
    "sharedaccesskeyname": "SharedAccessKeyName",
    "sharedaccesskey": "SharedAccessKey",
    "sharedaccesssignature": "SharedAccessSignature",
    "entitypath": "EntityPath",
    "usedevelopmentemulator": "UseDevelopmentEmulator",
}

_EXAMPLE = "Endpoint=sb://host:port/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>"


class ConnectionStringError(ValueError):
    """A connection string that cannot be used; the message never shows its key."""


@dataclass(frozen=True)
class ConnectionString:
    """What a connection string says."""

    endpoint: str
    """The endpoint as written, e.g. ``sb://127.0.0.1:50051/`` (or a comma-separated list)."""
    host: str
    """Host name or address of the (first) endpoint (an IPv6 address without brackets)."""
    port: int
    tls: bool
    """Whether the broker serves TLS (False with ``UseDevelopmentEmulator=true``)."""
    resource_uri: str
    """Where tokens point (``sr``): ``sb://host:port/``, or with EntityPath
    ``sb://host:port/<entity path>``."""
    entity_path: Optional[str] = None
    key_name: Optional[str] = None
    key: Optional[str] = None
    shared_access_signature: Optional[str] = None
    hosts: Tuple[Tuple[str, int], ...] = ()
    """Host and port of every endpoint, in the order written (the first is host, port)."""

    @property
    def target(self) -> str:
        """The gRPC target of the (first) endpoint, ``host:port`` (an IPv6 address in brackets)."""
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def targets(self) -> Tuple[str, ...]:
        """Every endpoint as ``host:port``, in the order written."""
        return tuple(f"{_bracketed(host)}:{port}" for host, port in self.hosts or ((self.host, self.port),))

    def __repr__(self) -> str:
        # Keys and tokens stay out of logs and tracebacks.
        hidden = lambda value: None if value is None else "***"  # noqa: E731
        return (
            f"ConnectionString(endpoint={self.endpoint!r}, entity_path={self.entity_path!r}, "
            f"key_name={self.key_name!r}, key={hidden(self.key)!r}, "
            f"shared_access_signature={hidden(self.shared_access_signature)!r}, tls={self.tls!r})"
        )


def parse_connection_string(text: str) -> ConnectionString:
    """Reads a connection string; raises ConnectionStringError naming what is wrong."""
    fields = {}
    for index, part in enumerate(text.split(";")):
        trimmed = part.strip()
        if not trimmed:
            continue
        name, sep, value = trimmed.partition("=")
        # The part may be a pasted key: say where it is, not what it says.
        if not sep or not name.strip():
            raise ConnectionStringError(
                f'Part {index + 1} of the connection string is not "Name=value"; expected {_EXAMPLE}.'
            )
        name = name.strip().lower()
        if name not in _FIELDS:
            continue
        if name in fields:
            raise ConnectionStringError(f"The connection string has {_FIELDS[name]} twice.")
        fields[name] = value.strip()

    endpoint = fields.get("endpoint")
    if not endpoint:
        raise ConnectionStringError(f"The connection string has no Endpoint; expected {_EXAMPLE}.")
    emulator = fields.get("usedevelopmentemulator", "false").lower()
    if emulator not in ("true", "false"):
        raise ConnectionStringError(
            f'The connection string\'s UseDevelopmentEmulator is "{emulator}"; write true '
            "(plaintext) or false (TLS)."
        )
    endpoints = [_parse_endpoint(each.strip(), emulator == "true") for each in endpoint.split(",")]
    tls = endpoints[0][2]
    if any(each[2] != tls for each in endpoints):
        raise ConnectionStringError(
            f'The connection string\'s endpoints "{endpoint}" mix TLS (https://, or sb:// without '
            "UseDevelopmentEmulator=true) and plaintext; all brokers of one namespace serve the same."
        )
    host, port = endpoints[0][0], endpoints[0][1]
    namespace_uri = f"sb://{_bracketed(host)}:{port}/"

    entity_path = fields.get("entitypath", "").strip("/") or None
    key_name = fields.get("sharedaccesskeyname")
    key = fields.get("sharedaccesskey")
    signature = fields.get("sharedaccesssignature")
    if signature is not None:
        if key_name is not None or key is not None:
            raise ConnectionStringError(
                "The connection string has both a SharedAccessSignature and a "
                "SharedAccessKeyName/SharedAccessKey; keep one of the two."
            )
        if not signature:
            raise ConnectionStringError("The connection string's SharedAccessSignature is empty.")
    elif not key_name or not key:
        missing = [name for name, value in (("SharedAccessKeyName", key_name), ("SharedAccessKey", key)) if not value]
        raise ConnectionStringError(
            f"The connection string has no {' and no '.join(missing)} (or give a "
            f"SharedAccessSignature instead); expected {_EXAMPLE}."
        )

    return ConnectionString(
        endpoint=endpoint,
        host=host,
        port=port,
        tls=tls,
        resource_uri=f"{namespace_uri}{entity_path}" if entity_path else namespace_uri,
        entity_path=entity_path,
        key_name=key_name,
        key=key,
        shared_access_signature=signature,
        hosts=tuple((each[0], each[1]) for each in endpoints),
    )


def _parse_endpoint(endpoint: str, emulator: bool) -> Tuple[str, int, bool]:
    """One endpoint of the list: host, port, and whether over TLS."""
    if not endpoint:
        raise ConnectionStringError(
            "The connection string's Endpoint list has an empty entry; write sb://host:port/ entries "
            "separated by commas."
        )
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("sb", "http", "https") or not parsed.netloc:
        raise ConnectionStringError(
            f'The connection string\'s Endpoint "{endpoint}" is not a URL like sb://host:port/.'
        )
    try:
        host, explicit_port = parsed.hostname, parsed.port
    except ValueError:
        raise ConnectionStringError(
            f'The connection string\'s Endpoint "{endpoint}" has a port that is not a number.'
        ) from None
    if not host:
        raise ConnectionStringError(f'The connection string\'s Endpoint "{endpoint}" names no host.')
    if parsed.path not in ("", "/"):
        raise ConnectionStringError(
            f'The connection string\'s Endpoint "{endpoint}" has a path; write sb://host:port/ '
            "and name the entity in EntityPath."
        )
    tls = parsed.scheme == "https" or (parsed.scheme == "sb" and not emulator)
    if explicit_port is not None:
        port = explicit_port
    else:
        port = DEFAULT_GRPC_PORT if parsed.scheme == "sb" else 443 if tls else 80
    return host, port, tls


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
