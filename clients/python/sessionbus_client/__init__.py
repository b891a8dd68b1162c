"""Client helpers for sessionbus: connection strings, shared access tokens, channels whose
calls carry a token, and the broker's error reasons.

    from sessionbus_client import create_channel
    channel = create_channel(os.environ["SESSIONBUS_CONNECTION_STRING"])
    admin = admin_service_pb2_grpc.AdminServiceStub(channel)

The request and response types and the stubs are the generated code in gen/python.
"""

from .authorization import AUTHORIZATION_METADATA_KEY, AuthorizationInterceptor, create_channel, token_source
from .connection_string import ConnectionString, ConnectionStringError, parse_connection_string
from .errors import ErrorDetail, error_detail
from .sas_token import SasTokenProvider, create_sas_token, sas_token_expiry

__all__ = [
    "AUTHORIZATION_METADATA_KEY",
    "AuthorizationInterceptor",
    "ConnectionString",
    "ConnectionStringError",
    "ErrorDetail",
    "SasTokenProvider",
    "create_channel",
    "create_sas_token",
    "error_detail",
    "parse_connection_string",
    "sas_token_expiry",
    "token_source",
]
