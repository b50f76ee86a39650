"""Renders Envoy's config for Kubernetes into deploy/k8s/base/envoy/ from the
same template and Lua files the local stack uses:

    python -m tools.k8s

tests/test_k8s.py fails when the committed copies are stale.
"""

from __future__ import annotations

from pathlib import Path

from tools.stackenv import AUTH_LUA, ERROR_BODY_LUA, ROOT, envoy_config

TARGET = ROOT / "deploy" / "k8s" / "base" / "envoy"
# Where the manifests put things: the ConfigMap at /etc/envoy, the JWKS
# secret at /etc/facesearch/jwt, the descriptor set in the Envoy image.
IN_CLUSTER = dict(
    listen_address="0.0.0.0", listen_port=8080, admin_port=9901,
    gateway_host="gateway", gateway_port=50051,
    descriptor="/etc/facesearch/facesearch.pb",
    error_body_lua="/etc/envoy/error_body.lua", auth_lua="/etc/envoy/auth.lua",
    jwks="/etc/facesearch/jwt/jwks.json",
)


def rendered() -> dict[str, str]:
    return {
        "envoy.yaml": envoy_config(**IN_CLUSTER),
        "error_body.lua": ERROR_BODY_LUA.read_text(),
        "auth.lua": AUTH_LUA.read_text(),
    }


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (TARGET / name).write_text(text)
        print(f"wrote {(TARGET / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
