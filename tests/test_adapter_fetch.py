"""The safe fetcher (herald.adapters.fetch) and the email attachments that use it, against
real local servers that count the connections they get.

SSRF: a refused address is never connected to (the servers count connections, not only
requests), whatever the URL's spelling, after a redirect too; the connection goes to the
address that was checked, with the URL's name for Host and TLS. Deadline: one for all of an
email's attachments, however slowly a server trickles. Decompression bombs: never inflated
past the cap. And what worked before still does: names, types, caps, the error map.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from pathlib import Path
from socketserver import TCPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from herald.adapters.deadline import Deadline
from herald.adapters.email.attachments import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS_BYTES,
    File,
    fetch_attachments,
)
from herald.adapters.fetch import Fetched, Fetcher, IPAddress
from herald.contract.errors import InvalidContent, ProviderUnavailable, SendError
from herald.contract.job import Attachment
from herald.testing.sandbox import Sandbox
from herald.testing.sandbox.files import file_bytes
from tests.adapter_support import assert_hidden, closed_port, sandbox_fixture

#: What the test servers listen on; the allow list of most tests.
ALLOW = (ip_network("127.0.0.1/32"),)
#: A signed URL's token: no error may show it.
TOKEN = "sig-TOKEN-5f2a9c"
INVALID_URL = "t: attachment invoice.pdf may not be fetched (it has an invalid URL)"
NOT_PUBLIC = (
    "t: attachment invoice.pdf may not be fetched (its host has an address that is not public)"
)

Answer = Callable[["Handler"], None]


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class Handler(BaseHTTPRequestHandler):
    """Answers by the server's script for the path; 404 for any other."""

    server: FileServer

    def do_GET(self) -> None:
        self.server.requests.append(
            Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        answer = self.server.routes.get(urlsplit(self.path).path, status(404))
        with contextlib.suppress(OSError):  # the fetcher hung up, as several tests want
            answer(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FileServer(ThreadingHTTPServer):
    """A local HTTP(S) server that counts the connections it accepts."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections = 0
        self.requests: list[Seen] = []
        self.routes: dict[str, Answer] = {}
        #: TLS server names the clients asked for.
        self.sni: list[str | None] = []
        self.stopping = threading.Event()
        super().__init__((host, port), Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # HTTPServer's would look up the host's FQDN
        self.server_name, self.server_port = str(self.server_address[0]), self.port

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, *, scheme: str = "http", host: str | None = None) -> str:
        host = host or str(self.server_address[0])
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}{path}"

    def use_tls(self, certs: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs / "leaf.pem", certs / "leaf.key")
        context.sni_callback = self._saw_name
        self.socket = context.wrap_socket(self.socket, server_side=True)

    def _saw_name(self, sock: Any, name: str | None, context: Any) -> None:
        self.sni.append(name)

    def __enter__(self) -> FileServer:
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


# --- answers ------------------------------------------------------------------------------------


def serve(
    body: bytes = b"%PDF-1.7 data",
    *,
    code: int = 200,
    headers: dict[str, str] | None = None,
    length: bool = True,
    delay: float = 0.0,
) -> Answer:
    """Answer ``body`` (close-delimited when not ``length``), after ``delay`` seconds."""

    def answer(h: Handler) -> None:
        if delay and h.server.stopping.wait(delay):
            return
        h.send_response(code)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        if length:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    return serve(b"", code=code, headers=headers)


def redirect(location: str, code: int = 302) -> Answer:
    return status(code, {"Location": location})


def trickle(size: int = 1000, every: float = 0.1) -> Answer:
    """A body of ``size`` bytes, one byte every ``every`` seconds: each read is quick."""

    def answer(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        for _ in range(size):
            h.wfile.write(b"x")
            h.wfile.flush()
            if h.server.stopping.wait(every):
                return

    return answer


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as running:
        yield running


@pytest.fixture
def other() -> Iterator[FileServer]:
    """A server on 127.0.0.2: loopback, but not in the allow list."""
    with FileServer("127.0.0.2") as running:
        yield running


@pytest.fixture
def server6() -> Iterator[FileServer]:
    with FileServer("::1") as running:
        yield running


files = sandbox_fixture()


def att(url: str, filename: str | None = None) -> Attachment:
    return Attachment(url=url, kind="file", filename=filename)


def fetch(*urls: str, **options: Any) -> list[File]:
    return fetch_attachments([att(url) for url in urls], what="t", **options)


def fails(run: Callable[[], object]) -> SendError:
    """Run ``run``, expect a SendError that does not show the URL's token, return it."""
    with pytest.raises(SendError) as caught:
        run()
    assert_hidden(caught.value, TOKEN)
    return caught.value


def get(fetcher: Fetcher, url: str, *, limit: int = MAX_ATTACHMENT_BYTES) -> Fetched:
    return fetcher.get(
        url, label="attachment invoice.pdf", what="t", limit=limit, deadline=Deadline(5)
    )


def answering(*addresses: str) -> Callable[[str, int], list[IPAddress]]:
    """A resolver giving every name ``addresses`` (a DNS server the test controls)."""
    return lambda host, port: [ip_address(a) for a in addresses]


# --- SSRF: addresses ----------------------------------------------------------------------------

LOOPBACK_SPELLINGS = {
    "ipv4": "http://127.0.0.1:{port}",
    "localhost": "http://localhost:{port}",
    "decimal": "http://2130706433:{port}",
    "hex": "http://0x7f.1:{port}",
    "short": "http://127.1:{port}",
    "octal": "http://0177.0.0.1:{port}",
    "unspecified": "http://0.0.0.0:{port}",
    "mapped": "http://[::ffff:127.0.0.1]:{port}",
    "ipv6": "http://[::1]:{port6}",
}


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS.values(), ids=LOOPBACK_SPELLINGS.keys())
def test_a_loopback_server_is_never_contacted_without_the_allow_list(
    server: FileServer, server6: FileServer, spelling: str
) -> None:
    for running in (server, server6):
        running.routes["/files/invoice.pdf"] = serve()
    url = spelling.format(port=server.port, port6=server6.port) + f"/files/invoice.pdf?{TOKEN}"
    error = fails(lambda: fetch(url))
    assert type(error) is InvalidContent
    # httpx does not even parse an octal IPv4 address: refused all the same.
    assert error.message == (INVALID_URL if "0177" in spelling else NOT_PUBLIC)
    assert (server.connections, server6.connections) == (0, 0)


def test_the_allow_list_admits_its_own_networks_only(
    server: FileServer, other: FileServer, server6: FileServer
) -> None:
    for running in (server, other, server6):
        running.routes["/invoice.pdf"] = serve(b"data")
    [got] = fetch(server.url("/invoice.pdf"), allow_networks=ALLOW)
    assert got.data == b"data"
    for refused in (other, server6):  # loopback too, but not 127.0.0.1/32
        error = fails(lambda r=refused: fetch(r.url(f"/invoice.pdf?{TOKEN}"), allow_networks=ALLOW))
        assert error.message == NOT_PUBLIC
    assert (server.connections, other.connections, server6.connections) == (1, 0, 0)


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1", "10.0.0.1"), ("10.0.0.1", "127.0.0.1"), ("127.0.0.1", "::1")],
    ids=["allowed-first", "refused-first", "v6-refused"],
)
def test_every_address_a_name_resolves_to_must_pass(
    server: FileServer, addresses: tuple[str, ...]
) -> None:
    fetcher = Fetcher(allow_networks=ALLOW, resolver=answering(*addresses))
    error = fails(lambda: get(fetcher, f"http://files.test:{server.port}/invoice.pdf?{TOKEN}"))
    assert error.message == NOT_PUBLIC
    assert server.connections == 0


