"""The one Envoy config, `envoy.yaml.tmpl` with its placeholders filled: for
the local stack (devkit.stackenv fills in loopback ports) and for Kubernetes,
whose copy this module writes:

    python -m deploy.envoy.render

deploy/envoy/kustomization.yaml puts `envoy.k8s.yaml` and the Lua in the
envoy-config ConfigMap; tests/test_k8s.py fails when the file is stale.
"""

from __future__ import annotations

import string
from pathlib import Path

from facesearch_common import tokens

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "envoy.yaml.tmpl"
ANSWERS_LUA = HERE / "answers.lua"
TARGET = HERE / "envoy.k8s.yaml"
CONSOLE = HERE.parent.parent / "services" / "console"
# Where the manifests put things: the ConfigMap at /etc/envoy, the JWKS
# secret at /etc/facesearch/jwt, the descriptor set and the console in the
# Envoy image.
IN_CLUSTER: dict[str, object] = {
    "listen_address": "0.0.0.0",
    "listen_port": 8080,
    "admin_port": 9901,
    "metrics_port": 9902,
    "gateway_endpoints": None,  # filled below: the gateway Service
    "descriptor": "/etc/facesearch/facesearch.pb",
    "answers_lua": "/etc/envoy/answers.lua",
    "console_dir": "/etc/facesearch/console",
    "jwks": "/etc/facesearch/jwt/jwks.json",
}


def endpoints(active: list[tuple[str, int]], standby: list[tuple[str, int]] | None = None) -> str:
    """The gateway cluster's endpoints as the template's YAML flow list:
    `active` at priority 0, and `standby` at priority 1, which Envoy sends
    calls to only while the active gateways are down (or to retry one that
    failed on them)."""

    def hosts(addresses: list[tuple[str, int]]) -> str:
        return ", ".join(
            f"{{ endpoint: {{ address: {{ socket_address: {{ address: {host}, port_value: {port} }} }} }} }}"
            for host, port in addresses
        )

    levels = [active, standby] if standby else [active]
    return "[" + ", ".join(f"{{ priority: {i}, lb_endpoints: [{hosts(a)}] }}" for i, a in enumerate(levels)) + "]"


IN_CLUSTER["gateway_endpoints"] = endpoints([("gateway", 50051)])


def envoy_config(**places: object) -> str:
    """The template with `places` (addresses, ports, file paths) filled in."""
    return string.Template(TEMPLATE.read_text()).substitute(
        jwt_issuer=tokens.ISSUER, jwt_audience=tokens.AUDIENCE, **places
    )


def rendered() -> str:
    return envoy_config(**IN_CLUSTER)


def main() -> None:
    TARGET.write_text(rendered())
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
