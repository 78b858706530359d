"""The cloud guard blocks remote hosts and credential lookups but allows loopback."""

import socket

import pytest

from tests.cloud_guard import CloudAccessError, check_address


@pytest.mark.parametrize(
    "address",
    [("127.0.0.1", 80), ("::1", 80), ("localhost", 8080), "/tmp/some.sock"],
)
def test_check_address_allows_local(address):
    check_address(address)


@pytest.mark.parametrize(
    "address",
    [("192.0.2.10", 443), ("2001:db8::1", 443), ("pubsub.googleapis.com", 443)],
)
def test_check_address_blocks_remote(address):
    with pytest.raises(CloudAccessError, match="must not call Google Cloud"):
        check_address(address)


def test_getaddrinfo_blocks_google_host():
    with pytest.raises(CloudAccessError, match=r"bigquery\.googleapis\.com"):
        socket.getaddrinfo("bigquery.googleapis.com", 443)


def test_google_auth_default_refuses():
    google_auth = pytest.importorskip("google.auth")
    with pytest.raises(CloudAccessError, match="credentials"):
        google_auth.default()


def test_loopback_connection_still_works():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.close()
    server.close()
