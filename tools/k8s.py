"""Renders Envoy's config for Kubernetes (deploy/envoy/envoy.k8s.yaml) from
the template the local stack uses:

    python -m tools.k8s

deploy/envoy/kustomization.yaml puts it and the Lua in the envoy-config
ConfigMap; tests/test_k8s.py fails when the rendered file is stale.
"""

from __future__ import annotations

from tools.stackenv import ROOT, envoy_config

TARGET = ROOT / "deploy" / "envoy" / "envoy.k8s.yaml"
# Where the manifests put things: the ConfigMap at /etc/envoy, the JWKS
# secret at /etc/facesearch/jwt, the descriptor set in the Envoy image.
IN_CLUSTER = dict(
    listen_address="0.0.0.0", listen_port=8080, admin_port=9901,
    gateway_host="gateway", gateway_port=50051,
    descriptor="/etc/facesearch/facesearch.pb",
    answers_lua="/etc/envoy/answers.lua",
    jwks="/etc/facesearch/jwt/jwks.json",
)


def rendered() -> str:
    return envoy_config(**IN_CLUSTER)


def main() -> None:
    TARGET.write_text(rendered())
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
