"""Safe URL fetches: public addresses only, pinned connections, one deadline, bounded bodies.

A URL from a job may point anywhere, so a fetch must not become a way into the fleet's own
network (SSRF). Each hop of a fetch, the first and every redirect (at most
:data:`MAX_REDIRECTS`, followed here, never by the HTTP library):

1. must be ``http`` or ``https``;
2. has its host resolved once, and EVERY address found must pass :func:`refusal` (public, or
   in the allow list);
3. is connected to one of those checked addresses, never to a second lookup that a
   rebinding DNS could answer differently, while the Host header, TLS SNI and certificate
   check still use the URL's host name (an httpcore network backend that ignores the name
   it is given and dials the checked addresses).

Every read, write and connect is also bounded by one :class:`Deadline` shared by all hops
(and by all the fetches of a task), so a server trickling bytes cannot outlive a job's lease.
Bodies are read raw (``Accept-Encoding: identity``); a server that encodes anyway has gzip or
deflate inflated with a bounded decompressor, never past the size limit.

Errors name the thing fetched by its label (``attachment invoice.pdf``), never by URL:
signed URLs carry tokens.
"""

from __future__ import annotations

import base64
import functools
import socket
import ssl
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import httpcore
import httpx

from herald.adapters.deadline import Deadline, DeadlineStream
from herald.contract.errors import InvalidContent, ProviderUnavailable

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
#: Resolves ``(host, port)`` to every address of the host.
Resolver = Callable[[str, int], Sequence[IPAddress]]

#: Redirects followed for one fetch; one more is refused.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PORTS = {"http": 80, "https": 443}
#: zlib window bits per Content-Encoding; 47 takes a gzip or a zlib header, as servers mix
#: the two up.
_WBITS = {"gzip": 47, "x-gzip": 47, "deflate": 47}
#: The most one zlib call inflates.
_INFLATE_STEP = 1024 * 1024

#: NAT64 well-known prefix (RFC 6052): the IPv4 address is the last 32 bits.
_NAT64 = ip_network("64:ff9b::/96")
#: Never fetched, whatever the allow list: not one host, or a cloud's platform endpoint on
#: an address that looks public (Azure's WireServer).
_NEVER = (ip_network("255.255.255.255/32"), ip_network("168.63.129.16/32"))
#: Not public although older Pythons' ``is_global`` says so (their tables were corrected in
#: patch releases, CVE-2024-4032): stated here so that every 3.11+ answers the same.
_NOT_PUBLIC = (
    ip_network("192.0.0.0/24"),  # IETF protocol assignments; Oracle Cloud metadata .192
    ip_network("2002::/16"),  # 6to4: deprecated (RFC 7526) and may carry any IPv4 address
    ip_network("3fff::/20"),  # documentation (RFC 9637)
    ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
)


