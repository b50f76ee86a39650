"""devkit/stack.py's programs, without starting them."""

from devkit.stack import Stack


def test_program_env_reaches_only_the_program_it_names(tmp_path):
    stack = Stack(tmp_path, program_env={"gateway-1": {"PYTHONPATH": "/elsewhere"}})
    env = {p.name: p.env for p in stack.programs()}
    assert env["gateway-1"]["PYTHONPATH"] == "/elsewhere"
    assert env["gateway-1"]["GATEWAY_ADDRESS"] == stack.gateways.addresses[1]  # its own variables kept
    assert all("PYTHONPATH" not in e for name, e in env.items() if name != "gateway-1")
