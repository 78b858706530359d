"""Make any attempt to reach Google Cloud, or any non-local host, fail fast in tests.

Tests run against Pulumi mocks, the Beam DirectRunner and local files. A test
that reaches for credentials or a remote host would hang on the metadata server
or depend on the cloud. The guard turns each such attempt into an immediate
`CloudAccessError` with the reason and the fix.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

_CLOUD_ENV_VARS = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDSDK_CONFIG",
    "PULUMI_ACCESS_TOKEN",
)

_FIX = (
    "Tests must not call Google Cloud or any other remote host: use "
    "pulumi.runtime.set_mocks, the Beam DirectRunner, or a local fake."
)


class CloudAccessError(RuntimeError):
    """Raised when code under test tries to reach the cloud or a remote host."""


def check_address(address: object) -> None:
    """Raise CloudAccessError unless `address` is a Unix socket path or a loopback host."""
    if isinstance(address, (str, bytes)):
        return  # AF_UNIX path
    if not isinstance(address, tuple) or not address:
        return
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", "", None):
        return
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        raise CloudAccessError(f"blocked a connection to host {host!r}. {_FIX}") from None
    if not ip.is_loopback:
        port = address[1] if len(address) > 1 else "unknown"
        raise CloudAccessError(f"blocked a connection to {ip} port {port}. {_FIX}")


def _guard_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        check_address(address)
        return original(self, address)

    return connect


def _guard_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            check_address((host, args[0] if args else None))
        return original(host, *args, **kwargs)

    return getaddrinfo


def _refuse_credentials(*_args: Any, **_kwargs: Any) -> Any:
    raise CloudAccessError(
        f"google.auth.default() was called, so code asked for credentials. {_FIX}"
    )


def install() -> None:
    """Clear cloud settings from the environment and patch sockets and google.auth."""
    for name in _CLOUD_ENV_VARS:
        os.environ.pop(name, None)
    # Client libraries skip the metadata-server probe when this is set.
    os.environ["NO_GCE_CHECK"] = "True"
    os.environ["GCE_METADATA_HOST"] = "127.0.0.1:1"
    os.environ["GCE_METADATA_IP"] = "127.0.0.1:1"

    socket.socket.connect = _guard_connect(socket.socket.connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = _guard_connect(socket.socket.connect_ex)  # type: ignore[method-assign]
    socket.getaddrinfo = _guard_getaddrinfo(socket.getaddrinfo)

    try:
        import google.auth
        import google.auth._default
    except ImportError:
        return  # the policy-pack environment has no Google client libraries
    google.auth.default = _refuse_credentials
    google.auth._default.default = _refuse_credentials
