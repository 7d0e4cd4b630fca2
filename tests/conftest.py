"""Test-wide settings: no standby training workers in the app (each AppTest opens its own store,
so each would start its own standbys importing torch); the end-to-end server opts back in."""

import os

os.environ.setdefault("MTL_LAB_WARM_WORKERS", "0")
# the app's idle runner holds no lessons ahead in tests (its runs would join every run list);
# the tests about them set it themselves
os.environ["MTL_LAB_LESSON_AHEAD"] = "off"
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


# ----------------------------------------------------------------------------- shared fixtures


@pytest.fixture
def store(tmp_path):
    """A fresh run store (``mtl_core.store.Store``) at ``tmp_path / "s.sqlite"``, the store
    most tests start from (the app tests open the app on ``store.path``)."""
    from mtl_core.store import Store

    return Store(tmp_path / "s.sqlite")


@pytest.fixture
def seeded_run(store):
    """Write a finished planted-block run into the ``store`` fixture and return its id:
    ``seeded_run(name="planted", steps=40)`` takes ``tests.helpers.app_fixtures.seed_run``'s
    keywords (tasks in two clusters that help each other and hurt the other cluster)."""
    from tests.helpers.app_fixtures import seed_run

    def make(**kw) -> int:
        return seed_run(store, **kw)

    return make


@pytest.fixture
def fake_runner(tmp_path):
    """Make ``Runner`` s that train ``tests.helpers.runner_fakes.fake_train`` in real worker
    processes (polling every 0.05 s) on ``tmp_path / "store.sqlite"`` unless ``store=`` is
    given; every one made is shut down at the end of the test."""
    from mtl_core.runner import Runner
    from tests.helpers.runner_fakes import fake_train  # spawned workers import it by name

    made = []

    def make(**kw):
        kw.setdefault("train_fn", fake_train)
        kw.setdefault("poll_s", 0.05)
        r = Runner(kw.pop("store", tmp_path / "store.sqlite"), **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.shutdown(timeout=5)
