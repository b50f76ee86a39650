"""JWTs for FaceSearch: the signing key pair, the JWKS that Envoy and the
gateway verify with, minting and verifying tokens. The token's subject is
the tenant.

Keys are RS256 (RSA 2048): what Envoy's jwt_authn, PyJWT and every JWT
library agree on. The private key never leaves its file (mode 0600) and is
never logged; the JWKS holds the public key only.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
ISSUER = "facesearch"
AUDIENCE = "facesearch-api"
# An operator's token (`facesearch token create --admin`) carries this claim, true.
ADMIN_CLAIM = "facesearch_admin"
PRIVATE_KEY_FILE = "jwt-private.pem"
JWKS_FILE = "jwks.json"
# A tenant is a subject we can put in keys, logs and paths without escaping.
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")


@dataclass(frozen=True)
class KeyFiles:
    private_key: Path
    jwks: Path

    @classmethod
    def in_dir(cls, directory: Path) -> KeyFiles:
        return cls(directory / PRIVATE_KEY_FILE, directory / JWKS_FILE)

    def exist(self) -> bool:
        return self.private_key.exists() and self.jwks.exists()


def create_keys(files: KeyFiles) -> None:
    """A new key pair: the private key (0600) and the JWKS of its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files.private_key.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(files.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=uuid.uuid4().hex[:16], alg=ALGORITHM, use="sig")
    files.jwks.write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")


def ensure_keys(files: KeyFiles) -> bool:
    """Creates the key pair unless it exists; True when it was created."""
    if files.exist():
        return False
    create_keys(files)
    return True


def create_token(
    files: KeyFiles,
    tenant: str,
    ttl_s: float,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    now: float | None = None,
    admin: bool = False,
) -> str:
    """A signed token for `tenant`; with `admin`, one that may also call the
    operator's RPCs (the model's calibration), which no tenant's data reaches."""
    if not TENANT_PATTERN.match(tenant):
        raise ValueError(f"tenant {tenant!r}: 1 to 128 of letters, digits and . _ @ : -, starting alphanumeric")
    now = time.time() if now is None else now
    kid = json.loads(files.jwks.read_text())["keys"][0]["kid"]
    claims: dict[str, object] = {
        "sub": tenant,
        "iss": issuer,
        "aud": audience,
        "iat": int(now),
        "exp": int(now + ttl_s),
    }
    if admin:
        claims[ADMIN_CLAIM] = True
    return jwt.encode(claims, files.private_key.read_bytes(), algorithm=ALGORITHM, headers={"kid": kid})


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


# Tokens a Verifier remembers as verified. A client sends the same token
# with every call until it expires, and checking its RS256 signature cost
# 0.2-0.3 ms of the gateway's CPU a request (bench/RESULTS.md, "Load").
VERIFIED_KEPT = 10_000


class Verifier:
    """Checks signature (against the JWKS), expiry, issuer and audience.

    A token that passed is remembered with its expiry, so the same token
    again costs a dict lookup and the expiry check; the keys are fixed for
    the Verifier's life, so nothing else about it can change."""

    def __init__(self, jwks_text: str, issuer: str = ISSUER, audience: str = AUDIENCE, leeway_s: float = 5):
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_json(jwks_text).keys}
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s
        self._verified: dict[str, tuple[str, bool, float]] = {}  # token -> (tenant, admin, exp)

    def tenant(self, token: str) -> str:
        return self.principal(token)[0]

    def principal(self, token: str) -> tuple[str, bool]:
        """(tenant, whether the token is an admin's)."""
        known = self._verified.get(token)
        if known is not None:
            tenant, admin, expires = known
            if time.time() > expires + self.leeway_s:
                del self._verified[token]
                raise TokenExpired("the token has expired")
            return tenant, admin
        tenant, admin, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (tenant, admin, expires)
        return tenant, admin

    def _verify(self, token: str) -> tuple[str, bool, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if kid else next(iter(self._keys.values()), None)
            if key is None:
                raise TokenInvalid("the token is signed with an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["sub", "exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise TokenInvalid("the token's issuer is not accepted") from None
        except jwt.InvalidAudienceError:
            raise TokenInvalid("the token's audience is not accepted") from None
        except jwt.InvalidSignatureError:
            raise TokenInvalid("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"the token is not valid: {exc}") from None
        if not isinstance(claims["sub"], str) or not TENANT_PATTERN.match(claims["sub"]):
            raise TokenInvalid("the token's subject is not a valid tenant name")
        return claims["sub"], claims.get(ADMIN_CLAIM) is True, float(claims["exp"])
