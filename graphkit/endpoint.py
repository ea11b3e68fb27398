"""The remote-endpoint guard: MIMIC records stay on this machine unless the user opts in.

An endpoint counts as local only when its host is a loopback address written literally
(127.0.0.0/8, ::1) or the name ``localhost``. Any other name is remote, even one that resolves to
a local address today: a name can be re-pointed, a literal address cannot. Local endpoints are
also reached without environment proxies (callers pass ``trust_env=not loopback`` to their HTTP
client), so an ``HTTPS_PROXY`` cannot carry records off the machine either.

Every part that sends records to a model (generators' verbalizers, the bench evaluator) uses
this one guard.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from graphkit.errors import ConfigError, RemoteEndpointRefused

log = logging.getLogger(__name__)


def endpoint_host(base_url: str, *, option: str = "--base-url") -> str:
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ConfigError("not an http(s) URL", where=f"option {option}", value=base_url,
                          fix="pass the server's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    return host


def is_loopback(base_url: str, *, option: str = "--base-url") -> bool:
    host = endpoint_host(base_url, option=option)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(base_url: str, allow_remote: bool, *, purpose: str = "the verbalizer",
                   option: str = "--base-url") -> bool:
    """Refuse a non-loopback endpoint unless ``allow_remote``; log the opt-in. Returns is_loopback.

    ``option`` names the command-line option the URL came from, for the error message.
    """
    if is_loopback(base_url, option=option):
        return True
    host = endpoint_host(base_url, option=option)
    if not allow_remote:
        raise RemoteEndpointRefused(
            f"{purpose} would send patient records to a remote endpoint",
            where=f"option {option}", value=host,
            fix="serve the model on this machine (e.g. http://127.0.0.1:8000/v1), or pass --allow-remote "
                "if your data use agreement permits sending records to that service",
        )
    log.warning("--allow-remote: %s sends patient records to %s", purpose, host)
    return False
