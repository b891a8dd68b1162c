"""Unit tests of sessionbus_client (no broker): run with
``/usr/bin/python3 -m unittest discover -s clients/python/tests`` from the project root."""

import base64
import hashlib
import hmac
import os
import sys
import unittest
from urllib.parse import unquote

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "gen", "python"))

import grpc  # noqa: E402
from sessionbus_client import (  # noqa: E402
    AuthorizationInterceptor,
    ConnectionStringError,
    ErrorDetail,
    SasTokenProvider,
    create_sas_token,
    error_detail,
    parse_connection_string,
    sas_token_expiry,
    token_source,
)
from sessionbus_client.authorization import _CallDetails  # noqa: E402
from sessionbus_client.failover import (  # noqa: E402
    RETRIED_METHODS,
    failover_channel_options,
    failover_target,
    split_addresses,
)

KEY = "Zm9vYmFyYmF6cXV4LXNlY3JldC1rZXktdmFsdWU9PQ=="
ROOT = (
    "Endpoint=sb://127.0.0.1:50051/;SharedAccessKeyName=RootManageSharedAccessKey;"
    f"SharedAccessKey={KEY};UseDevelopmentEmulator=true"
)


def token_fields(token):
    scheme, _, rest = token.partition(" ")
    assert scheme == "SharedAccessSignature", token
    return dict(pair.split("=", 1) for pair in rest.split("&"))


class ParseConnectionString(unittest.TestCase):
    def test_plaintext_root_string(self):
        parsed = parse_connection_string(ROOT)
        self.assertEqual(parsed.host, "127.0.0.1")
        self.assertEqual(parsed.port, 50051)
        self.assertFalse(parsed.tls)
        self.assertEqual(parsed.target, "127.0.0.1:50051")
        self.assertEqual(parsed.resource_uri, "sb://127.0.0.1:50051/")
        self.assertEqual(parsed.key_name, "RootManageSharedAccessKey")
        self.assertEqual(parsed.key, KEY)

    def test_tls_unless_emulator_and_default_port(self):
        parsed = parse_connection_string(f"Endpoint=sb://broker.example/;SharedAccessKeyName=a;SharedAccessKey={KEY}")
        self.assertTrue(parsed.tls)
        self.assertEqual(parsed.target, "broker.example:50051")

    def test_any_case_unknown_fields_spaces(self):
        parsed = parse_connection_string(
            f" endpoint = sb://localhost:6000/ ; sharedaccesskeyname=a;SHAREDACCESSKEY={KEY}; "
            "TransportType=Amqp; usedevelopmentemulator=TRUE;"
        )
        self.assertEqual((parsed.target, parsed.key, parsed.tls), ("localhost:6000", KEY, False))

    def test_entity_path_and_ipv6(self):
        parsed = parse_connection_string(
            f"Endpoint=sb://[::1]:50051/;SharedAccessKeyName=a;SharedAccessKey={KEY};EntityPath=/orders/"
        )
        self.assertEqual(parsed.entity_path, "orders")
        self.assertEqual(parsed.resource_uri, "sb://[::1]:50051/orders")
        self.assertEqual(parsed.target, "[::1]:50051")

    def test_token_instead_of_key(self):
        token = create_sas_token("sb://127.0.0.1:50051/", "a", KEY, 2_000_000_000)
        parsed = parse_connection_string(f"Endpoint=sb://127.0.0.1:50051/;SharedAccessSignature={token}")
        self.assertEqual(parsed.shared_access_signature, token)
        self.assertIsNone(parsed.key)

    def test_endpoint_list_of_several_brokers(self):
        parsed = parse_connection_string(
            f"Endpoint=sb://10.0.0.1:50051/, sb://broker-b:7000/ ,sb://[::1]/;SharedAccessKeyName=a;"
            f"SharedAccessKey={KEY};UseDevelopmentEmulator=true"
        )
        self.assertEqual(parsed.targets, ("10.0.0.1:50051", "broker-b:7000", "[::1]:50051"))
        self.assertEqual((parsed.target, parsed.resource_uri), ("10.0.0.1:50051", "sb://10.0.0.1:50051/"))
        self.assertEqual(parse_connection_string(ROOT).targets, ("127.0.0.1:50051",))
        for text, message in (
            (f"Endpoint=sb://a:1/,,sb://b:1/;SharedAccessKeyName=r;SharedAccessKey={KEY}", "empty entry"),
            (f"Endpoint=https://a:1/,http://b:1/;SharedAccessKeyName=r;SharedAccessKey={KEY}", "mix TLS"),
        ):
            with self.subTest(message=message):
                with self.assertRaises(ConnectionStringError) as raised:
                    parse_connection_string(text)
                self.assertIn(message, str(raised.exception))

    def test_repr_hides_key(self):
        self.assertNotIn(KEY, repr(parse_connection_string(ROOT)))

    def test_errors_never_show_the_key(self):
        secret = "S3cr3t+KeyThatMustNeverBeShown/xyz"
        cases = [
            ("", "no Endpoint"),
            (secret, 'Part 1 of the connection string is not "Name=value"'),
            (f"SharedAccessKeyName=r;SharedAccessKey={secret}", "no Endpoint"),
            (f"Endpoint=localhost;SharedAccessKeyName=r;SharedAccessKey={secret}", "is not a URL"),
            (f"Endpoint=sb://h:1/orders;SharedAccessKeyName=r;SharedAccessKey={secret}", "EntityPath"),
            (f"Endpoint=sb://h:1/;SharedAccessKey={secret}", "no SharedAccessKeyName "),
            ("Endpoint=sb://h:1/;SharedAccessKeyName=r", "no SharedAccessKey "),
            (
                f"Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey={secret};SharedAccessSignature=x",
                "both",
            ),
            (f"Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey={secret};SharedAccessKey=y", "twice"),
            (
                f"Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey={secret};UseDevelopmentEmulator=yes",
                'UseDevelopmentEmulator is "yes"',
            ),
        ]
        for text, message in cases:
            with self.subTest(text=text[:30]):
                with self.assertRaises(ConnectionStringError) as raised:
                    parse_connection_string(text)
                self.assertIn(message, str(raised.exception))
                self.assertNotIn(secret[:10], str(raised.exception))


