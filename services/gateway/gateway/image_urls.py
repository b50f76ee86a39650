"""Images given as HTTPS URLs, fetched as hostile input.

Off unless the operator lists the hosts (FACESEARCH_IMAGE_URL_HOSTS: names,
IP literals, `*.domain` patterns, or `*` for any public host). Each hop of a
fetch is checked again: HTTPS only, a listed host, and every address the name
resolves to public (not loopback, private, link-local, shared, reserved,
multicast) unless the list names that host exactly. The connection goes to
the address that was checked, with the host name for TLS (SNI and the
certificate check), so a name that resolves differently a moment later
cannot move the fetch elsewhere. Redirects are followed by hand, at most
MAX_REDIRECTS, each target checked like the first. One time budget covers a
request's fetches, which run concurrently, and one byte budget their bodies
(the API's own body limit), read undecoded so that nothing inflates.

Every refusal is a 400 whose reason says why (`image_url_not_allowed`,
`image_url_unreachable`, `image_url_timeout`, `image_url_too_large`) and
whose message names the field; nothing is stored, since requests fetch
before they write.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import certifi
import httpx

from .errors import ApiError, invalid

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK = 64 << 10
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """A URL rather than base64 (whose alphabet has no colon) or a data: URI."""
    return _SCHEME.match(text) is not None


def not_allowed(field: str, why: str) -> ApiError:
    return invalid("image_url_not_allowed", f"{field}: {why}")


def unreachable(field: str, url: str, why: str) -> ApiError:
    return invalid("image_url_unreachable", f"{field}: {url[:200]} {why}")


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class UrlPolicy:
    hosts: tuple[str, ...] = ()  # lower case; empty: no URL is fetched
    timeout_s: float = 5.0  # for all of one request's fetches together
    max_bytes: int = 16 << 20  # all of one request's bodies together

    @classmethod
    def parse(cls, hosts: str, timeout_s: float, max_bytes: int) -> UrlPolicy:
        return cls(tuple(h.strip().lower() for h in hosts.split(",") if h.strip()), timeout_s, max_bytes)

    def grant(self, host: str) -> str | None:
        """ "named" (listed exactly: any address), "pattern" (by `*.domain`
        or `*`: public addresses only) or None (not listed)."""
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return "named"
        for entry in self.hosts:
            if entry == "*" or (entry.startswith("*.") and host.endswith(entry[1:])):
                return "pattern"
        return None


class _Budget:
    """Bytes left for one request's bodies."""

    def __init__(self, total: int):
        self.total = self.left = total


class UrlFetcher:
    def __init__(self, policy: UrlPolicy, ca_file: Path | None = None):
        self.policy = policy
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else certifi.where())
        # trust_env off: no proxy from the environment may stand between the
        # checked address and the connection.
        self.client = httpx.AsyncClient(
            verify=context, follow_redirects=False, trust_env=False, timeout=policy.timeout_s
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def fetch(self, urls: Sequence[tuple[str, str]]) -> list[bytes]:
        """(field, url) pairs -> bodies, fetched concurrently within one time
        and one byte budget; the first refusal (in field order) is raised."""
        if not self.policy.hosts:
            raise not_allowed(
                urls[0][0], "image URLs are not fetched here (the operator has not set FACESEARCH_IMAGE_URL_HOSTS)"
            )
        budget = _Budget(self.policy.max_bytes)
        tasks = [asyncio.create_task(self._fetch(field, url, budget)) for field, url in urls]
        try:
            await asyncio.wait(tasks, timeout=self.policy.timeout_s, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                failed = task.exception() if task.done() else None
                if failed is not None:
                    raise failed
            for (field, url), task in zip(urls, tasks, strict=True):
                if not task.done():
                    raise invalid(
                        "image_url_timeout",
                        f"{field}: {url[:200]} was not fetched within {self.policy.timeout_s:g} s",
                    )
            return [task.result() for task in tasks]
        finally:
            for task in tasks:
                task.cancel()

    async def _fetch(self, field: str, url: str, budget: _Budget) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            target = self._checked_url(field, url)
            address = await self._checked_address(field, url, target)
            try:
                body = await self._get(field, url, target, address, budget)
            except httpx.HTTPError as exc:
                raise unreachable(field, url, f"could not be fetched ({type(exc).__name__}: {exc})") from None
            if isinstance(body, bytes):
                return body
            url = body  # a redirect: its target, checked again
        raise not_allowed(field, f"more than {MAX_REDIRECTS} redirects")

    def _checked_url(self, field: str, url: str) -> httpx.URL:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise not_allowed(field, f"{url[:200]!r} is not a valid URL ({exc})") from None
        if target.scheme != "https":
            raise not_allowed(field, f"only https URLs are fetched, got {url[:200]!r}")
        if not target.host or self.policy.grant(target.host) is None:
            raise not_allowed(field, f"{target.host[:100]!r} is not a host images may be fetched from ({url[:200]})")
        return target

    async def _checked_address(self, field: str, url: str, target: httpx.URL) -> str:
        """The address to connect to: public, unless the host is listed by name."""
        port = target.port or 443
        try:
            found = await asyncio.get_running_loop().getaddrinfo(target.host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise unreachable(field, url, f"could not be resolved ({exc})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if self.policy.grant(target.host) != "named":
            private = [a for a in addresses if not is_public(a)]
            if private:
                raise not_allowed(
                    field,
                    f"{target.host!r} resolves to {private[0]}, not a public address ({url[:200]}); "
                    "only hosts listed by name may be private",
                )
        return addresses[0]

    async def _get(self, field: str, url: str, target: httpx.URL, address: str, budget: _Budget) -> bytes | str:
        """The body, or the URL a redirect points to."""
        pinned = target.copy_with(host=address)
        headers = {"Host": target.netloc.decode("ascii"), "Accept-Encoding": "identity", "Accept": "image/*"}
        async with self.client.stream(
            "GET", pinned, headers=headers, extensions={"sni_hostname": target.host}
        ) as response:
            if response.is_redirect and "location" in response.headers:
                return str(target.join(response.headers["location"]))
            if response.status_code != 200:
                raise unreachable(field, url, f"answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > budget.left:
                raise self._too_large(field, url, budget)
            chunks = []
            async for chunk in response.aiter_raw(CHUNK):
                budget.left -= len(chunk)
                if budget.left < 0:
                    raise self._too_large(field, url, budget)
                chunks.append(chunk)
        log.info("image fetched", extra={"field": field, "host": target.host, "bytes": sum(map(len, chunks))})
        return b"".join(chunks)

    @staticmethod
    def _too_large(field: str, url: str, budget: _Budget) -> ApiError:
        return invalid(
            "image_url_too_large", f"{field}: {url[:200]} is larger than a request's {budget.total >> 20} MiB of images"
        )
