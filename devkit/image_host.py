"""A real HTTPS server on loopback, for the image-URL tests: Python's
ThreadingHTTPServer under OpenSSL (the ssl module), with a certificate from
a test CA made here (valid for `localhost` and 127.0.0.1), serving what a
hostile or broken image host does:

    /image/<name>       the bytes put under <name> (`host.put`)
    /redirect?to=<url>  302 to <url> (`host.redirect(url)` quotes it)
    /loop               302 to itself
    /slow?s=<seconds>   waits, then a small image
    /endless            200 and a body that never ends
    /status/<code>      that status, no body

    with ImageHost.running(tmp_path) as host:
        host.put("face.jpg", data)
        host.url("/image/face.jpg")  # https://localhost:<port>/image/face.jpg
        host.ca_file                  # the PEM a client must trust
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HANDSHAKE_S = 10.0  # a client that has not finished its TLS handshake by then is dropped
SMALL_PNG = bytes.fromhex(  # 1x1, enough for "an image arrived"
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8ffff3f0005fe02fea7d1a9dc0000000049454e44ae426082"
)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files in `folder`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("FaceSearch test CA"))
        .issuer_name(_name("FaceSearch test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class ImageHost:
    folder: Path
    images: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths asked for, in order
    port: int = 0

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def redirect(self, target: str) -> str:
        """A URL of this host that redirects to `target`."""
        return self.url(f"/redirect?to={quote(target, safe='')}")

    def put(self, name: str, data: bytes) -> str:
        """Serves `data` at /image/<name>; answers its URL."""
        self.images[name] = data
        return self.url(f"/image/{name}")

    @classmethod
    @contextmanager
    def running(cls, folder: Path) -> Iterator[ImageHost]:
        host = cls(folder)
        _, cert, key = make_certificates(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = _TlsServer(("127.0.0.1", 0), _handler(host), context)
        host.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield host
        finally:
            server.shutdown()
            server.server_close()


class _TlsServer(ThreadingHTTPServer):
    """Each connection's TLS handshake in that connection's thread. Wrapping
    the listening socket would shake hands inside accept(), in the one
    thread that accepts them all: a client slow to finish its handshake
    (a busy gateway) would hold up every other until it did."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ) -> None:
        super().__init__(address, handler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        return self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(HANDSHAKE_S)
            request.do_handshake()
            request.settimeout(None)
        except OSError:  # ssl.SSLError too: a client that gave up, or spoke plain HTTP
            return
        super().finish_request(request, client_address)


def _handler(host: ImageHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            host.requests.append(parts.path)
            # A client that gives up (as it should on an endless body) is no error.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self._answer(parts.path, query)

        def _answer(self, path: str, query: dict[str, list[str]]) -> None:
            if path.startswith("/image/") and path[7:] in host.images:
                self._body(host.images[path[7:]])
            elif path in ("/redirect", "/loop"):
                self.send_response(302)
                self.send_header("Location", query["to"][0] if path == "/redirect" else "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/slow":
                time.sleep(float(query.get("s", ["30"])[0]))
                self._body(SMALL_PNG)
            elif path == "/endless":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                chunk = b"\xff" * 65536
                while True:
                    self.wfile.write(chunk)
            elif path.startswith("/status/"):
                self.send_response(int(path[8:]))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def _body(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