class SeveralBrokers(unittest.TestCase):
    def test_addresses_from_a_string_or_a_list(self):
        expected = [("127.0.0.1", 5001), ("::1", 5002), ("broker", 5003)]
        self.assertEqual(split_addresses("127.0.0.1:5001, [::1]:5002,broker:5003"), expected)
        self.assertEqual(split_addresses(["127.0.0.1:5001", "[::1]:5002", "broker:5003"]), expected)
        for bad in ("127.0.0.1", "host:port", ",", ""):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                split_addresses(bad)

    def test_one_target_listing_every_broker(self):
        self.assertEqual(failover_target([("127.0.0.1", 5001), ("127.0.0.2", 5002)]), "ipv4:127.0.0.1:5001,127.0.0.2:5002")
        self.assertEqual(failover_target([("::1", 5001), ("::2", 5002)]), "ipv6:[::1]:5001,[::2]:5002")
        # A name is resolved, to the IP version every address has.
        self.assertIn("127.0.0.1:5002", failover_target([("127.0.0.1", 5001), ("localhost", 5002)]))
        with self.assertRaises(ValueError):
            failover_target([("127.0.0.1", 5001), ("::1", 5002)])

    def test_pick_first_and_retries_of_safe_methods_only(self):
        import json

        options = dict(failover_channel_options("broker-a", 50051, True))
        config = json.loads(options["grpc.service_config"])
        self.assertEqual(config["loadBalancingConfig"], [{"pick_first": {}}])
        [method_config] = config["methodConfig"]
        names = {(n["service"], n["method"]) for n in method_config["name"]}
        self.assertIn(("sessionbus.v1.AdminService", "GetQueue"), names)
        self.assertNotIn(("sessionbus.v1.MessagingService", "Send"), names)
        self.assertEqual(len(names), sum(len(methods) for methods in RETRIED_METHODS.values()))
        self.assertEqual(method_config["retryPolicy"]["retryableStatusCodes"], ["UNAVAILABLE"])
        self.assertEqual(options["grpc.default_authority"], "broker-a:50051")
        self.assertEqual(options["grpc.ssl_target_name_override"], "broker-a")
        self.assertNotIn("grpc.ssl_target_name_override", dict(failover_channel_options("::1", 1, False)))


