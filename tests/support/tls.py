"""A throwaway PKI for TLS tests, made with the openssl command-line tool.

Two unrelated CAs (the right one and a wrong one), a server certificate for
127.0.0.1/localhost and a client certificate, both signed by the right CA. EC
P-256 keys keep generation fast. The ``cryptography`` package is not in the
test environment, so the openssl CLI is used.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    wrong_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        """An SSLContext for a test server; with client verification for mTLS."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=self.ca)
        return context

    def grpc_server_credentials(self, require_client_cert: bool = False):  # type: ignore[no-untyped-def]
        import grpc

        return grpc.ssl_server_credentials(
            [(self.server_key.read_bytes(), self.server_cert.read_bytes())],
            root_certificates=self.ca.read_bytes() if require_client_cert else None,
            require_client_auth=require_client_cert)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, cert


def _leaf(directory: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.key", directory / f"{name}.csr",
                      directory / f"{name}.pem")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    extfile = directory / f"{name}.ext"
    extfile.write_text(ext)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", extfile)
    return key, cert


def make_pki(directory: Path) -> Pki:
    """Generate the PKI under ``directory``; skips (via the caller) when openssl is absent."""
    if shutil.which("openssl") is None:
        raise FileNotFoundError("the openssl command is needed to make a test CA")
    ca = _ca(directory, "test-ca")
    wrong = _ca(directory, "wrong-ca")
    server = _leaf(directory, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "extendedKeyUsage=serverAuth\n")
    client = _leaf(directory, "client", ca, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[1], wrong[1], server[1], server[0], client[1], client[0])
