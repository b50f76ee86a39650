"""The image-URL tests' HTTPS server (devkit/image_host.py): a client that
connects and never finishes its TLS handshake holds up no other."""

from __future__ import annotations

import socket
import ssl
import time

import httpx

from devkit.image_host import ImageHost


def test_a_silent_connection_does_not_hold_up_another(tmp_path):
    with ImageHost.running(tmp_path) as host:
        url = host.put("face.jpg", b"\xff\xd8\xff\xe0 pixels")
        with socket.create_connection(("127.0.0.1", host.port)):  # connected, and says nothing
            started = time.monotonic()
            answer = httpx.get(url, verify=ssl.create_default_context(cafile=host.ca_file), timeout=5)
            assert answer.content == b"\xff\xd8\xff\xe0 pixels"
            assert time.monotonic() - started < 2
