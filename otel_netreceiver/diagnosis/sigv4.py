"""AWS Signature Version 4 for the Amazon Managed Service for Prometheus query API.

AMP refuses unsigned queries; the signature is the documented SigV4 process (canonical
request -> string to sign -> HMAC chain over date, region, service "aps" ->
Authorization header), written with hashlib/hmac so remote mode needs no AWS SDK.
Pure: the caller passes the clock and the credentials (tests pin them to the published
SigV4 test-suite vectors, since AMP itself cannot be reached from a test).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "aps"
_UNRESERVED = "-_.~"


class CredentialsError(ValueError):
    """No usable AWS credentials: names the variable that is missing."""


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str = ""  # a session token (assumed role, IRSA, SSO) when there is one

    def __repr__(self) -> str:  # never print the secret in a traceback or log
        return f"Credentials(access_key={self.access_key!r}, secret_key=***)"


def credentials_from_env(env: Mapping[str, str]) -> Credentials:
    """The standard variables the AWS CLI and SDKs read (profiles are not supported)."""
    missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(k)]
    if missing:
        raise CredentialsError(f"SigV4 needs AWS credentials: {' and '.join(missing)} not set "
                               "(export them, e.g. from `aws configure export-credentials "
                               "--format env`)")
    return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                       env.get("AWS_SESSION_TOKEN", ""))


def amz_date(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _encode(text: str) -> str:
    return quote(text, safe=_UNRESERVED)


def canonical_query(query: str) -> str:
    """Parameters sorted by encoded name then value, each URI-encoded once (RFC 3986)."""
    pairs = []
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    # values trimmed and inner runs of spaces collapsed, names lower-cased and sorted
    clean = {k.lower().strip(): " ".join(v.split()) for k, v in headers.items()}
    names = sorted(clean)
    return "".join(f"{n}:{clean[n]}\n" for n in names), ";".join(names)


def canonical_request(method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> tuple[str, str]:
    """(the canonical request, its signed-headers list) for a request to ``url``."""
    parts = urlsplit(url)
    canonical, signed = _canonical_headers(headers)
    path = quote(parts.path or "/", safe="/" + _UNRESERVED)
    text = "\n".join((method.upper(), path, canonical_query(parts.query), canonical, signed,
                      hashlib.sha256(body).hexdigest()))
    return text, signed


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes, *, region: str,
         credentials: Credentials, now: datetime, service: str = SERVICE) -> dict[str, str]:
    """The headers to send: ``headers`` plus Host, X-Amz-Date, the token and Authorization."""
    stamp = amz_date(now)
    out = {"Host": urlsplit(url).netloc, **headers, "X-Amz-Date": stamp}
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    request, signed = canonical_request(method, url, out, body)
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()))
    signature = hmac.new(signing_key(credentials.secret_key, stamp[:8], region, service),
                         to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
                            f"SignedHeaders={signed}, Signature={signature}")
    return out
