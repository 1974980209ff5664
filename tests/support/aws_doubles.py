"""Loopback doubles for AMP remote diagnosis: STS, a container-credentials endpoint, AMP.

- ``StsDouble`` answers AssumeRoleWithWebIdentity (the IRSA exchange) in STS's XML.
- ``ContainerCredentialsDouble`` answers as the EKS Pod Identity agent / ECS endpoint
  do (JSON, checking the Authorization token).
- ``SigningQueryApi`` is a Prometheus query API that checks every request's SigV4
  signature with botocore's signer (independent of ours) against the secrets it
  was told, answering an empty vector, or 403 naming the mismatch.

Each hands out credentials that expire soon, so botocore refreshes them on use,
and ``rotate()`` changes them, as STS or the Pod Identity agent do.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

REGION = "eu-west-1"



def _send(handler: BaseHTTPRequestHandler, content_type: str, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)

class _Server:
    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Issuer(_Server):
    """Hands out numbered credentials; ``rotate()`` moves to the next ones."""

    lifetime = timedelta(minutes=5)  # inside botocore's refresh windows: refreshed on use

    def __init__(self, prefix: str) -> None:
        self.prefix, self.generation, self.calls = prefix, 1, 0
        self.secrets: dict[str, tuple[str, str]] = {}
        self.rotate(first=True)

    def rotate(self, first: bool = False) -> None:
        self.generation += 0 if first else 1
        key = f"{self.prefix}{self.generation:04d}"
        self.secrets[key] = (f"secret-{key}", f"token-{key}")
        self.current = key

    def expiration(self) -> str:
        return (datetime.now(UTC) + self.lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")


class StsDouble(_Issuer):
    def __init__(self) -> None:
        super().__init__("ASIASTS")
        self.tokens: list[str] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                issuer.calls += 1
                if form.get("Action") != ["AssumeRoleWithWebIdentity"]:
                    self.send_error(400, f"unexpected action {form.get('Action')}")
                    return
                issuer.tokens.append(form["WebIdentityToken"][0])
                body = issuer.answer(form["RoleArn"][0]).encode()
                _send(self, "text/xml", body)

            def log_message(self, *args: object) -> None:
                pass

        self._start(Handler)

    def answer(self, role: str) -> str:
        secret, token = self.secrets[self.current]
        return (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleWithWebIdentityResult><Credentials>"
            f"<AccessKeyId>{self.current}</AccessKeyId><SecretAccessKey>{secret}"
            f"</SecretAccessKey><SessionToken>{token}</SessionToken>"
            f"<Expiration>{self.expiration()}</Expiration></Credentials>"
            f"<AssumedRoleUser><Arn>{role}/session</Arn><AssumedRoleId>AROA:session"
            "</AssumedRoleId></AssumedRoleUser><SubjectFromWebIdentityToken>system:serviceaccount"
            "</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult>"
            "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>")


class ContainerCredentialsDouble(_Issuer):
    def __init__(self, token: str) -> None:
        super().__init__("ASIAPOD")
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.calls += 1
                if self.headers.get("Authorization") != token:
                    self.send_error(401, "bad authorization token")
                    return
                secret, session = issuer.secrets[issuer.current]
                body = json.dumps({"AccessKeyId": issuer.current, "SecretAccessKey": secret,
                                   "Token": session, "Expiration": issuer.expiration()}).encode()
                _send(self, "application/json", body)

            def log_message(self, *args: object) -> None:
                pass

        self._start(Handler)


def expected_signature(method: str, url: str, headers: dict[str, str], signed: list[str],
                       secret: str, token: str, access_key: str) -> str:
    """The SigV4 signature botocore computes for the request as received."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url,
                         headers={name: headers[name] for name in signed if name in headers})
    auth = SigV4Auth(Credentials(access_key, secret, token), "aps", REGION)
    request.context["timestamp"] = headers["x-amz-date"]
    return auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)


class SigningQueryApi(_Server):
    """/api/v1/query that accepts only requests signed with a known secret."""

    def __init__(self, *issuers: _Issuer) -> None:
        self.keys_seen: list[str] = []
        self.rejected: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                problem = api.check(self)
                if problem:
                    api.rejected.append(problem)
                    self.send_error(403, problem)
                    return
                body = json.dumps({"status": "success",
                                   "data": {"resultType": "vector", "result": []}}).encode()
                _send(self, "application/json", body)

            def log_message(self, *args: object) -> None:
                pass

        self._issuers = issuers
        self._start(Handler)

    def check(self, request: BaseHTTPRequestHandler) -> str:
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", "")
        fields = dict(p.strip().split("=", 1) for p in auth.partition(" ")[2].split(","))
        key, _, scope = fields.get("Credential", "/").partition("/")
        if not scope.endswith(f"{REGION}/aps/aws4_request"):
            return f"bad scope {scope!r}"
        secret, token = next((i.secrets[key] for i in self._issuers if key in i.secrets),
                             ("", ""))
        if not secret or headers.get("x-amz-security-token") != token:
            return f"unknown key or token for {key!r}"
        url = f"http://{headers['host']}{request.path}"
        want = expected_signature("GET", url, headers, fields["SignedHeaders"].split(";"),
                                  secret, token, key)
        if fields.get("Signature") != want:
            return f"signature mismatch for {urlsplit(url).path}"
        self.keys_seen.append(key)
        return ""
