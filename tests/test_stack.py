"""devkit/stack.py's programs and Envoy's view of the gateways, without
starting them."""

import pytest
import yaml

from devkit.stack import Stack
from devkit.stackenv import Gateways, Ports


def test_program_env_reaches_only_the_program_it_names(tmp_path):
    stack = Stack(tmp_path, program_env={"gateway-1": {"PYTHONPATH": "/elsewhere"}})
    env = {p.name: p.env for p in stack.programs()}
    assert env["gateway-1"]["PYTHONPATH"] == "/elsewhere"
    assert env["gateway-1"]["GATEWAY_ADDRESS"] == stack.gateways.addresses[1]  # its own variables kept
    assert all("PYTHONPATH" not in e for name, e in env.items() if name != "gateway-1")


def envoy_gateway_levels(stack: Stack) -> list[tuple[int, list[int]]]:
    """(priority, ports) of the gateway cluster in the stack's rendered Envoy config."""
    stack.env()  # renders it
    config = yaml.safe_load((stack.data_dir / "envoy" / "envoy.yaml").read_text())
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "gateway"]

    def ports(level: dict) -> list[int]:
        return [e["endpoint"]["address"]["socket_address"]["port_value"] for e in level["lb_endpoints"]]

    return [(level.get("priority", 0), ports(level)) for level in cluster["load_assignment"]["endpoints"]]


def test_the_last_gateway_is_envoys_standby(tmp_path):
    stack = Stack(tmp_path, gateway_count=3)
    ports = list(stack.gateways.ports)
    assert envoy_gateway_levels(stack) == [(0, ports[:2]), (1, ports[2:])]


def test_without_a_standby_envoy_balances_over_every_gateway(tmp_path):
    stack = Stack(tmp_path, gateway_standby=False)
    assert envoy_gateway_levels(stack) == [(0, list(stack.gateways.ports))]
    alone = Stack(tmp_path / "alone", gateway_count=1)
    assert envoy_gateway_levels(alone) == [(0, list(alone.gateways.ports))]


@pytest.mark.parametrize(("value", "standby"), [("1", True), ("0", False)])
def test_gateway_standby_is_read_from_the_environment(value, standby):
    gateways = Gateways.from_env({"GATEWAY_COUNT": "2", "GATEWAY_STANDBY": value}, Ports.from_env({}))
    assert gateways.standby is standby
    with pytest.raises(ValueError, match="GATEWAY_STANDBY"):
        Gateways.from_env({"GATEWAY_STANDBY": "yes"}, Ports.from_env({}))
