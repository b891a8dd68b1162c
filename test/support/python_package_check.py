"""Drives the installed sessionbus-client package through what its client offers, against a
broker: queue properties, send with duplicate detection, receive and the four settlements,
deferred and dead-lettered messages, sessions (accept named and next, order, state, lock
renewal, a session held elsewhere), request–reply's timeout and the error classes.

Usage: python python_package_check.py <name prefix>, with SESSIONBUS_CONNECTION_STRING and
SESSIONBUS_ADDR (host:port) set. Prints one line per check (test/python-package.test.ts
compares them) and exits non-zero on the first surprise.
"""

import os
import sys
from datetime import timedelta

from sessionbus.v1 import message_pb2
from sessionbus_client import (
    EntityAlreadyExistsError,
    EntityNotFoundError,
    InvalidArgumentError,
    RequestTimeoutError,
    SessionBusClient,
    SessionCannotBeLockedError,
    SessionRequiredError,
    UnauthenticatedError,
    make_message,
)

prefix = sys.argv[1]
plain, sessions, requests, replies = (f"{prefix}-{kind}" for kind in ("plain", "sessions", "requests", "replies"))


def receive(receiver, count):
    received = []
    for _ in range(10):
        received += receiver.receive_messages(count - len(received), max_wait=5)
        if len(received) == count:
            return received
    raise SystemExit(f"received {len(received)} of {count}")


def body(message):
    return message.message.body.decode()


def prop(message, name):
    value = message.message.application_properties[name]
    return getattr(value, value.WhichOneof("value"))


with SessionBusClient(os.environ["SESSIONBUS_CONNECTION_STRING"]) as client:
    queue = client.create_queue(
        plain,
        max_delivery_count=2,
        lock_duration=timedelta(seconds=20),
        default_message_ttl=3600,
        requires_duplicate_detection=True,
        duplicate_detection_window=60,
        max_size_bytes=10 * 1024 * 1024,
    )
    p = queue.properties
    print(
        f"created: maxDelivery={p.max_delivery_count} lock={p.lock_duration.seconds}s "
        f"ttl={p.default_message_ttl.seconds}s duplicates={p.requires_duplicate_detection} "
        f"maxSize={p.max_size_bytes}"
    )
    p = client.update_queue(plain, max_delivery_count=3).properties
    print(f"updated: maxDelivery={p.max_delivery_count} lock={p.lock_duration.seconds}s")
    print(f"listed: {plain in [each.name for each in client.list_queues()]}")

    results = client.send(
        plain,
        make_message("one", message_id="m1", application_properties={"n": 7, "ok": True, "x": 1.5, "s": "t"}),
        {"body": "two", "message_id": "m2", "subject": "red"},
        "three",
    )
    again = client.send(plain, make_message("one again", message_id="m1"))[0]
    print(f"duplicate: {again.duplicate} {again.sequence_number == results[0].sequence_number}")
    print(f"peeked: {[body(each) for each in client.peek(plain, 10)]}")

    receiver = client.receiver(plain)
    one, two, three = receive(receiver, 3)
    print(f"received: {body(one)} {body(two)} {body(three)}; properties {[prop(one, k) for k in ('n', 'ok', 'x', 's')]}")
    receiver.abandon(one)
    receiver.dead_letter(two, reason="bad", description="not wanted")
    receiver.defer(three)
    (redelivered,) = receive(receiver, 1)
    print(f"abandoned comes again: {body(redelivered)} delivery {redelivered.delivery_count}")
    receiver.complete(redelivered)
    (deferred,) = receiver.receive_deferred(three.sequence_number)
    print(f"deferred: {body(deferred)} {message_pb2.MessageState.Name(deferred.state)}")
    receiver.complete(deferred)
    dead = client.receiver(f"{plain}/$deadletterqueue")
    (dead_lettered,) = receive(dead, 1)
    print(f"dead-lettered: {body(dead_lettered)} {dead_lettered.dead_letter_reason} {dead_lettered.dead_letter_description}")
    dead.complete(dead_lettered)
    print(f"empty: {receiver.receive_message(max_wait=0.5) is None}")

    client.create_queue(sessions, requires_session=True)
    client.send(sessions, *(make_message(f"{session}{n}", session_id=session) for n in (1, 2, 3) for session in "ab"))
    first = client.accept_session(sessions, max_wait=5)
    try:
        client.accept_session(sessions, first.session_id)
        raise SystemExit("a held session was accepted twice")
    except SessionCannotBeLockedError as error:
        print(f"held elsewhere: {error.reason}")
    messages = receive(first, 3)
    print(f"session {first.session_id}: {[body(each) for each in messages]}")
    first.complete(*messages)
    first.set_state(b"\x00\x01state")
    print(f"state: {first.get_state()!r}")
    before = first.locked_until
    print(f"renewed: {first.renew_lock() >= before}")
    first.set_state(None)
    print(f"cleared: {first.get_state()}")
    first.close()
    first.close()
    with client.accept_session(sessions, max_wait=5) as second:
        messages = receive(second, 3)
        print(f"session {second.session_id}: {[body(each) for each in messages]}")
        second.complete(*messages)
    print(f"no session left: {client.accept_session(sessions, max_wait=0.5) is None}")
    try:
        client.receiver(sessions).receive_message(max_wait=1)
        raise SystemExit("received from a session queue without a session")
    except SessionRequiredError as error:
        print(f"without a session: {error.reason} {error.entity_path == sessions}")

    try:
        client.get_queue(f"{prefix}-missing")
    except EntityNotFoundError as error:
        print(f"missing: {error.reason} {error.entity_path == f'{prefix}-missing'}")
    try:
        client.create_queue(plain)
    except EntityAlreadyExistsError as error:
        print(f"exists: {error.reason}")
    try:
        client.create_queue(f"{prefix}-bad", lock_duration=1)
    except InvalidArgumentError as error:
        print(f"invalid: {error.reason} {error.field}")

    client.create_queue(requests)
    client.create_queue(replies, requires_session=True)
    try:
        client.request_reply(requests, "nobody answers", reply_to=replies, timeout=1)
    except RequestTimeoutError as error:
        print(f"no reply: {error.reason}")

    for name in (plain, sessions, requests, replies):
        client.delete_queue(name)

with SessionBusClient(address=os.environ["SESSIONBUS_ADDR"]) as anonymous:
    try:
        anonymous.get_queue(plain)
    except UnauthenticatedError as error:
        print(f"without a token: {error.reason}")
