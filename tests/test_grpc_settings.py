"""gRPC core takes the services' settings (facesearch_common.grpc_settings):
set before grpc starts, and known to the grpcio this project pins (gRPC
names an unknown experiment on stderr and goes on without it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from facesearch_common import grpc_settings

# A fresh interpreter: importing the package must set the variable before
# grpc starts, and a server started after it must not name it unknown.
PROBE = """
import asyncio, os
import {package}
import grpc

async def serve():
    server = grpc.aio.server()
    server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await server.stop(0)

asyncio.run(serve())
print(os.environ["GRPC_EXPERIMENTS"])
"""


@pytest.mark.parametrize("package", ["gateway", "indexer"])
def test_each_service_starts_grpc_with_the_settings(package: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(package=package)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == grpc_settings.EXPERIMENTS
    assert "Unknown experiment" not in probe.stderr


def test_a_setting_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPC_EXPERIMENTS", "")
    grpc_settings.apply()
    assert os.environ["GRPC_EXPERIMENTS"] == ""