def test_the_connection_goes_to_the_checked_address_not_to_a_second_lookup(
    server: FileServer,
) -> None:
    # A rebinding DNS: 127.0.0.1 (allowed) first, then 127.0.0.2 (refused) for ever after.
    calls: list[tuple[str, int]] = []

    def rebinding(host: str, port: int) -> list[IPAddress]:
        calls.append((host, port))
        return [ip_address("127.0.0.1" if len(calls) == 1 else "127.0.0.2")]

    server.routes["/invoice.pdf"] = serve(b"checked")
    with FileServer("127.0.0.2", port=server.port) as rebound:
        rebound.routes["/invoice.pdf"] = serve(b"rebound")
        got = get(
            Fetcher(allow_networks=ALLOW, resolver=rebinding),
            f"http://files.test:{server.port}/invoice.pdf",
        )
    assert got.data == b"checked"
    assert calls == [("files.test", server.port)]  # resolved once, for the check
    assert rebound.connections == 0
    assert server.requests[0].headers["host"] == f"files.test:{server.port}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and a certificate for ``files.test`` it signed (made with openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Herald test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=files.test")
    (folder / "leaf.ext").write_text(
        "subjectAltName=DNS:files.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "leaf.pem", "-days", "2",
            "-extfile", "leaf.ext")  # fmt: skip
    return folder


