"""Several brokers on one store behind one channel, done by grpc itself.

The channel's target lists every broker's address (``ipv4:10.0.0.1:50051,10.0.0.2:50051``)
and uses the ``pick_first`` load-balancing policy: grpc connects to the first address that
accepts a connection and sends every call there. When that connection fails, calls under way
fail with ``UNAVAILABLE``, and the next call makes grpc connect again, trying the addresses
from the first one on, so it lands on the first broker that is up.

What is repeated on the new connection:

* a call that never left the client (no connection could be made) is repeated by grpc
  itself, whatever the method ("transparent retry");
* after the connection failed under a call, only the methods in ``RETRIED_METHODS`` are
  repeated (up to ``MAX_ATTEMPTS`` attempts, on ``UNAVAILABLE``): reads, accepts, message
  lock renewals and updates, whose repetition cannot do anything twice. Sends, creates,
  deletes, settles, RequestReply and the calls under a session lock (renew, state, close)
  fail with ``UNAVAILABLE`` and are the caller's to repeat (a Send whose messages carry
  message ids is safe to repeat on a queue with duplicate detection).

Message lock tokens are known only to the broker process that delivered the message, and a
session held through a broker that died stays locked until its lock expires. So after an
``UNAVAILABLE`` on a receive stream or a settlement, drop what was received and do not go
on with the session's lock token through another broker: accept the session again (it is
free once its lock expired; its unsettled messages then come with their delivery count one
higher).
"""

import ipaddress
import json
import socket
from typing import List, Sequence, Tuple

__all__ = ["MAX_ATTEMPTS", "RETRIED_METHODS", "failover_channel_options", "failover_target", "split_addresses"]

# At most 5: grpc caps retry attempts there.
MAX_ATTEMPTS = 4

# Methods repeated after the connection failed under them: the "yes" entries of the
# TypeScript SDK's table (src/client/failover/retry-policy.ts; a test compares the two).
RETRIED_METHODS = {
    "sessionbus.v1.MessagingService": (
        "Peek",
        "RenewMessageLock",
        "ReceiveDeferred",
        "AcceptSession",
        "ListSessions",
        "PeekSessionState",
        "ResubmitDeadLetteredMessages",
        "CancelScheduledMessages",
    ),
    "sessionbus.v1.AdminService": (
        "GetQueue",
        "ListQueues",
        "UpdateQueue",
        "GetTopic",
        "ListTopics",
        "UpdateTopic",
        "GetSubscription",
        "ListSubscriptions",
        "UpdateSubscription",
        "ListRules",
        "GetAuthorizationRule",
        "ListAuthorizationRules",
        "UpdateAuthorizationRule",
    ),
}


def split_addresses(address) -> List[Tuple[str, int]]:
    """``"host:port,host:port"`` or a sequence of ``"host:port"`` as (host, port) pairs;
    IPv6 addresses in brackets (``[::1]:50051``)."""
    items = address.split(",") if isinstance(address, str) else list(address)
    pairs = []
    for item in items:
        text = item.strip()
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f'The broker address "{text}" is not host:port.')
        pairs.append((host[1:-1] if host.startswith("[") and host.endswith("]") else host, int(port)))
    if not pairs:
        raise ValueError("No broker address given.")
    return pairs


def failover_target(addresses: Sequence[Tuple[str, int]]) -> str:
    """A grpc target listing every address: ``ipv4:a:p,b:p`` or ``ipv6:[a]:p,[b]:p``.

    Host names are resolved here, once (a new channel sees DNS changes); every address of a
    name is listed, in the resolver's order. All brokers must be reachable over the same IP
    version: IPv4 when every address has an IPv4 form, else IPv6.
    """
    resolved = [_resolve(host, port) for host, port in addresses]
    for family, scheme, form in (
        (socket.AF_INET, "ipv4", "{}:{}"),
        (socket.AF_INET6, "ipv6", "[{}]:{}"),
    ):
        if all(any(f == family for f, _, _ in each) for each in resolved):
            listed = [form.format(ip, port) for each in resolved for f, ip, port in each if f == family]
            return f"{scheme}:{','.join(dict.fromkeys(listed))}"
    raise ValueError(
        "The broker addresses mix IPv4 and IPv6 (" + ", ".join(f"{h}:{p}" for h, p in addresses) + "); "
        "give addresses that all have an IPv4 form, or all an IPv6 form."
    )


def failover_channel_options(first_host: str, first_port: int, tls: bool) -> List[Tuple[str, object]]:
    """Channel options for a target of several brokers: pick_first, the retry policy above,
    and the first address as the channel's authority (for TLS: the name each broker's
    certificate must be valid for)."""
    config = {
        "loadBalancingConfig": [{"pick_first": {}}],
        "methodConfig": [
            {
                "name": [
                    {"service": service, "method": method}
                    for service, methods in RETRIED_METHODS.items()
                    for method in methods
                ],
                "retryPolicy": {
                    "maxAttempts": MAX_ATTEMPTS,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
    authority = f"[{first_host}]:{first_port}" if ":" in first_host else f"{first_host}:{first_port}"
    options: List[Tuple[str, object]] = [
        ("grpc.service_config", json.dumps(config)),
        ("grpc.enable_retries", 1),
        ("grpc.default_authority", authority),
    ]
    if tls:
        options.append(("grpc.ssl_target_name_override", first_host))
    return options


def _resolve(host: str, port: int) -> List[Tuple[int, str, int]]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [(socket.AF_INET if ip.version == 4 else socket.AF_INET6, str(ip), port)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ValueError(f'The broker address "{host}" does not resolve: {error}') from None
    return [(family, info[0], port) for family, _, _, _, info in infos if family in (socket.AF_INET, socket.AF_INET6)]
