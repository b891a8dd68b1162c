"""The sessionbus client for Python: a small client in the shape of the TypeScript SDK
(queues, send, receive and settle, sessions and their state, request–reply, one exception
class per broker reason), and the pieces it is made of: connection strings, shared access
tokens, channels whose calls carry one, the broker's error details.

    from sessionbus_client import SessionBusClient
    with SessionBusClient(os.environ["SESSIONBUS_CONNECTION_STRING"]) as client:
        client.create_queue("orders")

The request and response types and the stubs are the generated ``sessionbus.v1`` modules,
installed with this package.
"""

from .authorization import AUTHORIZATION_METADATA_KEY, AuthorizationInterceptor, create_channel, token_source
from .client import Receiver, SessionBusClient, SessionReceiver, make_message
from .connection_string import ConnectionString, ConnectionStringError, parse_connection_string
from .errors import (
    EntityAlreadyExistsError,
    EntityNotFoundError,
    ErrorDetail,
    InvalidArgumentError,
    MessageAlreadySettledError,
    MessageLockedError,
    MessageLockLostError,
    MessageNotFoundError,
    MessageTooLargeError,
    NotSessionEntityError,
    PermissionDeniedError,
    QuotaExceededError,
    RequestTimeoutError,
    SessionBusError,
    SessionCannotBeLockedError,
    SessionIdRequiredError,
    SessionLockLostError,
    SessionRequiredError,
    SessionStateTooLargeError,
    StoreUnavailableError,
    UnauthenticatedError,
    error_detail,
    session_bus_error,
)
from .sas_token import SasTokenProvider, create_sas_token, sas_token_expiry

__version__ = "0.1.0"

__all__ = [
    "AUTHORIZATION_METADATA_KEY",
    "AuthorizationInterceptor",
    "ConnectionString",
    "ConnectionStringError",
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
    "Receiver",
    "RequestTimeoutError",
    "SasTokenProvider",
    "SessionBusClient",
    "SessionBusError",
    "SessionCannotBeLockedError",
    "SessionIdRequiredError",
    "SessionLockLostError",
    "SessionReceiver",
    "SessionRequiredError",
    "SessionStateTooLargeError",
    "StoreUnavailableError",
    "UnauthenticatedError",
    "create_channel",
    "create_sas_token",
    "error_detail",
    "make_message",
    "parse_connection_string",
    "sas_token_expiry",
    "session_bus_error",
    "token_source",
]
