"""Project-wide pytest hooks (tests that need what a machine may not have) and
the real PostgreSQL server that tests of the system of record use."""

from __future__ import annotations

import pytest

from devkit import lfw

GPU_LEFT_OUT = pytest.StashKey[int]()


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
    # Tests marked `gpu` need a CUDA device and the GPU builds of their
    # libraries (faiss-gpu), which `make test-gpu` installs before running
    # them with `-m gpu`. Otherwise they are deselected and counted in the
    # summary; asked for (`-m gpu`) they run, and fail without a device.
    if "gpu" in (config.getoption("markexpr") or ""):
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
            f"{left_out} GPU tests left out (`make test-gpu` runs them on a machine with a CUDA device)"
        )


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server of the session's own, on a free loopback port."""
    from devkit import postgres
    from devkit.stackenv import free_port

    with postgres.running(tmp_path_factory.mktemp("postgres"), free_port()) as url:
        yield url


@pytest.fixture
def database_url(postgres_server):
    """A fresh, empty database on the session's server, dropped after the test."""
    import asyncio
    import uuid

    import asyncpg

    name = f"test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(postgres_server)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    yield postgres_server.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f"DROP DATABASE {name} WITH (FORCE)"))