def test_tls_uses_the_urls_name_while_connecting_to_the_checked_address(
    server: FileServer, certs: Path
) -> None:
    server.use_tls(certs)
    server.routes["/invoice.pdf"] = serve(b"over tls")
    trusting = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    fetcher = Fetcher(allow_networks=ALLOW, ssl_context=trusting, resolver=answering("127.0.0.1"))

    got = get(fetcher, f"https://files.test:{server.port}/invoice.pdf")
    assert got.data == b"over tls"
    assert server.sni == ["files.test"]
    assert server.requests[0].headers["host"] == f"files.test:{server.port}"

    # Same address, another name: the certificate is checked against the URL's name.
    error = fails(lambda: get(fetcher, f"https://other.test:{server.port}/invoice.pdf?{TOKEN}"))
    assert type(error) is ProviderUnavailable
    assert error.message == "t: could not fetch attachment invoice.pdf (ConnectError)"
    assert len(server.requests) == 1


# --- SSRF: redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port2}/invoice.pdf",
        "http://[::1]:{port6}/invoice.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/invoice.pdf",
    ],
    ids=["loopback-not-allowed", "ipv6-loopback", "metadata", "private"],
)
def test_a_redirect_to_a_refused_address_is_not_followed(
    server: FileServer, other: FileServer, server6: FileServer, code: int, target: str
) -> None:
    location = target.format(port2=other.port, port6=server6.port) + f"?{TOKEN}"
    server.routes["/invoice.pdf"] = redirect(location, code)
    error = fails(lambda: fetch(server.url("/invoice.pdf"), allow_networks=ALLOW))
    assert type(error) is InvalidContent
    assert error.message == (
        "t: attachment invoice.pdf may not be fetched"
        " (it redirects to an address that is not public)"
    )
    assert (len(server.requests), other.connections, server6.connections) == (1, 0, 0)


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/invoice.pdf", "gopher://127.0.0.1:70/_x"]
)
def test_a_redirect_to_another_scheme_fails(server: FileServer, location: str) -> None:
    server.routes["/invoice.pdf"] = redirect(location)
    error = fails(lambda: fetch(server.url("/invoice.pdf"), allow_networks=ALLOW))
    assert error.message == (
        "t: attachment invoice.pdf may not be fetched"
        " (it redirects to a URL that is not http or https)"
    )


def test_only_http_and_https_urls_are_fetched() -> None:
    error = fails(lambda: get(Fetcher(), "ftp://127.0.0.1/invoice.pdf"))
    assert (
        error.message
        == "t: attachment invoice.pdf may not be fetched (it is not an http or https URL)"
    )


def test_five_redirects_are_followed_and_a_sixth_is_refused(server: FileServer) -> None:
    # Relative, absolute-path and absolute-URL Locations, with each redirect code.
    hops = [("/a/0", "1", 301), ("/a/1", "/a/2", 302), ("/a/2", server.url("/a/3"), 303),
            ("/a/3", "4", 307), ("/a/4", "/a/5", 308)]  # fmt: skip
    for path, location, code in hops:
        server.routes[path] = redirect(location, code)
    server.routes["/a/5"] = serve(b"after five")
    [got] = fetch(server.url("/a/0"), allow_networks=ALLOW)
    assert got.data == b"after five"
    assert len(server.requests) == 6

    server.requests.clear()
    for index in range(6):
        server.routes[f"/b/{index}"] = redirect(f"/b/{index + 1}")
    server.routes["/b/6"] = serve()
    error = fails(lambda: fetch(server.url("/b/0"), allow_networks=ALLOW))
    assert error.message == "t: attachment 0 may not be fetched (over 5 redirects)"
    assert [seen.path for seen in server.requests] == [f"/b/{i}" for i in range(6)]


