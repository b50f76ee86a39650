"""Project-wide pytest hooks: tests that need what a machine may not have."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tools import lfw

GPU_LEFT_OUT = pytest.StashKey[int]()


def cuda_devices() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return listed.stdout.count("GPU ") if listed.returncode == 0 else 0


def pytest_collection_modifyitems(config, items):
    skip_without_lfw(items)
    leave_out_gpu_tests(config, items)


def skip_without_lfw(items) -> None:
    # Tests marked `lfw` read real faces and weights from ../shared/data. Where
    # that folder is absent (outside this project's CI) they cannot run, and
    # they say so in the skip reason rather than passing vacuously.
    if lfw.available():
        return
    reason = f"needs real faces and weights under {lfw.SHARED_DATA} (absent here)"
    for item in items:
        if "lfw" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def leave_out_gpu_tests(config, items) -> None:
    # Tests marked `gpu` run where there is a CUDA device (`make test-gpu`).
    # Elsewhere they are deselected and counted in the summary; asked for
    # explicitly (`-m gpu`) they run, and fail without a device.
    if "gpu" in (config.getoption("markexpr") or "") or cuda_devices():
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
        config.hook.pytest_deselected(items=gpu)
        config.stash[GPU_LEFT_OUT] = len(gpu)


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(GPU_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} GPU tests left out: no CUDA device here (`make test-gpu` runs them on a GPU machine)")
