"""Shared access signatures in the Service Bus form.

``SharedAccessSignature sr=<url-encoded resource URI>&sig=<signature>&se=<unix expiry>&skn=<rule>``,
where the signature is the base64 HMAC-SHA256, keyed with the rule's key as written (its
UTF-8 bytes, not base64-decoded), of the url-encoded URI, a newline and the expiry.
"""

import base64
import hashlib
import hmac
import math
import threading
import time
from typing import Optional
from urllib.parse import parse_qs, quote

__all__ = [
    "RENEW_BEFORE_SECONDS",
    "SAS_SCHEME",
    "TOKEN_LIFETIME_SECONDS",
    "SasTokenProvider",
    "create_sas_token",
    "sas_token_expiry",
]

SAS_SCHEME = "SharedAccessSignature"
# How long tokens a client mints are valid.
TOKEN_LIFETIME_SECONDS = 3600
# A token this close to its expiry is replaced before the next call.
RENEW_BEFORE_SECONDS = 300


def _encode(text: str) -> str:
    # As JavaScript's encodeURIComponent: only A-Z a-z 0-9 - _ . ! ~ * ' ( ) stay as they are.
    return quote(text, safe="-_.!~*'()")


def create_sas_token(resource_uri: str, key_name: str, key: str, expires_at_seconds: float) -> str:
    """A token for ``resource_uri`` (the namespace ``sb://host:port/`` or an entity below it),
    signed with the key of rule ``key_name``, valid until ``expires_at_seconds`` (Unix time)."""
    if not key:
        raise ValueError("A shared access token needs a key to sign with.")
    if not key_name:
        raise ValueError("A shared access token needs the rule's name.")
    if not math.isfinite(expires_at_seconds) or expires_at_seconds <= 0:
        raise ValueError(
            f"A shared access token's expiry must be a time in seconds since 1970, not {expires_at_seconds}."
        )
    sr = _encode(resource_uri)
    se = str(int(expires_at_seconds))
    digest = hmac.new(key.encode("utf-8"), f"{sr}\n{se}".encode("utf-8"), hashlib.sha256).digest()
    sig = _encode(base64.b64encode(digest).decode("ascii"))
    return f"{SAS_SCHEME} sr={sr}&sig={sig}&se={se}&skn={_encode(key_name)}"


def sas_token_expiry(token: str) -> Optional[int]:
    """The expiry (``se``, seconds since the epoch) a token states, or None."""
    fields = token.strip()
    if fields.startswith(SAS_SCHEME):
        fields = fields[len(SAS_SCHEME) :].strip()
    values = parse_qs(fields).get("se", [])
    return int(values[0]) if values and values[0].isdigit() else None


class SasTokenProvider:
    """Mints a token when asked and keeps it until it is close to its expiry (thread-safe)."""

    def __init__(self, resource_uri: str, key_name: str, key: str, lifetime_seconds: int = TOKEN_LIFETIME_SECONDS):
        if lifetime_seconds < 1:
            raise ValueError(f"A token lifetime must be at least 1 second, not {lifetime_seconds}.")
        self._resource_uri = resource_uri
        self._key_name = key_name
        self._key = key
        self._lifetime = lifetime_seconds
        # Five minutes, or half the lifetime of short-lived tokens (else each call would mint).
        self._renew_before = min(RENEW_BEFORE_SECONDS, lifetime_seconds / 2)
        self._token: Optional[str] = None
        self._expires_at = 0
        self._lock = threading.Lock()

    def current(self, now: Optional[float] = None) -> str:
        """A valid token, minted again when the kept one is close to its expiry."""
        now = time.time() if now is None else now
        with self._lock:
            if self._token is None or self._expires_at - now < self._renew_before:
                self._expires_at = int(now) + self._lifetime
                self._token = create_sas_token(self._resource_uri, self._key_name, self._key, self._expires_at)
            return self._token

    __call__ = current

    def __repr__(self) -> str:
        return f"SasTokenProvider(resource_uri={self._resource_uri!r}, key_name={self._key_name!r})"