# --- the deadline -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [trickle(size=1000, every=0.1), serve(delay=5.0), trickle(size=10, every=3.0)],
    ids=["a-byte-every-0.1s", "no-answer-for-5s", "a-byte-every-3s"],
)
def test_a_slow_download_ends_at_the_deadline(server: FileServer, answer: Answer) -> None:
    server.routes["/slow.pdf"] = answer
    began = time.monotonic()
    error = fails(
        lambda: fetch(server.url(f"/slow.pdf?{TOKEN}"), allow_networks=ALLOW, deadline_s=1.0)
    )
    took = time.monotonic() - began
    assert 0.9 < took < 1.5
    assert type(error) is ProviderUnavailable
    assert not error.in_doubt  # a download is safe to repeat
    assert error.message == "t: could not fetch attachment slow.pdf within 1 s"


def test_the_deadline_is_for_all_of_an_emails_attachments(server: FileServer) -> None:
    # Each answer takes 0.4 s, well within the deadline; the three of them do not.
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        server.routes[f"/{name}"] = serve(delay=0.4)
    began = time.monotonic()
    error = fails(
        lambda: fetch(
            *(server.url(f"/{n}") for n in ("a.pdf", "b.pdf", "c.pdf")),
            allow_networks=ALLOW,
            deadline_s=1.0,
        )
    )
    assert time.monotonic() - began < 1.4
    assert error.message == "t: could not fetch attachment c.pdf within 1 s"


def test_the_default_deadline_is_below_any_lease() -> None:
    from herald.adapters.email.attachments import DEFAULT_DEADLINE_S
    from herald.config.settings import Settings

    lease_s = Settings.model_fields["lease_s"].default
    assert lease_s / 4 <= DEFAULT_DEADLINE_S < lease_s / 3


# --- decompression ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """256 MB of zeros as a gzip body of about 250 KB (compressed a MB at a time)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(256)) + packer.flush()


def test_a_gzip_bomb_is_refused_without_being_inflated(server: FileServer, bomb: bytes) -> None:
    server.routes["/bomb.pdf"] = serve(bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        error = fails(lambda: fetch(server.url("/bomb.pdf"), allow_networks=ALLOW))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(error) is InvalidContent
    assert (
        error.message == "t: attachment bomb.pdf is over 10 MB; the limit per attachment is 10 MB"
    )
    # What is kept (the cap) and a step of inflating: never what the bomb inflates to.
    assert peak < MAX_ATTACHMENT_BYTES + 4 * 1024 * 1024
    assert server.requests[0].headers["accept-encoding"] == "identity"


def _gzip_members(data: bytes) -> bytes:
    return gzip.compress(data[:1000]) + gzip.compress(data[1000:])


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("gzip", _gzip_members),
        ("identity", lambda data: data),
    ],
    ids=["gzip", "x-gzip", "deflate", "gzip-two-members", "identity"],
)
def test_a_body_encoded_anyway_is_inflated(
    server: FileServer, coding: str, pack: Callable[[bytes], bytes]
) -> None:
    data = file_bytes("photo.png", 70_000)
    server.routes["/photo.png"] = serve(pack(data), headers={"Content-Encoding": coding})
    [got] = fetch(server.url("/photo.png"), allow_networks=ALLOW)
    assert (got.data, got.content_type) == (data, "image/png")


def test_an_inflated_body_of_exactly_the_cap_passes(server: FileServer) -> None:
    data = bytes(MAX_ATTACHMENT_BYTES)
    server.routes["/full.bin"] = serve(gzip.compress(data), headers={"Content-Encoding": "gzip"})
    [got] = fetch(server.url("/full.bin"), allow_networks=ALLOW)
    assert len(got.data) == MAX_ATTACHMENT_BYTES


@pytest.mark.parametrize(
    ("coding", "body", "message"),
    [
        ("br", b"\x1b\x03\x00", "is served in an encoding Herald cannot read"),
        (
            "gzip, gzip",
            gzip.compress(gzip.compress(b"x")),
            "is served in an encoding Herald cannot read",
        ),
        ("compress", b"\x1f\x9d", "is served in an encoding Herald cannot read"),
        ("gzip", gzip.compress(b"x" * 5000)[:-12], "could not be decoded (bad compressed data)"),
        ("gzip", b"not gzip at all", "could not be decoded (bad compressed data)"),
    ],
    ids=["brotli", "stacked", "compress", "truncated", "garbage"],
)
def test_a_body_it_cannot_decode_is_invalid_content(
    server: FileServer, coding: str, body: bytes, message: str
) -> None:
    server.routes["/invoice.pdf"] = serve(body, headers={"Content-Encoding": coding})
    error = fails(lambda: fetch(server.url(f"/invoice.pdf?{TOKEN}"), allow_networks=ALLOW))
    assert type(error) is InvalidContent
    assert error.message == f"t: attachment invoice.pdf {message}"


