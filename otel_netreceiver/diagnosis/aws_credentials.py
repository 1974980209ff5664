"""AWS credentials for signing AMP queries: botocore's default chain, refreshed before expiry.

On EKS the credentials come from IRSA (a web-identity token exchanged at STS),
EKS Pod Identity (a container-credentials endpoint), instance roles or profiles,
and they expire. botocore's default resolver knows every one of these and
refreshes temporary credentials ahead of their expiry, so with the optional
``amp`` extra (``pip install 'otel-netreceiver[amp]'``) the signer asks it for
the current frozen credentials before every request: rotated credentials are
used without a restart. Without botocore only the static AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN variables work (sigv4.py). The SigV4
signature itself stays ours (sigv4.py, pinned to the published test vectors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otel_netreceiver.diagnosis.sigv4 import Credentials, CredentialsError, credentials_from_env

CredentialSource = Callable[[], Credentials]


def _botocore_session() -> Any | None:
    try:
        import botocore.session
    except ImportError:
        return None
    return botocore.session.Session()


def botocore_source(session: Any) -> CredentialSource:
    """Current credentials from botocore's resolver (it refreshes them before they expire)."""
    resolved = session.get_credentials()
    if resolved is None:
        raise CredentialsError(
            "SigV4 needs AWS credentials: botocore's default chain found none "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, web identity/IRSA, container "
            "credentials/EKS Pod Identity, profiles, instance role)")

    def current() -> Credentials:
        frozen = resolved.get_frozen_credentials()  # refreshes first when close to expiry
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or "")

    return current


def default_source(env: Mapping[str, str], session: Any | None = None) -> CredentialSource:
    """botocore's chain when the ``amp`` extra is installed, else the static variables.

    botocore reads the process environment and AWS config files itself (its own
    resolution order); ``env`` serves the fallback without botocore.
    """
    session = session if session is not None else _botocore_session()
    if session is None:
        static = credentials_from_env(env)
        return lambda: static
    return botocore_source(session)
