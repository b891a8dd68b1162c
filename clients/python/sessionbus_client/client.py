"""SessionBusClient: the broker's calls in the shape of the TypeScript SDK — queues, send,
receive and settle, sessions with their state, request–reply — over the generated stubs
(``sessionbus.v1``) and a channel of ``create_channel``.

Messages are the generated types: ``send`` takes ``message_pb2.Message`` (or what
``make_message`` makes of a body and keywords), receivers give ``message_pb2.ReceivedMessage``
(the sender's fields in ``.message``, the broker's beside them). Durations are seconds (int
or float) or ``datetime.timedelta``. Every failed call raises a ``SessionBusError`` of the
class of the broker's reason (``errors.py``); the ``grpc.RpcError`` is its ``__cause__``.

    with SessionBusClient(os.environ["SESSIONBUS_CONNECTION_STRING"]) as client:
        client.create_queue("carts", requires_session=True)
        client.send("carts", make_message("add apples", session_id="cart-7"))
        with client.accept_session("carts", "cart-7") as session:
            for message in session.receive_messages(10, max_wait=5):
                session.complete(message)
"""

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from sessionbus.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    message_pb2,
    messaging_service_pb2,
    messaging_service_pb2_grpc,
    queue_pb2,
)

from .authorization import TokenSource, create_channel
from .connection_string import ConnectionString
from .errors import session_bus_error

__all__ = ["Receiver", "SessionBusClient", "SessionReceiver", "make_message"]

Seconds = Union[int, float, timedelta]
MessageLike = Union[message_pb2.Message, str, bytes, Mapping[str, Any]]
PropertyValue = Union[str, int, float, bool, bytes, datetime]

_DEFAULT_CALL_TIMEOUT = 30.0
_DEFAULT_MAX_WAIT = 60.0
_Disposition = messaging_service_pb2.Disposition


def _duration(value: Optional[Seconds]) -> Optional[Duration]:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1_000_000_000))
    return duration


def _seconds(value: Optional[Seconds]) -> Optional[float]:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    # A time without a zone is taken as UTC, as protobuf does.
    stamp.FromDatetime(value.astimezone(timezone.utc) if value.tzinfo else value)
    return stamp


def _property_value(value: PropertyValue) -> message_pb2.PropertyValue:
    # bool before int: True is an int in Python.
    if isinstance(value, bool):
        return message_pb2.PropertyValue(bool_value=value)
    if isinstance(value, int):
        return message_pb2.PropertyValue(int_value=value)
    if isinstance(value, float):
        return message_pb2.PropertyValue(double_value=value)
    if isinstance(value, str):
        return message_pb2.PropertyValue(string_value=value)
    if isinstance(value, (bytes, bytearray)):
        return message_pb2.PropertyValue(bytes_value=bytes(value))
    if isinstance(value, datetime):
        return message_pb2.PropertyValue(timestamp_value=_timestamp(value))
    raise TypeError(f"an application property cannot be a {type(value).__name__}")


def make_message(
    body: Union[str, bytes] = b"",
    *,
    session_id: Optional[str] = None,
    message_id: str = "",
    correlation_id: str = "",
    subject: str = "",
    content_type: str = "",
    to: str = "",
    reply_to: str = "",
    reply_to_session_id: Optional[str] = None,
    time_to_live: Optional[Seconds] = None,
    scheduled_enqueue_time: Optional[datetime] = None,
    application_properties: Optional[Mapping[str, PropertyValue]] = None,
) -> message_pb2.Message:
    """A message to send. A str body is sent as UTF-8; ``session_id=""`` is a session of its
    own, None none. ``scheduled_enqueue_time`` in the future stores the message as scheduled
    until then. Property values keep their type: int (int64), float (double), bool, str,
    bytes, datetime."""
    message = message_pb2.Message(
        body=body.encode("utf-8") if isinstance(body, str) else bytes(body),
        message_id=message_id,
        correlation_id=correlation_id,
        subject=subject,
        content_type=content_type,
        to=to,
        reply_to=reply_to,
        time_to_live=_duration(time_to_live),
        scheduled_enqueue_time=None if scheduled_enqueue_time is None else _timestamp(scheduled_enqueue_time),
    )
    if session_id is not None:
        message.session_id = session_id
    if reply_to_session_id is not None:
        message.reply_to_session_id = reply_to_session_id
    for name, value in (application_properties or {}).items():
        message.application_properties[name].CopyFrom(_property_value(value))
    return message