class SasTokens(unittest.TestCase):
    def test_signature_of_the_encoded_resource_and_expiry_with_the_keys_utf8_bytes(self):
        key = "k3y+with/slash=and-ünïcode"
        token = create_sas_token("sb://127.0.0.1:50051/", "RootManageSharedAccessKey", key, 1_700_000_000)
        fields = token_fields(token)
        self.assertEqual(list(fields), ["sr", "sig", "se", "skn"])
        self.assertEqual(fields["sr"], "sb%3A%2F%2F127.0.0.1%3A50051%2F")
        self.assertEqual(fields["se"], "1700000000")
        expected = base64.b64encode(
            hmac.new(key.encode(), f"{fields['sr']}\n1700000000".encode(), hashlib.sha256).digest()
        ).decode()
        self.assertEqual(unquote(fields["sig"]), expected)
        # The value openssl computes (test/connection-string.test.ts has the command).
        self.assertEqual(unquote(fields["sig"]), "gFrB8nyOVB9vQagiOoj9nPerg9VZC7G4igqCcQe3eTA=")
        self.assertEqual(sas_token_expiry(token), 1_700_000_000)

    def test_refuses_empty_key_and_name(self):
        with self.assertRaises(ValueError):
            create_sas_token("sb://h:1/", "r", "", 1)
        with self.assertRaises(ValueError):
            create_sas_token("sb://h:1/", "", KEY, 1)

    def test_provider_keeps_a_token_until_five_minutes_before_expiry(self):
        provider = SasTokenProvider("sb://h:1/", "r", KEY)
        start = 1_700_000_000
        first = provider.current(start)
        self.assertEqual(sas_token_expiry(first), start + 3600)
        self.assertIs(provider.current(start + 3294), first)
        second = provider.current(start + 3301)
        self.assertNotEqual(second, first)
        self.assertEqual(sas_token_expiry(second), start + 3301 + 3600)


class Interceptor(unittest.TestCase):
    def test_sets_authorization_on_every_kind_of_call_and_replaces_an_old_one(self):
        interceptor = AuthorizationInterceptor(lambda: "SharedAccessSignature sr=x&sig=y&se=1&skn=z")
        details = _CallDetails("/m", None, [("authorization", "old"), ("x-other", "1")], None, None, None)
        seen = []

        def continuation(call_details, request):
            seen.append(call_details.metadata)
            return request

        interceptor.intercept_unary_unary(continuation, details, "req")
        interceptor.intercept_unary_stream(continuation, details, "req")
        interceptor.intercept_stream_unary(continuation, details, iter(()))
        interceptor.intercept_stream_stream(continuation, details, iter(()))
        self.assertEqual(len(seen), 4)
        for metadata in seen:
            self.assertEqual(
                metadata, [("x-other", "1"), ("authorization", "SharedAccessSignature sr=x&sig=y&se=1&skn=z")]
            )

    def test_token_function_is_asked_again_only_near_expiry(self):
        import time

        asked = []

        def mint():
            asked.append(1)
            return create_sas_token("sb://h:1/", "r", KEY, time.time() + 3600).removeprefix("SharedAccessSignature ")

        source = token_source(shared_access_signature=mint)
        first = source()
        self.assertTrue(first.startswith("SharedAccessSignature sr="))
        self.assertIs(source(), first)
        self.assertEqual(len(asked), 1)

    def test_connection_string_and_token_together_are_refused(self):
        with self.assertRaises(ValueError):
            token_source(ROOT, "x")


class ErrorDetails(unittest.TestCase):
    def test_reads_the_error_detail_of_a_status(self):
        from sessionbus.v1 import error_detail_pb2

        detail = error_detail_pb2.ErrorDetail(
            reason="MISSING_RIGHT", entity_path="orders", missing_right="Send", position=-1
        ).SerializeToString()
        type_url = b"type.googleapis.com/sessionbus.v1.ErrorDetail"

        def length_delimited(number, payload):
            return bytes([(number << 3) | 2, len(payload)]) + payload

        any_message = length_delimited(1, type_url) + length_delimited(2, detail)
        status = bytes([0x08, 7]) + length_delimited(2, b"no") + length_delimited(3, any_message)

        class Failure(grpc.RpcError):
            def trailing_metadata(self):
                return (("grpc-status-details-bin", status),)

        self.assertEqual(
            error_detail(Failure()),
            ErrorDetail(reason="MISSING_RIGHT", entity_path="orders", missing_right="Send", position=-1),
        )

        class Bare(grpc.RpcError):
            def trailing_metadata(self):
                return ()

        self.assertIsNone(error_detail(Bare()))


