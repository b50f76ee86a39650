import time

import grpc
import pytest

from facesearch_common import tokens
from gateway.auth import Authenticator
from gateway.errors import ApiError


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tokens.KeyFiles:
    files = tokens.KeyFiles.in_dir(tmp_path_factory.mktemp("keys"))
    tokens.create_keys(files)
    return files


@pytest.fixture(scope="module")
def auth(keys) -> Authenticator:
    return Authenticator.from_jwks_file(keys.jwks, tokens.ISSUER, tokens.AUDIENCE)


def refusal(auth: Authenticator, metadata) -> ApiError:
    with pytest.raises(ApiError) as refused:
        auth.tenant(metadata)
    return refused.value


def bearer(token: str):
    return (("authorization", f"Bearer {token}"),)


def test_a_valid_token_names_its_tenant(auth, keys):
    assert auth.tenant(bearer(tokens.create_token(keys, "acme", 60))) == "acme"


def test_the_private_key_is_private_and_the_jwks_public_only(keys):
    assert keys.private_key.stat().st_mode & 0o077 == 0
    assert '"d"' not in keys.jwks.read_text()


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ((), "missing_token"),
        ((("authorization", ""),), "missing_token"),
        ((("authorization", "Basic dXNlcjpwdw=="),), "invalid_token"),
        ((("authorization", "Bearer "),), "invalid_token"),
        (bearer("not.a.jwt"), "invalid_token"),
    ],
)
def test_missing_or_malformed_tokens_are_unauthenticated(auth, metadata, reason):
    error = refusal(auth, metadata)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)


def test_an_expired_token_is_forbidden(auth, keys):
    token = tokens.create_token(keys, "acme", 60, now=time.time() - 3600)
    error = refusal(auth, bearer(token))
    assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "token_expired")


def test_another_keys_signature_wrong_issuer_or_audience_are_refused(auth, keys, tmp_path):
    stranger = tokens.KeyFiles.in_dir(tmp_path)
    tokens.create_keys(stranger)
    forged = tokens.create_token(stranger, "acme", 60)
    # Same kid as ours, other key: the signature itself must fail.
    ours = tokens.create_token(keys, "acme", 60)
    import jwt

    resigned = jwt.encode(
        jwt.decode(ours, options={"verify_signature": False}),
        stranger.private_key.read_bytes(),
        algorithm="RS256",
        headers={"kid": jwt.get_unverified_header(ours)["kid"]},
    )
    cases = {
        "unknown key": forged,
        "bad signature": resigned,
        "issuer": tokens.create_token(keys, "acme", 60, issuer="someone-else"),
        "audience": tokens.create_token(keys, "acme", 60, audience="another-api"),
    }
    for what, token in cases.items():
        error = refusal(auth, bearer(token))
        assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_token"), what


def test_unsigned_tokens_are_refused(auth):
    import jwt

    unsigned = jwt.encode(
        {"sub": "acme", "iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "exp": int(time.time()) + 60},
        key=None,
        algorithm="none",
    )
    assert refusal(auth, bearer(unsigned)).reason == "invalid_token"


def test_tenants_must_be_plain_names(keys):
    with pytest.raises(ValueError):
        tokens.create_token(keys, "../etc", 60)


def test_admin_calls_need_an_admin_token(keys, auth):
    plain = bearer(tokens.create_token(keys, "acme", 60))
    admin = bearer(tokens.create_token(keys, "ops", 60, admin=True))
    assert auth.admin(admin) == "ops" and auth.tenant(admin) == "ops"
    with pytest.raises(ApiError) as refused:
        auth.admin(plain)
    assert (refused.value.code, refused.value.reason) == (grpc.StatusCode.PERMISSION_DENIED, "admin_only")


def test_a_remembered_token_still_expires_and_a_tampered_one_is_checked_afresh(keys, monkeypatch):
    verifier = tokens.Verifier(keys.jwks.read_text())
    token = tokens.create_token(keys, "acme", 60)
    assert verifier.principal(token) == ("acme", False)
    assert verifier.principal(token) == ("acme", False)  # remembered
    header, payload, signature = token.split(".")
    with pytest.raises(tokens.TokenInvalid):
        verifier.principal(f"{header}.{payload}.{signature[:-4]}AAAA")
    later = time.time() + 60 + verifier.leeway_s + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.TokenExpired):
        verifier.principal(token)
