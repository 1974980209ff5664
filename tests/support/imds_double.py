"""An IMDSv2 test double on 127.0.0.1 (this machine is not on EC2, so IMDS is replayed).

It enforces the IMDSv2 protocol: a PUT /latest/api/token with a TTL header
returns a token, and every GET without that token is refused with 401,
so a client that falls back to IMDSv1 fails here as it would on a hardened
instance.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "AQAEAFakeTokenForTests=="


class ImdsDouble:
    def __init__(self, recording: Path) -> None:
        self.paths: dict[str, str] = json.loads(recording.read_text())["paths"]
        self.requests: list[tuple[str, str]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                double.requests.append(("PUT", self.path))
                if (self.path != "/latest/api/token"
                        or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")):
                    self._send(400, "")
                else:
                    self._send(200, TOKEN)

            def do_GET(self) -> None:
                double.requests.append(("GET", self.path))
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    self._send(401, "")
                    return
                body = double.paths.get(self.path.removeprefix("/latest/"))
                self._send(404, "") if body is None else self._send(200, body)

            def _send(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
