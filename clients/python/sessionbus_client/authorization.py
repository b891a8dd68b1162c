"""The ``authorization`` metadata on every call, and channels that carry it.

grpc-python refuses call credentials (``grpc.metadata_call_credentials``) on a plaintext
channel, and a broker started for development serves plaintext; so the token is added by a
client interceptor instead, which works on both kinds of channel, for unary and streaming
calls alike.
"""

import collections
import threading
import time
from typing import Callable, Optional, Sequence, Tuple, Union

import grpc

from .connection_string import ConnectionString, parse_connection_string
from .failover import failover_channel_options, failover_target, split_addresses
from .sas_token import RENEW_BEFORE_SECONDS, SAS_SCHEME, SasTokenProvider, sas_token_expiry

__all__ = ["AUTHORIZATION_METADATA_KEY", "AuthorizationInterceptor", "create_channel", "token_source"]

AUTHORIZATION_METADATA_KEY = "authorization"

TokenSource = Callable[[], str]


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class AuthorizationInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Sets the ``authorization`` metadata of every call to ``token()``. Use it with
    ``grpc.intercept_channel(channel, AuthorizationInterceptor(token))``."""

    def __init__(self, token: TokenSource):
        self._token = token

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [(k, v) for k, v in (details.metadata or ()) if k != AUTHORIZATION_METADATA_KEY]
        metadata.append((AUTHORIZATION_METADATA_KEY, self._token()))
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._with_token(client_call_details), request_iterator)


def token_source(
    connection_string: Union[str, ConnectionString, None] = None,
    shared_access_signature: Union[str, TokenSource, None] = None,
) -> Optional[TokenSource]:
    """A function giving the ``authorization`` value of the next call: tokens minted from a
    connection string's key (valid an hour, replaced five minutes before expiry), the token
    of a connection string or one given, or a function's tokens (asked again when the last
    one is within five minutes of its ``se``). None when neither argument is given."""
    if connection_string is not None and shared_access_signature is not None:
        raise ValueError("Pass either a connection string or a shared access signature, not both.")
    if shared_access_signature is not None:
        if callable(shared_access_signature):
            return _cached_by_expiry(shared_access_signature)
        token = _header_value(shared_access_signature)
        return lambda: token
    if connection_string is None:
        return None
    parsed = (
        parse_connection_string(connection_string) if isinstance(connection_string, str) else connection_string
    )
    if parsed.shared_access_signature is not None:
        token = _header_value(parsed.shared_access_signature)
        return lambda: token
    return SasTokenProvider(parsed.resource_uri, parsed.key_name, parsed.key).current


def create_channel(
    connection_string: Union[str, ConnectionString, None] = None,
    *,
    address: Union[str, Sequence[str], None] = None,
    shared_access_signature: Union[str, TokenSource, None] = None,
    root_certificates: Optional[bytes] = None,
    options: Optional[Sequence[Tuple[str, object]]] = None,
) -> grpc.Channel:
    """A channel to the broker whose calls all carry a token.

    The broker's address is ``address`` ("host:port") if given, else the connection string's
    endpoint. TLS when the connection string says so (no ``UseDevelopmentEmulator=true``),
    trusting ``root_certificates`` (PEM) or the system's CAs; plaintext otherwise, and
    always plaintext with ``address`` but no connection string.

    Several brokers sharing one store: ``address="10.0.0.1:50051,10.0.0.2:50051"`` (or a
    list), or a connection string whose Endpoint lists them. The channel then connects to
    the first address that accepts a connection and moves to the next one up when that
    connection fails; calls safe to repeat are repeated there (see ``failover``). Host names
    are resolved once, here. Over TLS, every broker's certificate must be valid for the
    first address's host name. ``options`` given here come after the channel's own.
    """
    parsed = (
        parse_connection_string(connection_string) if isinstance(connection_string, str) else connection_string
    )
    if parsed is None and address is None:
        raise ValueError("create_channel needs a connection string or an address.")
    tls = parsed is not None and parsed.tls
    if address is None:
        targets = list(parsed.targets)
    elif isinstance(address, str):
        targets = [each.strip() for each in address.split(",")]
    else:
        targets = list(address)
    if len(targets) == 1:
        # One broker: any grpc target, as given.
        target = targets[0]
        channel_options = list(options or ())
    else:
        addresses = split_addresses(targets)
        target = failover_target(addresses)
        channel_options = failover_channel_options(*addresses[0], tls) + list(options or ())
    if tls:
        channel = grpc.secure_channel(
            target, grpc.ssl_channel_credentials(root_certificates), options=channel_options
        )
    else:
        channel = grpc.insecure_channel(target, options=channel_options)
    token = token_source(parsed, shared_access_signature)
    if token is None:
        return channel
    return grpc.intercept_channel(channel, AuthorizationInterceptor(token))


def _header_value(token: str) -> str:
    trimmed = token.strip() if isinstance(token, str) else ""
    if not trimmed:
        raise ValueError("The shared access signature is empty.")
    return trimmed if trimmed.startswith(f"{SAS_SCHEME} ") else f"{SAS_SCHEME} {trimmed}"


def _cached_by_expiry(source: TokenSource) -> TokenSource:
    lock = threading.Lock()
    kept = {"token": None, "expires_at": None}

    def current() -> str:
        with lock:
            expires_at = kept["expires_at"]
            if kept["token"] is None or expires_at is None or expires_at - time.time() < RENEW_BEFORE_SECONDS:
                token = _header_value(source())
                kept["token"], kept["expires_at"] = token, sas_token_expiry(token)
            return kept["token"]

    return current
