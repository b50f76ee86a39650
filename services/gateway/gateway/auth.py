"""Who is calling: the bearer token's subject is the tenant.

Envoy checks every token at the edge (jwt_authn); the gateway checks it again
so that gRPC calls reaching it directly are held to the same rule. Answers
match Envoy's: no or malformed token UNAUTHENTICATED (HTTP 401), an expired
one PERMISSION_DENIED `token_expired` (HTTP 403), as Verifik answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

import grpc

from facesearch_common.tokens import TokenExpired, TokenInvalid, Verifier

from .errors import ApiError


def unauthenticated(reason: str, message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, reason, message)


class Authenticator:
    def __init__(self, verifier: Verifier):
        self.verifier = verifier

    @classmethod
    def from_jwks_file(cls, path: Path, issuer: str, audience: str) -> Authenticator:
        return cls(Verifier(path.read_text(), issuer, audience))

    def tenant(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        return self.principal(metadata)[0]

    def admin(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """The tenant of an admin's token; PERMISSION_DENIED for any other."""
        tenant, admin = self.principal(metadata)
        if not admin:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                "admin_only",
                "this call needs an admin token (`facesearch token create --admin`)",
            )
        return tenant

    def principal(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str, bool]:
        """(tenant, whether the token is an admin's)."""
        # gRPC gives text values as str: only keys ending in "-bin" carry bytes.
        header = next((cast(str, v) for k, v in metadata or () if k == "authorization"), None)
        if not header:
            raise unauthenticated("missing_token", "Authentication required")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("invalid_token", "the Authorization header must be `Bearer <token>`")
        try:
            return self.verifier.principal(token.strip())
        except TokenExpired as exc:
            raise ApiError(grpc.StatusCode.PERMISSION_DENIED, "token_expired", str(exc)) from None
        except TokenInvalid as exc:
            raise unauthenticated("invalid_token", str(exc)) from None
