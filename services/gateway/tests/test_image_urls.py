"""Image URLs fetched as hostile input (gateway/image_urls.py), against a
real HTTPS server on loopback with a test CA (devkit/image_host.py): the
allow-list, the SSRF classics (loopback, the metadata address, a name that
resolves to 127.0.0.1, a redirect to a private address), a slow server, an
endless body, and what is fetched when all is well."""

from __future__ import annotations

import asyncio
import time

import pytest

from devkit.image_host import SMALL_PNG, ImageHost
from gateway.errors import ApiError
from gateway.image_urls import UrlFetcher, UrlPolicy, is_public, is_url


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with ImageHost.running(tmp_path_factory.mktemp("image-host")) as host:
        host.put("face.png", SMALL_PNG)
        yield host


def fetch(host: ImageHost, urls: list[str], hosts: str = "localhost", **policy) -> list[bytes]:
    async def run() -> list[bytes]:
        fetcher = UrlFetcher(
            UrlPolicy.parse(hosts, policy.get("timeout_s", 5.0), policy.get("max_bytes", 1 << 20)), host.ca_file
        )
        try:
            return await fetcher.fetch([(f"images[{i}]", url) for i, url in enumerate(urls)])
        finally:
            await fetcher.close()

    return asyncio.run(run())


def refusal(host: ImageHost, urls: list[str], hosts: str = "localhost", **policy) -> tuple[str, str]:
    with pytest.raises(ApiError) as caught:
        fetch(host, urls, hosts, **policy)
    assert caught.value.code.name == "INVALID_ARGUMENT"  # a 400 over REST
    return caught.value.reason, caught.value.message


def test_urls_are_told_from_base64():
    assert is_url("https://example.com/a.jpg") and is_url("HTTP://x") and is_url("file:///etc/passwd")
    assert not is_url("/9j/4AAQSkZJRgABAQ==") and not is_url("data:image/png;base64,iVBORw0KGgo=")


def test_public_means_globally_routable():
    assert is_public("8.8.8.8") and is_public("2001:4860:4860::8888")
    for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1"):  # fmt: skip
        assert not is_public(address), address


def test_a_listed_host_is_fetched(host):
    assert fetch(host, [host.url("/image/face.png")]) == [SMALL_PNG]


def test_off_unless_the_operator_lists_hosts(host):
    reason, message = refusal(host, [host.url("/image/face.png")], hosts="")
    assert reason == "image_url_not_allowed"
    assert message.startswith("images[0]: image URLs are not fetched here") and "FACESEARCH_IMAGE_URL_HOSTS" in message
    assert host.requests.count("/image/face.png") <= 1  # the one fetch above


def test_https_only(host):
    reason, message = refusal(host, [f"http://localhost:{host.port}/image/face.png"])
    assert (reason, message.split(",")[0]) == ("image_url_not_allowed", "images[0]: only https URLs are fetched")
    assert refusal(host, ["file:///etc/passwd"])[0] == "image_url_not_allowed"


def test_a_host_not_listed_is_refused_without_a_connection(host):
    before = len(host.requests)
    reason, message = refusal(host, [host.url("/image/face.png", host="127.0.0.1")], hosts="localhost,*.example.com")
    assert reason == "image_url_not_allowed" and "'127.0.0.1' is not a host images may be fetched from" in message
    assert len(host.requests) == before


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "[::1]"])
def test_private_addresses_need_the_host_listed_by_name(host, address):
    """A pattern (`*`) grants public addresses only: loopback, the cloud
    metadata address and private networks are refused before any connection."""
    started = time.perf_counter()
    reason, message = refusal(host, [f"https://{address}:{host.port}/image/face.png"], hosts="*")
    assert reason == "image_url_not_allowed" and "not a public address" in message, message
    assert time.perf_counter() - started < 1  # refused, not timed out


def test_a_name_that_resolves_to_loopback(host):
    url = host.url("/image/face.png")  # localhost -> 127.0.0.1
    reason, message = refusal(host, [url], hosts="*")
    assert reason == "image_url_not_allowed" and "'localhost' resolves to 127.0.0.1" in message
    assert refusal(host, [url], hosts="*.localhost")[0] == "image_url_not_allowed"  # a pattern is for subdomains
    assert fetch(host, [url], hosts="localhost") == [SMALL_PNG]  # listed by name: the operator's own host


def test_redirects_are_checked_at_every_hop(host):
    assert fetch(host, [host.redirect(host.url("/image/face.png"))]) == [SMALL_PNG]
    for target in ("https://10.0.0.1/latest", "https://169.254.169.254/latest/meta-data/", "http://localhost/x"):
        reason, message = refusal(host, [host.redirect(target)], hosts="localhost,*")
        assert reason == "image_url_not_allowed", (target, message)
    assert refusal(host, [host.url("/loop")])[1] == "images[0]: more than 3 redirects"


def test_a_slow_server_costs_the_time_budget_only(host):
    started = time.perf_counter()
    reason, message = refusal(host, [host.url("/slow?s=30")], timeout_s=1.0)
    assert (reason, message) == ("image_url_timeout", f"images[0]: {host.url('/slow?s=30')} was not fetched within 1 s")
    assert time.perf_counter() - started < 3


def test_fetches_run_together_within_one_budget(host):
    """Two 0.8 s fetches within a 1.5 s budget: they run concurrently."""
    assert fetch(host, [host.url("/slow?s=0.8"), host.url("/slow?s=0.8")], timeout_s=1.5) == [SMALL_PNG] * 2


def test_an_endless_body_stops_at_the_byte_budget(host):
    started = time.perf_counter()
    reason, message = refusal(host, [host.url("/endless")], max_bytes=1 << 20)
    assert reason == "image_url_too_large" and message.startswith("images[0]:"), message
    assert time.perf_counter() - started < 3


def test_the_byte_budget_covers_the_request(host):
    big = host.put("big.bin", b"\0" * (600 << 10))
    assert len(fetch(host, [big], max_bytes=1 << 20)[0]) == 600 << 10
    reason, message = refusal(host, [big, big], max_bytes=1 << 20)
    assert reason == "image_url_too_large" and "larger than a request's 1 MiB of images" in message


def test_what_fails_is_named(host):
    reason, message = refusal(host, [host.url("/image/face.png"), host.url("/status/404")])
    assert (reason, message) == ("image_url_unreachable", f"images[1]: {host.url('/status/404')} answered HTTP 404")
    assert refusal(host, ["https://no-such-host.invalid/a.jpg"], hosts="*.invalid")[0] == "image_url_unreachable"


def test_an_untrusted_certificate_is_refused(host):
    async def run() -> None:
        fetcher = UrlFetcher(UrlPolicy.parse("localhost", 5.0, 1 << 20))  # certifi's CAs, not the test CA
        try:
            await fetcher.fetch([("image", host.url("/image/face.png"))])
        finally:
            await fetcher.close()

    with pytest.raises(ApiError) as caught:
        asyncio.run(run())
    assert caught.value.reason == "image_url_unreachable" and "CERTIFICATE_VERIFY_FAILED" in caught.value.message