def _status_with_detail(reason, code, **fields):
    """grpc-status-details-bin of a google.rpc.Status holding an ErrorDetail."""
    from sessionbus.v1 import error_detail_pb2

    detail = error_detail_pb2.ErrorDetail(reason=reason, **fields).SerializeToString()

    def length_delimited(number, payload):
        return bytes([(number << 3) | 2, len(payload)]) + payload

    any_message = length_delimited(1, b"type.googleapis.com/sessionbus.v1.ErrorDetail") + length_delimited(2, detail)
    return bytes([0x08, code]) + length_delimited(3, any_message)


class Failure(grpc.RpcError):
    def __init__(self, code, details, trailers=()):
        self._code, self._details, self._trailers = code, details, trailers

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


class SessionBusErrors(unittest.TestCase):
    def test_class_of_each_reason_with_the_details(self):
        from sessionbus_client import PermissionDeniedError, SessionBusError, SessionLockLostError, session_bus_error

        status = _status_with_detail("SESSION_LOCK_LOST", 9, entity_path="carts", session_id="cart-7")
        error = session_bus_error(
            Failure(grpc.StatusCode.FAILED_PRECONDITION, "lock lost", (("grpc-status-details-bin", status),))
        )
        self.assertIsInstance(error, SessionLockLostError)
        self.assertEqual(
            (error.reason, error.code, error.entity_path, error.session_id),
            ("SESSION_LOCK_LOST", grpc.StatusCode.FAILED_PRECONDITION, "carts", "cart-7"),
        )
        self.assertEqual(str(error), "SESSION_LOCK_LOST: lock lost")

        # Without a detail: the code's name; an unknown reason keeps the class of its code.
        bare = session_bus_error(Failure(grpc.StatusCode.UNAVAILABLE, "gone"))
        self.assertIs(type(bare), SessionBusError)
        self.assertEqual(bare.reason, "UNAVAILABLE")
        status = _status_with_detail("SOMETHING_NEW", 7)
        newer = session_bus_error(
            Failure(grpc.StatusCode.PERMISSION_DENIED, "no", (("grpc-status-details-bin", status),))
        )
        self.assertIsInstance(newer, PermissionDeniedError)
        self.assertEqual(newer.reason, "SOMETHING_NEW")


class Messages(unittest.TestCase):
    def test_body_fields_and_typed_properties(self):
        from datetime import datetime, timezone

        from sessionbus_client import make_message

        when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        message = make_message(
            "hé",
            session_id="",
            time_to_live=1.5,
            scheduled_enqueue_time=when,
            application_properties={"i": 7, "b": True, "f": 0.5, "s": "x", "y": b"\x00", "t": when},
        )
        self.assertEqual(message.body, "hé".encode())
        # "" is a session id of its own, unlike None.
        self.assertTrue(message.HasField("session_id"))
        self.assertFalse(make_message("x").HasField("session_id"))
        self.assertEqual(message.time_to_live.ToNanoseconds(), 1_500_000_000)
        self.assertEqual(message.scheduled_enqueue_time.ToDatetime(tzinfo=timezone.utc), when)
        kinds = {name: value.WhichOneof("value") for name, value in message.application_properties.items()}
        self.assertEqual(
            kinds,
            {
                "i": "int_value",
                "b": "bool_value",
                "f": "double_value",
                "s": "string_value",
                "y": "bytes_value",
                "t": "timestamp_value",
            },
        )
        with self.assertRaises(TypeError):
            make_message(application_properties={"bad": object()})

    def test_queue_properties_take_seconds_and_refuse_unknown_names(self):
        from datetime import timedelta

        from sessionbus_client.client import _queue_properties

        properties = _queue_properties({"lock_duration": timedelta(seconds=30), "max_delivery_count": 3, "max_size_bytes": None})
        self.assertEqual(properties.lock_duration.seconds, 30)
        self.assertTrue(properties.HasField("max_delivery_count"))
        # None and absent alike leave a property unset: an update keeps it.
        self.assertFalse(properties.HasField("max_size_bytes"))
        self.assertFalse(properties.HasField("requires_session"))
        with self.assertRaises(TypeError):
            _queue_properties({"requires_sessions": True})


if __name__ == "__main__":
    unittest.main()
