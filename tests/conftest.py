"""Test-wide settings: no standby training workers in the app (each AppTest opens its own store,
so each would start its own standbys importing torch); the end-to-end server opts back in."""

import os

os.environ.setdefault("MTL_LAB_WARM_WORKERS", "0")
os.environ.pop("MTL_LAB_RAY_ADDRESS", None)  # runs train locally unless a test asks for Ray
# Ray (when a test uses it) stays on 127.0.0.1; read when Ray is first imported, so set here.
os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_cluster():
    """The address of a local Ray head (127.0.0.1, two CPUs) shared by the session's Ray
    tests, this process connected to it as the driver; stopped at the end."""
    pytest.importorskip("ray")
    from tests.helpers.ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(cpus=2)
    try:
        cluster.connect()
        yield cluster.address
    finally:
        cluster.stop()