# --- what worked before ---------------------------------------------------------------------------


def test_files_keep_their_bytes_names_and_types(files: Sandbox, server: FileServer) -> None:
    server.routes["/generic.png"] = serve(
        b"png", headers={"Content-Type": "application/octet-stream"}
    )
    server.routes["/data.bin"] = serve(b"a,b", headers={"Content-Type": "text/csv; charset=utf-8"})
    server.routes["/untyped.mp3"] = serve(b"mp3")
    attachments = [
        att(f"{files.url}/files/1234/invoice.pdf"),
        att(f"{files.url}/files/5000/photo.png", filename="Front view.png"),
        att(server.url("/generic.png")),  # generic type: guessed from the name
        att(server.url("/data.bin")),  # the server's type wins
        att(server.url("/untyped.mp3")),  # no type: guessed from the name
    ]
    got = fetch_attachments(attachments, what="t", allow_networks=ALLOW)
    assert [(f.filename, f.content_type) for f in got] == [
        ("invoice.pdf", "application/pdf"),
        ("Front view.png", "image/png"),
        ("generic.png", "image/png"),
        ("data.bin", "text/csv"),
        ("untyped.mp3", "audio/mpeg"),
    ]
    assert got[0].data == file_bytes("invoice.pdf", 1234)
    assert got[1].data == file_bytes("photo.png", 5000)


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        (404, InvalidContent, "was not found (HTTP 404)"),
        (410, InvalidContent, "was not found (HTTP 410)"),
        (403, InvalidContent, "could not be fetched (HTTP 403)"),
        (302, InvalidContent, "could not be fetched (HTTP 302)"),  # a redirect with no Location
        (429, ProviderUnavailable, "could not be fetched now (HTTP 429)"),
        (500, ProviderUnavailable, "could not be fetched now (HTTP 500)"),
        (503, ProviderUnavailable, "could not be fetched now (HTTP 503)"),
    ],
)
def test_statuses_map_to_herald_errors(
    server: FileServer, code: int, error: type[SendError], message: str
) -> None:
    server.routes["/invoice.pdf"] = status(code)
    got = fails(lambda: fetch(server.url(f"/invoice.pdf?{TOKEN}"), allow_networks=ALLOW))
    assert type(got) is error
    assert not got.in_doubt
    assert got.message == f"t: attachment invoice.pdf {message}"


def test_a_network_fault_is_provider_unavailable() -> None:
    url = f"http://127.0.0.1:{closed_port()}/invoice.pdf?{TOKEN}"
    error = fails(lambda: fetch(url, allow_networks=ALLOW))
    assert type(error) is ProviderUnavailable
    assert (error.in_doubt, error.message) == (
        False,
        "t: could not fetch attachment invoice.pdf (ConnectError)",
    )


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_a_file_over_the_cap_is_invalid_content(server: FileServer, length: bool) -> None:
    server.routes["/huge.pdf"] = serve(bytes(MAX_ATTACHMENT_BYTES + 1), length=length)
    error = fails(lambda: fetch(server.url(f"/huge.pdf?{TOKEN}"), allow_networks=ALLOW))
    assert (
        error.message == "t: attachment huge.pdf is over 10 MB; the limit per attachment is 10 MB"
    )


def test_files_over_the_total_cap_are_invalid_content(files: Sandbox) -> None:
    size = 9 * 1024 * 1024
    error = fails(
        lambda: fetch(
            *(f"{files.url}/files/{size}/part{i}.bin" for i in range(3)), allow_networks=ALLOW
        )
    )
    assert error.message == (
        "t: attachments total over 25 MB (reached at part2.bin); the limit per email is 25 MB"
    )
    assert MAX_ATTACHMENTS_BYTES == 25 * 1024 * 1024


def test_credentials_in_the_url_are_sent_as_basic_auth(server: FileServer) -> None:
    server.routes["/invoice.pdf"] = serve()
    fetch(server.url("/invoice.pdf").replace("//", "//ana:s%3Acret@"), allow_networks=ALLOW)
    assert server.requests[0].headers["authorization"] == "Basic YW5hOnM6Y3JldA=="
