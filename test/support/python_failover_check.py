#!/usr/bin/env python3
"""Driven by test/python-failover.test.ts: a channel to two brokers (a connection string
whose Endpoint lists both), calls through the first, then, after the test has killed it
and written a line to stdin, the same calls again. Prints one line per step; exits non-zero
on any failure.

Usage: /usr/bin/python3 test/support/python_failover_check.py <queue>
with SESSIONBUS_CONNECTION_STRING listing the two brokers.
"""

import os
import sys

sys.dont_write_bytecode = True
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "gen", "python"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import grpc  # noqa: E402
from sessionbus.v1 import (  # noqa: E402
    admin_service_pb2,
    admin_service_pb2_grpc,
    message_pb2,
    messaging_service_pb2,
    messaging_service_pb2_grpc,
)
from sessionbus_client import create_channel, error_detail  # noqa: E402

TIMEOUT = 20


def main(queue):
    channel = create_channel(os.environ["SESSIONBUS_CONNECTION_STRING"])
    admin = admin_service_pb2_grpc.AdminServiceStub(channel)
    messaging = messaging_service_pb2_grpc.MessagingServiceStub(channel)

    admin.CreateQueue(admin_service_pb2.CreateQueueRequest(name=queue), timeout=TIMEOUT)
    send(messaging, queue, "before")
    print("ready", flush=True)
    sys.stdin.readline()  # the first broker is dead now

    # The first call finds the connection gone; grpc connects to the second broker, and
    # GetQueue (safe to repeat) is repeated there.
    got = admin.GetQueue(admin_service_pb2.GetQueueRequest(name=queue), timeout=TIMEOUT)
    print(f"get-queue {got.queue.name}", flush=True)
    send(messaging, queue, "after")
    peeked = messaging.Peek(messaging_service_pb2.PeekRequest(entity_path=queue, max_messages=10), timeout=TIMEOUT)
    print("peek " + ",".join(m.message.body.decode() for m in peeked.messages), flush=True)


def send(messaging, queue, body):
    messaging.Send(
        messaging_service_pb2.SendRequest(entity_path=queue, messages=[message_pb2.Message(body=body.encode())]),
        timeout=TIMEOUT,
    )
    print(f"sent {body}", flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except grpc.RpcError as error:
        detail = error_detail(error)
        reason = f" ({detail.reason})" if detail else ""
        raise SystemExit(f"python_failover_check: {error.code().name}{reason}: {error.details()}")
