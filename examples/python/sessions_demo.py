#!/usr/bin/env python3
"""Sessions and request-reply against a sessionbus broker, with the generated Python client.

Usage: /usr/bin/python3 examples/python/sessions_demo.py <queue-name>
Every call carries a token minted from SESSIONBUS_CONNECTION_STRING (the broker writes its
root connection string to <data dir>/connection-string at its first start); the broker's
address is SESSIONBUS_ADDR if set, else the connection string's, else 127.0.0.1:50051.
Exits non-zero on any failure.
"""

import os
import sys
import threading
import uuid

# No __pycache__ under gen/: it would show up as untracked output in `npm run check-gen`.
sys.dont_write_bytecode = True
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "gen", "python"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import grpc  # noqa: E402
from google.protobuf.duration_pb2 import Duration  # noqa: E402
from sessionbus.v1 import (  # noqa: E402
    admin_service_pb2,
    admin_service_pb2_grpc,
    message_pb2,
    messaging_service_pb2,
    messaging_service_pb2_grpc,
    queue_pb2,
)
from sessionbus_client import create_channel, error_detail  # noqa: E402

MAX_WAIT = Duration(seconds=10)
COMPLETE = messaging_service_pb2.DISPOSITION_COMPLETE


def fail(what):
    raise SystemExit(f"sessions_demo: {what}")


def create_queue(admin, name, requires_session):
    admin.CreateQueue(
        admin_service_pb2.CreateQueueRequest(
            name=name, properties=queue_pb2.QueueProperties(requires_session=requires_session)
        )
    )


def accept_next(messaging, queue):
    session = messaging.AcceptSession(
        messaging_service_pb2.AcceptSessionRequest(entity_path=queue, max_wait=MAX_WAIT)
    ).session
    if not session.session_id:
        fail(f"no session turned up on {queue}")
    return messaging_service_pb2.SessionLockRef(session_id=session.session_id, lock_token=session.lock_token)


def receive(messaging, queue, count, ref=None):
    """Receives count messages (under the session lock ref, if given) and completes each."""
    stream = messaging.ReceiveStream(
        messaging_service_pb2.ReceiveStreamRequest(
            entity_path=queue, max_messages=count, max_wait=MAX_WAIT, session=ref
        )
    )
    received = []
    for event in stream:
        if event.WhichOneof("event") != "message":
            fail(f"unexpected event {event.WhichOneof('event')}")
        message = event.message
        messaging.Settle(
            messaging_service_pb2.SettleRequest(
                entity_path=queue, lock_tokens=[message.lock_token], disposition=COMPLETE, session=ref
            )
        )
        received.append(message)
    if len(received) != count:
        fail(f"received {len(received)} of {count} messages from {queue}")
    return received


def sessions(admin, messaging, queue):
    create_queue(admin, queue, requires_session=True)
    batch = [
        message_pb2.Message(session_id=session, body=f"{session}: {n}".encode())
        for n in (1, 2, 3)
        for session in ("A", "B")
    ]
    messaging.Send(messaging_service_pb2.SendRequest(entity_path=queue, messages=batch))

    ref = accept_next(messaging, queue)
    print(f"session: {ref.session_id}", flush=True)
    for message in receive(messaging, queue, 3, ref):
        print(message.message.body.decode(), flush=True)

    messaging.SetSessionState(
        messaging_service_pb2.SetSessionStateRequest(entity_path=queue, session=ref, state=b"ok")
    )
    state = messaging.GetSessionState(messaging_service_pb2.GetSessionStateRequest(entity_path=queue, session=ref))
    if not state.HasField("state"):
        fail("session state is unset")
    print(f"state: {state.state.decode()}", flush=True)
    messaging.CloseSession(messaging_service_pb2.CloseSessionRequest(entity_path=queue, session=ref))
    print("closed", flush=True)


def responder(messaging, requests, errors):
    """Answers one request: the reply goes to reply_to, in the session the requester named."""
    try:
        (request,) = receive(messaging, requests, 1)
        body = request.message.body.decode()
        reply = message_pb2.Message(
            session_id=request.message.reply_to_session_id,
            correlation_id=request.message.message_id,
            body=f"pong to {body}".encode(),
        )
        messaging.Send(messaging_service_pb2.SendRequest(entity_path=request.message.reply_to, messages=[reply]))
    except BaseException as error:  # noqa: BLE001 - reported by the main thread
        errors.append(error)


def request_reply(admin, messaging, queue):
    requests, replies = f"{queue}-requests", f"{queue}-replies"
    create_queue(admin, requests, requires_session=False)
    create_queue(admin, replies, requires_session=True)

    errors = []
    thread = threading.Thread(target=responder, args=(messaging, requests, errors), daemon=True)
    thread.start()

    reply_session = str(uuid.uuid4())
    sent = messaging.Send(
        messaging_service_pb2.SendRequest(
            entity_path=requests,
            messages=[message_pb2.Message(body=b"ping", reply_to=replies, reply_to_session_id=reply_session)],
        )
    )
    message_id = sent.results[0].message_id

    ref = accept_next(messaging, replies)
    if ref.session_id != reply_session:
        fail(f"accepted session {ref.session_id}, expected {reply_session}")
    (reply,) = receive(messaging, replies, 1, ref)
    messaging.CloseSession(messaging_service_pb2.CloseSessionRequest(entity_path=replies, session=ref))
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    if reply.message.correlation_id != message_id:
        fail(f"reply correlation_id {reply.message.correlation_id!r}, expected {message_id!r}")
    print(f"reply: {reply.message.body.decode()}", flush=True)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: sessions_demo.py <queue-name>")
    queue = sys.argv[1]
    connection_string = os.environ.get("SESSIONBUS_CONNECTION_STRING") or None
    address = os.environ.get("SESSIONBUS_ADDR") or (None if connection_string else "127.0.0.1:50051")
    with create_channel(connection_string, address=address) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        messaging = messaging_service_pb2_grpc.MessagingServiceStub(channel)
        sessions(admin, messaging, queue)
        request_reply(admin, messaging, queue)


def explain(error):
    """The broker's reason, and where to find a connection string when none was given."""
    detail = error_detail(error)
    reason = f" ({detail.reason})" if detail and detail.reason else ""
    text = f"sessions_demo: {error.code().name}{reason}: {error.details()}"
    if error.code() == grpc.StatusCode.UNAUTHENTICATED and not os.environ.get("SESSIONBUS_CONNECTION_STRING"):
        text += (
            "\nSet SESSIONBUS_CONNECTION_STRING: the broker wrote its root connection string to"
            " <data dir>/connection-string at its first start."
        )
    return text


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        raise SystemExit(explain(error)) from None
