"""An EC2 query-API double on 127.0.0.1 that replays recorded DescribeSubnets pages.

botocore talks to it as to EC2 (``endpoint_url``): form-encoded POSTs signed with
SigV4, XML answers. It serves the checked-in pages in order, following
``NextToken``, records each request's parameters and the credential scope of its
signature, and can answer the next requests with an EC2 error (as EC2 documents
them: ``Response/Errors/Error`` with Code and Message).
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

DATA = Path(__file__).resolve().parent.parent / "data" / "ec2"
PAGES = (DATA / "describe-subnets-page1.xml", DATA / "describe-subnets-page2.xml")


def _error(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}'
            f"</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>5ee4c3a1-86f4-4a8e-9f42-EXAMPLE</RequestID></Response>").encode()


class Ec2Double:
    def __init__(self, pages: tuple[Path, ...] = PAGES) -> None:
        self.pages = [p.read_bytes() for p in pages]
        self.requests: list[dict[str, str]] = []
        self.scopes: list[str] = []
        self.fail_next: list[tuple[int, str, str]] = []  # (HTTP status, code, message)
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                double.requests.append(form)
                scope = re.search(r"Credential=([^,]+)", self.headers.get("Authorization", ""))
                double.scopes.append(scope.group(1) if scope else "")
                if double.fail_next:
                    status, code, message = double.fail_next.pop(0)
                    return self._send(status, _error(code, message))
                if form.get("Action") != "DescribeSubnets":
                    return self._send(400, _error("InvalidAction", str(form.get("Action"))))
                self._send(200, double.page(form.get("NextToken", "")))

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def page(self, token: str) -> bytes:
        """The first page, or the one after the page whose nextToken is ``token``."""
        if not token:
            return self.pages[0]
        for i, page in enumerate(self.pages[:-1]):
            if f"<nextToken>{token}</nextToken>".encode() in page:
                return self.pages[i + 1]
        return _error("InvalidParameterValue", f"bad nextToken {token}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def static_aws_credentials(monkeypatch, tmp_path: Path, key_id: str, *,  # type: ignore[no-untyped-def]
                           imds: bool) -> None:
    """botocore's default chain fed by the environment only: ``key_id`` and a secret, no
    config or credentials file, token, profile, role or endpoint of this machine's; IMDS
    left to the test's double (``imds``) or turned off."""
    for name, value in (("AWS_ACCESS_KEY_ID", key_id), ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
                        ("AWS_CONFIG_FILE", str(tmp_path / "none")),
                        ("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))):
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.delenv(name, raising=False)
    if imds:
        monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    else:
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