def refusal(address: IPAddress, allow: Iterable[Network] = ()) -> str | None:
    """Why ``address`` may not be fetched from, or None when it may.

    Public means ``is_global`` of :mod:`ipaddress`, which refuses loopback, RFC 1918, ULA,
    link-local (the 169.254.169.254 metadata service), shared 100.64/10, documentation and
    reserved ranges, and Teredo; on top of it multicast, site-local, 6to4, a few ranges older
    Pythons call global (:data:`_NOT_PUBLIC`) and, for IPv6, anything outside 2000::/3
    (``is_reserved``) are refused, and the IPv4 address inside an IPv4-mapped or NAT64
    address must pass too.
    """
    plain = _unmapped(address)
    if plain.is_unspecified or plain.is_multicast or any(plain in net for net in _NEVER):
        return "not a host address"
    if any(plain in net or address in net for net in allow):
        return None
    return None if _public(plain) else "not a public address"


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:a.b.c.d is a.b.c.d to the kernel: judge it (and allow it) as that.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: IPAddress) -> bool:
    if any(address in net for net in _NOT_PUBLIC):
        return False
    if isinstance(address, IPv4Address):
        # is_global is True for multicast (checked by the caller) and False for 100.64/10.
        return address.is_global
    if address in _NAT64:
        return _public(IPv4Address(int(address) & 0xFFFFFFFF))
    # is_reserved covers every IPv6 range outside 2000::/3 and fc00::/7 (IPv4-compatible
    # ::a.b.c.d among them, which 3.11 calls global); is_global refuses Teredo (2001::/32).
    return address.is_global and not address.is_reserved and not address.is_site_local


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order.

    Numeric forms resolve too (``2130706433`` and ``0x7f.1`` are 127.0.0.1), so they are
    checked like any name.
    """
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


class _PinnedBackend(httpcore.NetworkBackend):
    """Dials the checked addresses only: the host name httpcore passes is never resolved
    again (it still gives the Host header and the TLS name)."""

    def __init__(self, addresses: Sequence[IPAddress], deadline: Deadline) -> None:
        self._addresses = addresses
        self._deadline = deadline
        self._sync = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError("no address")
        for address in self._addresses:  # each one checked: try the next if one is down
            wait = self._deadline.cap(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._sync.connect_tcp(
                    str(address), port, wait, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return DeadlineStream(stream, self._deadline)
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never fetched")


class TooLarge(InvalidContent):
    """Raised when a body (inflated, if encoded) is over the limit of the fetch."""


@dataclass(frozen=True)
class Fetched:
    """A fetched body and the type the server gave."""

    data: bytes
    content_type: str | None


@functools.cache
def _default_ssl() -> ssl.SSLContext:
    # The CA bundle httpx uses; loading it takes ~40 ms, so once per process.
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Fetcher:
    """GETs URLs safely (see the module's docstring); one instance serves any thread."""

    #: Networks fetched from although not public (``HERALD_FETCH_ALLOW_NETWORKS``).
    allow_networks: tuple[Network, ...] = ()
    connect_timeout: float = 5.0
    #: The longest wait for any one read; the deadline bounds the whole fetch.
    read_timeout: float = 15.0
    max_redirects: int = MAX_REDIRECTS
    ssl_context: ssl.SSLContext | None = None
    resolver: Resolver = resolve

    def get(self, url: str, *, label: str, what: str, limit: int, deadline: Deadline) -> Fetched:
        """The body at ``url`` (at most ``limit`` bytes), following redirects.

        Raises :class:`InvalidContent` (refused URL, 4xx, too many redirects, undecodable),
        :class:`TooLarge`, or :class:`ProviderUnavailable` (network, 429/5xx, deadline: a GET
        is safe to repeat, so never in doubt). ``label`` names the thing in messages.
        """
        name = _Name(label, what, deadline)
        target = name.parse(url)
        with name.faults():
            for hop in range(self.max_redirects + 1):
                with self._open(target, name, hop) as response:
                    location = _header(response, b"location")
                    if response.status not in _REDIRECTS or location is None:
                        name.check_status(response.status)
                        data = _read(response, limit, name)
                        return Fetched(data, _header(response, b"content-type"))
                target = name.parse(location, base=target)
        raise name.refused(f"over {self.max_redirects} redirects")

    @contextmanager
    def _open(self, url: httpx.URL, name: _Name, hop: int) -> Iterator[httpcore.Response]:
        """One GET to an address checked for ``url``'s host."""
        addresses = self._checked(url, name, hop)
        backend = _PinnedBackend(addresses, name.deadline)
        # One connection per hop and none kept: a kept one would be reused by host name
        # without the check.
        with (
            httpcore.ConnectionPool(
                ssl_context=self.ssl_context or _default_ssl(),
                max_connections=1,
                max_keepalive_connections=0,
                network_backend=backend,
            ) as pool,
            pool.stream(
                "GET",
                httpcore.URL(
                    scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
                ),
                headers=_headers(url),
                extensions={"timeout": self._timeouts()},
            ) as response,
        ):
            yield response

    def _checked(self, url: httpx.URL, name: _Name, hop: int) -> list[IPAddress]:
        """The addresses of ``url``'s host, once each has passed :func:`refusal`."""
        if url.scheme not in _PORTS:
            raise name.refused(
                "it redirects to a URL that is not http or https"
                if hop
                else "it is not an http or https URL"
            )
        if name.deadline.passed():
            raise name.late()
        try:
            found = self.resolver(url.raw_host.decode("ascii"), url.port or _PORTS[url.scheme])
        except (socket.gaierror, UnicodeError, ValueError):
            # Names fail to resolve for a while too (DNS down): a GET can be tried again.
            raise ProviderUnavailable(
                f"{name.what}: could not fetch {name.label} (host not found)"
            ) from None
        # Every address must pass: the connection may go to any of them.
        if not found or any(refusal(a, self.allow_networks) for a in found):
            where = "it redirects to" if hop else "its host has"
            raise name.refused(f"{where} an address that is not public")
        return list(found)

    def _timeouts(self) -> dict[str, float]:
        return {
            "connect": self.connect_timeout,
            "read": self.read_timeout,
            "write": self.read_timeout,
            "pool": self.connect_timeout,
        }


def _headers(url: httpx.URL) -> list[tuple[bytes, bytes]]:
    headers = [
        # With brackets for IPv6 and the port if given; httpcore would drop the brackets.
        (b"Host", url.netloc),
        (b"Accept", b"*/*"),
        # Raw bytes, so that the size limit holds for what is kept (see _Body).
        (b"Accept-Encoding", b"identity"),
        (b"User-Agent", b"Herald"),
    ]
    if url.userinfo:  # as httpx did: credentials in the URL are Basic auth, for this hop only
        pair = f"{url.username}:{url.password}".encode()
        headers.append((b"Authorization", b"Basic " + base64.b64encode(pair)))
    return headers


def _header(response: httpcore.Response, key: bytes) -> str | None:
    for name, value in response.headers:
        if name.lower() == key:
            return value.decode("latin-1")
    return None


@dataclass(frozen=True)
class _Name:
    """What a fetch's messages say, and the one place its failures become Herald errors."""

    label: str
    what: str
    deadline: Deadline

    def parse(self, url: str, *, base: httpx.URL | None = None) -> httpx.URL:
        try:
            return base.join(url) if base is not None else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            where = "redirects to" if base is not None else "has"
            raise self.refused(f"it {where} an invalid URL") from None

    def refused(self, reason: str) -> InvalidContent:
        return InvalidContent(f"{self.what}: {self.label} may not be fetched ({reason})")

    def late(self) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"{self.what}: could not fetch {self.label} within {self.deadline.seconds or 0:g} s"
        )

    def check_status(self, status: int) -> None:
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            raise ProviderUnavailable(
                f"{self.what}: {self.label} could not be fetched now (HTTP {status})"
            )
        if status in (404, 410):
            raise InvalidContent(f"{self.what}: {self.label} was not found (HTTP {status})")
        raise InvalidContent(f"{self.what}: {self.label} could not be fetched (HTTP {status})")

    @contextmanager
    def faults(self) -> Iterator[None]:
        """httpcore's failures as Herald errors (Herald's own pass through)."""
        try:
            yield
        except httpcore.TimeoutException as exc:
            if self.deadline.binding:
                raise self.late() from exc
            raise self._unavailable(exc) from exc
        except (httpcore.NetworkError, httpcore.RemoteProtocolError) as exc:
            raise self._unavailable(exc) from exc
        except (httpcore.LocalProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise InvalidContent(
                f"{self.what}: could not fetch {self.label} ({type(exc).__name__})"
            ) from exc

    def _unavailable(self, exc: Exception) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"{self.what}: could not fetch {self.label} ({type(exc).__name__})"
        )


