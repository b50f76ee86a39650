"""Bearer JWTs at Envoy (jwt_authn) and again at the gateway for gRPC calls
that reach it directly; the token's subject is the tenant, and tenants never
see each other's collections, persons or search results."""

from __future__ import annotations

import time

import grpc
import httpx
import jwt
import pytest

from devkit import lfw
from devkit.client import API, Rest, grpc_stub
from devkit.stackenv import key_files
from facesearch.v1 import facesearch_pb2 as pb
from facesearch_common import tokens

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


@pytest.fixture(scope="module")
def bad_tokens(stack, tmp_path_factory) -> dict[str, str]:
    keys = key_files(stack.data_dir)
    stranger = tokens.KeyFiles.in_dir(tmp_path_factory.mktemp("stranger"))
    tokens.create_keys(stranger)
    ours = stack.token("acme")
    resigned = jwt.encode(
        jwt.decode(ours, options={"verify_signature": False}),
        stranger.private_key.read_bytes(),
        algorithm="RS256",
        headers={"kid": jwt.get_unverified_header(ours)["kid"]},
    )
    return {
        "bad signature": resigned,
        "unknown key": tokens.create_token(stranger, "acme", 600),
        "wrong issuer": tokens.create_token(keys, "acme", 600, issuer="not-facesearch"),
        "wrong audience": tokens.create_token(keys, "acme", 600, audience="not-facesearch-api"),
        "garbage": "abc.def.ghi",
    }


def expired(stack) -> str:
    return tokens.create_token(key_files(stack.data_dir), "acme", 60, now=time.time() - 3600)


def list_collections(stack, headers: dict) -> httpx.Response:
    return httpx.get(f"{stack.rest}{API}/collections", headers=headers, timeout=30)


def test_rest_without_a_token_is_401_authentication_required(stack):
    response = list_collections(stack, {})
    assert response.status_code == 401
    assert response.json() == {"error": "missing_token", "message": "Authentication required", "code": "UNAUTHORIZED"}


def test_rest_with_an_expired_token_is_403_token_expired(stack):
    response = list_collections(stack, {"Authorization": f"Bearer {expired(stack)}"})
    assert response.status_code == 403
    assert (response.json()["error"], response.json()["code"]) == ("token_expired", "FORBIDDEN")


def test_rest_with_any_other_bad_token_is_401(stack, bad_tokens):
    for what, token in bad_tokens.items():
        response = list_collections(stack, {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, what
        assert (response.json()["error"], response.json()["code"]) == ("invalid_token", "UNAUTHORIZED"), what
    assert list_collections(stack, {"Authorization": "Basic YTpi"}).status_code == 401


def test_a_body_is_not_read_before_the_token_is_checked(stack):
    response = httpx.post(
        f"{stack.rest}{API}/search/crops",
        content=b"x" * (20 << 20),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 401  # not 413: refused before buffering


def test_healthz_needs_no_token(stack):
    assert httpx.get(f"{stack.rest}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("door", ["envoy", "gateway"])
def test_grpc_is_checked_at_envoy_and_at_the_gateway(stack, bad_tokens, door):
    target = stack.grpc_target if door == "envoy" else f"127.0.0.1:{stack.ports.gateway}"

    def code(token: str | None) -> tuple[grpc.StatusCode, str]:
        try:
            grpc_stub(target, token).ListCollections(pb.ListCollectionsRequest(), timeout=30)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as exc:
            return exc.code(), dict(exc.trailing_metadata() or ()).get("facesearch-error", "")

    assert code(None) == (grpc.StatusCode.UNAUTHENTICATED, "missing_token")
    assert code(expired(stack)) == (grpc.StatusCode.PERMISSION_DENIED, "token_expired")
    for what, token in bad_tokens.items():
        assert code(token) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_token"), what
    assert code(stack.token("acme"))[0] == grpc.StatusCode.OK


def test_tenants_see_only_their_own(stack):
    alice, bob = Rest(stack.rest, stack.token("tenant-alice")), Rest(stack.rest, stack.token("tenant-bob"))
    name = lfw.identities()[7]
    collection = alice.collection("alice-only")
    person = alice.enroll(name, lfw.photos(name)[0], [collection])
    # Bob may use the same collection name: names are unique per tenant.
    bobs = bob.collection("alice-only")

    unknown = "00" + "ab" * 11
    for path in (f"/collections/{collection}", f"/persons/{person['id']}"):
        theirs, missing = bob.http.get(path), bob.http.get(path.rsplit("/", 1)[0] + f"/{unknown}")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"] == missing.json()["error"]
        assert bob.http.delete(path).status_code == 404
    assert bob.http.put(f"/persons/{person['id']}", json={"name": "stolen"}).status_code == 404
    assert (
        bob.post(
            "/persons",
            {"name": "x", "images": [lfw.b64(lfw.portrait(lfw.photos(name)[0]))], "collections": [collection]},
        ).json()["error"]
        == "unknown_collection"
    )

    probe = lfw.b64(lfw.crop(lfw.photos(name)[1]))
    assert [p["id"] for p in alice.search([probe]).json()["data"]][:1] == [person["id"]]
    assert bob.search([probe]).json()["data"] == []
    assert bob.search([probe], collection_id=collection).status_code == 404
    assert bob.search([probe], collection_id=bobs).json()["data"] == []
    assert person["id"] not in {p["id"] for p in bob.ok("/persons", method="GET", limit=100)["data"]}
    assert [c["id"] for c in bob.ok("/collections", method="GET")["data"]] == [bobs]
    # And what Bob did touched nothing of Alice's.
    assert alice.ok(f"/persons/{person['id']}", method="GET")["data"]["name"] == name


def test_keys_and_tokens_never_reach_the_logs(stack):
    """Run after the cases above: every service's log so far holds neither
    the private key nor a token that was sent."""
    keys = key_files(stack.data_dir)
    secret = "".join(keys.private_key.read_text().splitlines()[1:-1])[:64]
    token = stack.token("acme")
    grpc_stub(stack.grpc_target, token).ListCollections(pb.ListCollectionsRequest(), timeout=30)
    for log in stack.data_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert secret not in text, log.name
        assert token.split(".")[2] not in text, log.name