def _as_message(item: MessageLike) -> message_pb2.Message:
    if isinstance(item, message_pb2.Message):
        return item
    if isinstance(item, (str, bytes, bytearray)):
        return make_message(item)
    return make_message(**item)


# Keyword of create_queue / update_queue -> how it goes into QueueProperties.
_QUEUE_PROPERTIES = {
    "requires_session": None,
    "lock_duration": _duration,
    "max_delivery_count": None,
    "default_message_ttl": _duration,
    "dead_lettering_on_message_expiration": None,
    "max_message_size_bytes": None,
    "max_session_state_size_bytes": None,
    "requires_duplicate_detection": None,
    "duplicate_detection_window": _duration,
    "max_size_bytes": None,
}


def _queue_properties(properties: Mapping[str, Any]) -> queue_pb2.QueueProperties:
    unknown = sorted(set(properties) - set(_QUEUE_PROPERTIES))
    if unknown:
        raise TypeError(f"unknown queue properties: {', '.join(unknown)}")
    fields = {}
    for name, value in properties.items():
        if value is None:
            continue
        convert = _QUEUE_PROPERTIES[name]
        fields[name] = convert(value) if convert else value
    return queue_pb2.QueueProperties(**fields)


class SessionBusClient:
    """One channel to a broker (or several sharing one store) and the calls made on it.

    ``connection_string`` gives the address and the key every call's token is signed with;
    ``address`` ("host:port", or several) overrides its address; ``channel`` uses a channel
    of your own (then neither is needed, and ``close`` leaves it open). ``call_timeout`` is
    each unary call's deadline in seconds; ``instance_id`` the session replies to this
    client's ``request_reply`` come back on (a random UUID by default).
    """

    def __init__(
        self,
        connection_string: Union[str, ConnectionString, None] = None,
        *,
        address: Union[str, Sequence[str], None] = None,
        channel: Optional[grpc.Channel] = None,
        shared_access_signature: Union[str, TokenSource, None] = None,
        root_certificates: Optional[bytes] = None,
        call_timeout: float = _DEFAULT_CALL_TIMEOUT,
        instance_id: Optional[str] = None,
    ):
        self._owns_channel = channel is None
        self.channel = channel or create_channel(
            connection_string,
            address=address,
            shared_access_signature=shared_access_signature,
            root_certificates=root_certificates,
        )
        self.admin = admin_service_pb2_grpc.AdminServiceStub(self.channel)
        self.messaging = messaging_service_pb2_grpc.MessagingServiceStub(self.channel)
        self.call_timeout = call_timeout
        self.instance_id = instance_id or str(uuid.uuid4())

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> "SessionBusClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def call(self, method, request, timeout: Optional[float] = None):
        """Makes one unary call with the client's deadline; raises SessionBusError."""
        try:
            return method(request, timeout=self.call_timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise session_bus_error(error) from error

    # ---- queues ----

    def create_queue(self, name: str, **properties: Any) -> queue_pb2.Queue:
        """Creates a queue. Properties: requires_session, lock_duration, max_delivery_count,
        default_message_ttl, dead_lettering_on_message_expiration, max_message_size_bytes,
        max_session_state_size_bytes, requires_duplicate_detection,
        duplicate_detection_window, max_size_bytes; those not given take the broker's
        defaults."""
        request = admin_service_pb2.CreateQueueRequest(name=name, properties=_queue_properties(properties))
        return self.call(self.admin.CreateQueue, request).queue

    def get_queue(self, name: str) -> queue_pb2.Queue:
        return self.call(self.admin.GetQueue, admin_service_pb2.GetQueueRequest(name=name)).queue

    def update_queue(self, name: str, **properties: Any) -> queue_pb2.Queue:
        """Changes the properties given (as create_queue takes them); the others stay."""
        request = admin_service_pb2.UpdateQueueRequest(name=name, properties=_queue_properties(properties))
        return self.call(self.admin.UpdateQueue, request).queue

    def delete_queue(self, name: str) -> None:
        self.call(self.admin.DeleteQueue, admin_service_pb2.DeleteQueueRequest(name=name))

    def list_queues(self) -> Iterator[queue_pb2.Queue]:
        """Every queue, fetched page by page as iterated."""
        token = ""
        while True:
            page = self.call(self.admin.ListQueues, admin_service_pb2.ListQueuesRequest(page_token=token))
            yield from page.queues
            token = page.next_page_token
            if not token:
                return

    # ---- messages ----

    def send(self, entity_path: str, *messages: MessageLike) -> List[messaging_service_pb2.SendResult]:
        """Stores the messages (a queue or a topic), all or none; one result per message,
        in order. Each is a Message, a body (str or bytes), or make_message's keywords as a
        dict."""
        request = messaging_service_pb2.SendRequest(
            entity_path=entity_path, messages=[_as_message(each) for each in messages]
        )
        return list(self.call(self.messaging.Send, request).results)

    def peek(
        self,
        entity_path: str,
        max_messages: int = 10,
        *,
        from_sequence_number: int = 0,
        session_id: Optional[str] = None,
    ) -> List[message_pb2.ReceivedMessage]:
        """Messages without locking them (scheduled ones with state SCHEDULED)."""
        request = messaging_service_pb2.PeekRequest(
            entity_path=entity_path, max_messages=max_messages, from_sequence_number=from_sequence_number
        )
        if session_id is not None:
            request.session_id = session_id
        return list(self.call(self.messaging.Peek, request).messages)

    def receiver(self, entity_path: str, *, receive_and_delete: bool = False) -> "Receiver":
        """Receives from an entity without sessions: a queue, a subscription
        ("TOPIC/subscriptions/NAME") or a dead-letter queue ("PATH/$deadletterqueue")."""
        return Receiver(self, entity_path, None, receive_and_delete)

    def accept_session(
        self,
        entity_path: str,
        session_id: Optional[str] = None,
        *,
        max_wait: Optional[Seconds] = None,
    ) -> Optional["SessionReceiver"]:
        """Locks the named session (also an empty one), or without a name the next session
        with a receivable message; None when none came within ``max_wait`` (default 60 s).
        A session held elsewhere raises SessionCannotBeLockedError."""
        request = messaging_service_pb2.AcceptSessionRequest(entity_path=entity_path, max_wait=_duration(max_wait))
        if session_id is not None:
            request.session_id = session_id
        wait = _seconds(max_wait)
        timeout = self.call_timeout + (_DEFAULT_MAX_WAIT if wait is None else wait)
        lock = self.call(self.messaging.AcceptSession, request, timeout=timeout)
        if not lock.HasField("session"):
            return None
        return SessionReceiver(self, entity_path, lock.session)

    def list_sessions(self, entity_path: str) -> Iterator[messaging_service_pb2.SessionInfo]:
        """The sessions with a message or a state, page by page as iterated."""
        token = ""
        while True:
            page = self.call(
                self.messaging.ListSessions,
                messaging_service_pb2.ListSessionsRequest(entity_path=entity_path, page_token=token),
            )
            yield from page.sessions
            token = page.next_page_token
            if not token:
                return

    # ---- request–reply ----

    def request_reply(
        self,
        entity_path: str,
        request: MessageLike,
        *,
        reply_to: str,
        timeout: Seconds = _DEFAULT_MAX_WAIT,
    ) -> message_pb2.ReceivedMessage:
        """Sends ``request`` to ``entity_path`` and returns its reply (already completed): the
        message on the session-enabled queue ``reply_to``, in session ``instance_id``, whose
        correlation id is the request's message id. No reply within ``timeout`` raises
        RequestTimeoutError and withdraws the request. A responder answers with ``reply``."""
        wait = _seconds(timeout) or _DEFAULT_MAX_WAIT
        call = messaging_service_pb2.RequestReplyRequest(
            entity_path=entity_path,
            request=_as_message(request),
            reply_to=reply_to,
            instance_id=self.instance_id,
            timeout=_duration(wait),
        )
        return self.call(self.messaging.RequestReply, call, timeout=wait + self.call_timeout).reply

    def reply(self, request: message_pb2.ReceivedMessage, reply: MessageLike) -> messaging_service_pb2.SendResult:
        """Answers a request received from a request queue: sends ``reply`` to its reply_to,
        in its reply_to_session_id, correlated by its message id."""
        message = message_pb2.Message()
        message.CopyFrom(_as_message(reply))
        message.correlation_id = request.message.message_id
        if request.message.HasField("reply_to_session_id"):
            message.session_id = request.message.reply_to_session_id
        if not request.message.reply_to:
            raise ValueError(f"message {request.message.message_id!r} names no reply_to")
        (result,) = self.send(request.message.reply_to, message)
        return result


class Receiver:
    """Receives messages of one entity and settles them. Each ``receive_messages`` is one
    ReceiveStream that ends after ``max_messages`` or when none arrived for ``max_wait``;
    messages stay locked (peek-lock) until settled or their lock expires, when they come
    again with their delivery count one higher."""

    def __init__(
        self,
        client: SessionBusClient,
        entity_path: str,
        session: Optional[messaging_service_pb2.SessionLockRef],
        receive_and_delete: bool,
    ):
        self.client = client
        self.entity_path = entity_path
        self._session = session
        self._mode = (
            messaging_service_pb2.RECEIVE_MODE_RECEIVE_AND_DELETE
            if receive_and_delete
            else messaging_service_pb2.RECEIVE_MODE_PEEK_LOCK
        )

    def receive_messages(
        self, max_messages: int = 1, *, max_wait: Seconds = _DEFAULT_MAX_WAIT
    ) -> List[message_pb2.ReceivedMessage]:
        """Up to ``max_messages``, in sequence order on a session; fewer (or none) when no
        further message arrived for ``max_wait``."""
        request = messaging_service_pb2.ReceiveStreamRequest(
            entity_path=self.entity_path,
            receive_mode=self._mode,
            prefetch=max_messages,
            max_messages=max_messages,
            max_wait=_duration(max_wait),
            session=self._session,
        )
        received: List[message_pb2.ReceivedMessage] = []
        try:
            for event in self.client.messaging.ReceiveStream(request):
                kind = event.WhichOneof("event")
                if kind == "message":
                    received.append(event.message)
                elif kind == "recalled":
                    # After an abandon under the session lock: these come again, in order.
                    recalled = set(event.recalled.lock_tokens)
                    received = [each for each in received if each.lock_token not in recalled]
        except grpc.RpcError as error:
            raise session_bus_error(error) from error
        return received

    def receive_message(self, *, max_wait: Seconds = _DEFAULT_MAX_WAIT) -> Optional[message_pb2.ReceivedMessage]:
        """The next message, or None when none arrived within ``max_wait``."""
        messages = self.receive_messages(1, max_wait=max_wait)
        return messages[0] if messages else None

    def complete(self, *messages: message_pb2.ReceivedMessage) -> None:
        """Removes the messages for good."""
        self._settle(messages, _Disposition.DISPOSITION_COMPLETE)

    def abandon(self, *messages: message_pb2.ReceivedMessage) -> None:
        """Releases the messages for redelivery (delivery count + 1). Under a session lock,
        the session's other unsettled messages come again after them, in order."""
        self._settle(messages, _Disposition.DISPOSITION_ABANDON)

    def dead_letter(self, *messages: message_pb2.ReceivedMessage, reason: str = "", description: str = "") -> None:
        """Moves the messages to the entity's dead-letter queue."""
        self._settle(
            messages, _Disposition.DISPOSITION_DEAD_LETTER, dead_letter_reason=reason, dead_letter_description=description
        )

    def defer(self, *messages: message_pb2.ReceivedMessage) -> None:
        """Sets the messages aside: ``receive_deferred`` fetches them by sequence number."""
        self._settle(messages, _Disposition.DISPOSITION_DEFER)

    def receive_deferred(self, *sequence_numbers: int) -> List[message_pb2.ReceivedMessage]:
        """Deferred messages by sequence number, locked again."""
        request = messaging_service_pb2.ReceiveDeferredRequest(
            entity_path=self.entity_path, sequence_numbers=sequence_numbers, session=self._session
        )
        return list(self.client.call(self.client.messaging.ReceiveDeferred, request).messages)

    def _settle(self, messages: Iterable[message_pb2.ReceivedMessage], disposition: int, **fields: str) -> None:
        request = messaging_service_pb2.SettleRequest(
            entity_path=self.entity_path,
            lock_tokens=[each.lock_token for each in messages],
            disposition=disposition,
            session=self._session,
            **fields,
        )
        self.client.call(self.client.messaging.Settle, request)

    def close(self) -> None:
        """Nothing to release without a session; there for symmetry with SessionReceiver."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class SessionReceiver(Receiver):
    """A locked session: its messages in order, its state, its lock. ``close`` (or leaving a
    ``with`` block) releases the lock; unsettled messages go to the next holder."""

    def __init__(self, client: SessionBusClient, entity_path: str, lock: messaging_service_pb2.SessionLock):
        super().__init__(
            client,
            entity_path,
            messaging_service_pb2.SessionLockRef(session_id=lock.session_id, lock_token=lock.lock_token),
            receive_and_delete=False,
        )
        self.session_id: str = lock.session_id
        self.locked_until: datetime = lock.locked_until.ToDatetime(tzinfo=timezone.utc)
        self._closed = False

    def get_state(self) -> Optional[bytes]:
        """The session's state, or None when it has none."""
        request = messaging_service_pb2.GetSessionStateRequest(entity_path=self.entity_path, session=self._session)
        response = self.client.call(self.client.messaging.GetSessionState, request)
        return response.state if response.HasField("state") else None

    def set_state(self, state: Union[bytes, str, None]) -> None:
        """Replaces the state (a str is stored as UTF-8); None clears it."""
        request = messaging_service_pb2.SetSessionStateRequest(entity_path=self.entity_path, session=self._session)
        if state is not None:
            request.state = state.encode("utf-8") if isinstance(state, str) else bytes(state)
        self.client.call(self.client.messaging.SetSessionState, request)

    def renew_lock(self) -> datetime:
        """Extends the session lock; returns (and keeps in ``locked_until``) its new expiry."""
        request = messaging_service_pb2.RenewSessionLockRequest(entity_path=self.entity_path, session=self._session)
        response = self.client.call(self.client.messaging.RenewSessionLock, request)
        self.locked_until = response.locked_until.ToDatetime(tzinfo=timezone.utc)
        return self.locked_until

    def close(self) -> None:
        """Releases the session lock (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        request = messaging_service_pb2.CloseSessionRequest(entity_path=self.entity_path, session=self._session)
        self.client.call(self.client.messaging.CloseSession, request)