def _read(response: httpcore.Response, limit: int, name: _Name) -> bytes:
    """The body, inflated if the server encoded it anyway; never more than ``limit`` bytes."""
    coding = _coding(response, name)
    length = _header(response, b"content-length") or ""
    if coding is None and length.isdigit() and int(length) > limit:
        raise TooLarge(f"{name.what}: {name.label} is over {limit} bytes")
    body = _Body(limit, coding, name)
    for chunk in response.iter_stream():
        body.add(chunk)
    return body.finish()


def _coding(response: httpcore.Response, name: _Name) -> str | None:
    """The one Content-Encoding to undo (None for none); others are refused, not guessed."""
    given = (_header(response, b"content-encoding") or "").lower().split(",")
    codings = [c.strip() for c in given if c.strip() not in ("", "identity")]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _WBITS:
        return codings[0]
    raise InvalidContent(f"{name.what}: {name.label} is served in an encoding Herald cannot read")


class _Body:
    """A body as it arrives, inflated if encoded: never holds or inflates past ``limit``
    (a few KB of gzip can inflate to gigabytes)."""

    def __init__(self, limit: int, coding: str | None, name: _Name) -> None:
        self._limit = limit
        self._name = name
        self._wbits = _WBITS[coding] if coding else 0
        self._inflater = zlib.decompressobj(self._wbits) if coding else None
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        if self._inflater is None:
            self._keep(data)
            return
        try:
            self._inflate(data)
        except zlib.error:
            raise self._undecodable() from None

    def _inflate(self, data: bytes) -> None:
        while self._inflater is not None:
            # Never one byte more than the limit (one over is enough to refuse), and at most
            # a step at a time: zlib briefly holds twice what one call inflates.
            step = min(self._limit - self._size + 1, _INFLATE_STEP)
            out = self._inflater.decompress(data, step)
            self._keep(out)
            data = self._inflater.unconsumed_tail
            if self._inflater.eof and self._inflater.unused_data:
                # gzip allows several members one after the other.
                data = self._inflater.unused_data
                self._inflater = zlib.decompressobj(self._wbits)
            elif not data and len(out) < step:
                return  # a full step may leave output inside zlib: ask again until it is short

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise TooLarge(f"{self._name.what}: {self._name.label} is over {self._limit} bytes")
        self._chunks.append(data)

    def finish(self) -> bytes:
        if self._inflater is not None and not self._inflater.eof:
            raise self._undecodable()  # cut short: the file would be truncated
        return b"".join(self._chunks)

    def _undecodable(self) -> InvalidContent:
        return InvalidContent(
            f"{self._name.what}: {self._name.label} could not be decoded (bad compressed data)"
        )
