"""SigV4 against AWS's published Signature Version 4 test-suite vectors.

AMP cannot be reached from a test, so the signature is pinned to the vectors AWS
published (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, region us-east-1, service
"service"), and to the IAM ListUsers walk-through of the SigV4 documentation.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otel_netreceiver.diagnosis.sigv4 import (
    Credentials,
    CredentialsError,
    canonical_query,
    canonical_request,
    credentials_from_env,
    sign,
    signing_key,
)

SUITE = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SCOPE = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize(("name", "method", "url", "headers", "signed", "signature"), [
    ("get-vanilla", "GET", "https://example.amazonaws.com/", {}, "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("post-vanilla", "POST", "https://example.amazonaws.com/", {}, "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("get-vanilla-query-order-key-case", "GET",
     "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}, "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("post-header-value-case", "POST", "https://example.amazonaws.com/",
     {"My-Header1": "VALUE1"}, "host;my-header1;x-amz-date",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
])
def test_signature_matches_the_aws_test_suite(name, method, url, headers, signed, signature):
    out = sign(method, url, headers, b"", region="us-east-1", credentials=SUITE, now=AT,
               service="service")
    assert out["Authorization"] == (f"AWS4-HMAC-SHA256 {SCOPE}, SignedHeaders={signed}, "
                                    f"Signature={signature}"), name
    assert out["X-Amz-Date"] == "20150830T123600Z" and out["Host"] == "example.amazonaws.com"


def test_iam_list_users_walkthrough_of_the_sigv4_documentation():
    url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    out = sign("GET", url, headers, b"", region="us-east-1", credentials=SUITE, now=AT,
               service="iam")
    assert signing_key(SUITE.secret_key, "20150830", "us-east-1", "iam").hex() == \
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    assert out["Authorization"].endswith(
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


def test_a_promql_query_is_canonicalised_as_sent():
    # the query API's parameters carry spaces, braces, quotes and '=' that must be %-encoded
    query = canonical_query("time=1.500&query=sum%20by%20%28a%29%20%28x%7Bk%3D%22v%22%7D%29")
    assert query == "query=sum%20by%20%28a%29%20%28x%7Bk%3D%22v%22%7D%29&time=1.500"
    text, signed = canonical_request("GET", "https://aps-workspaces.eu-west-1.amazonaws.com"
                                     "/workspaces/ws-1/api/v1/query?time=1&query=up",
                                     {"Host": "aps-workspaces.eu-west-1.amazonaws.com",
                                      "X-Amz-Date": "20150830T123600Z"}, b"")
    assert text.splitlines()[:3] == ["GET", "/workspaces/ws-1/api/v1/query", "query=up&time=1"]
    assert signed == "host;x-amz-date"


def test_a_session_token_is_sent_and_signed_for_aps():
    creds = Credentials("AKID", "s3cr3t-value", token="session-token")
    out = sign("GET", "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-9/api/v1/"
               "query?query=up", {}, b"", region="us-west-2", credentials=creds, now=AT)
    assert out["X-Amz-Security-Token"] == "session-token"
    assert "/20150830/us-west-2/aps/aws4_request" in out["Authorization"]
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token" in out["Authorization"]
    assert "s3cr3t" not in repr(creds)


def test_missing_credentials_name_the_variable():
    with pytest.raises(CredentialsError, match="AWS_SECRET_ACCESS_KEY not set"):
        credentials_from_env({"AWS_ACCESS_KEY_ID": "AKID"})
    creds = credentials_from_env({"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
                                  "AWS_SESSION_TOKEN": "t"})
    assert (creds.access_key, creds.token) == ("AKID", "t")


def test_the_query_client_sends_exactly_what_it_signed():
    """A loopback server records the request; re-signing what arrived gives the same header
    (the query string on the wire is the one in the canonical request)."""
    import http.server
    import json
    import threading

    from otel_netreceiver.diagnosis.remote import QueryClient

    seen: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update(path=self.path, headers=dict(self.headers))
            body = json.dumps({"status": "success",
                               "data": {"resultType": "vector", "result": []}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/workspaces/ws-1"
        client = QueryClient(base, region="eu-west-1", credentials=SUITE, clock=lambda: AT)
        assert client.query('sum by (verb) (rate(x{verb!~"WATCH|LIST"}[5m]))', 1.5) == []
    finally:
        server.shutdown()
    headers = seen["headers"]
    assert seen["path"].startswith("/workspaces/ws-1/api/v1/query?query=sum%20by%20%28verb%29")
    again = sign("GET", f"http://{headers['Host']}{seen['path']}", {"Accept": headers["Accept"]},
                 b"", region="eu-west-1", credentials=SUITE, now=AT)
    assert headers["Authorization"] == again["Authorization"]
    assert "SignedHeaders=accept;host;x-amz-date" in headers["Authorization"]
