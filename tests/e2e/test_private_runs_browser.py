"""Private runs stay private in a real browser (issue 23.1's done-when): in
``login = "password"``, ``visibility = "private"``, student B signed in opens links that name
student A's private run in every query parameter the pages read (``lesson``, ``run``,
``runs``) on every page, and sees nothing of it (no name, no task, no heatmap); no visit, by
B or by the teacher, queues a run. Skipped, with the reason, when Chromium is absent."""

from __future__ import annotations

import pytest

from tests.helpers.browser import E2E_MARKS, sign_in

pytestmark = E2E_MARKS
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need the playwright package"
)

#: A's private run: a name and task names that appear nowhere else in the app.
SECRET_NAME = "amy-secret-run"
SECRET_TASKS = [f"amysecret{i}" for i in range(6)]


def _seed(store, name: str, tasks: list[str], owner: str) -> int:
    """A finished run with planted-block affinity and the given task names, owned by ``owner``."""
    from tests.helpers.app_fixtures import seed_run

    return seed_run(store, name=name, tasks=tasks, steps=30, owner=owner)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from mtl_core.accounts.passwords import hash_password
    from mtl_core.store import Store
    from tests.helpers.app_server import fake_train_env, running_app

    folder = tmp_path_factory.mktemp("private")
    store = Store(folder / "store.sqlite")
    secret = _seed(store, SECRET_NAME, SECRET_TASKS, "user:amy")
    for k in range(2):  # B's own runs, so every page has something of B's to draw
        _seed(store, f"bob-run-{k}", [f"bobtask{i}" for i in range(4)], "user:bob")
    h = hash_password("pear", log2_n=8)
    settings = folder / "settings.toml"
    settings.write_text(
        'login = "password"\nvisibility = "private"\nadmins = ["teach"]\n'
        f'[users]\namy = "{h}"\nbob = "{h}"\nteach = "{h}"\n'
    )
    env = fake_train_env(store.path, settings)
    try:
        with running_app(env, folder / "server.log") as url:
            yield {"url": url, "store": store, "secret": secret}
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _sign_in(page, url: str, name: str) -> None:
    page.goto(url)
    sign_in(page, name)


def _settled_html(page, shown: str | None = None) -> str:
    """The page's whole HTML (chart SVG text and the grids' accessible tables included) once
    ``shown`` (a positive sign the page drew what it reads from the link) or one of the
    private run's names is in it and the script run has finished."""
    page.locator("h1").first.wait_for(timeout=60000)
    if shown is not None:
        try:
            page.wait_for_function(
                "s => s.some(x => document.documentElement.outerHTML.includes(x))",
                arg=[shown, SECRET_NAME, *SECRET_TASKS],
                polling=200,  # not requestAnimationFrame: a headless tab may not paint
                timeout=60000,
            )
        except playwright_api.TimeoutError:
            text = page.locator("[data-testid='stMain']").inner_text()[:600]
            pytest.fail(f"{page.url}: {shown!r} never shown; the page says: {text!r}")
    page.wait_for_timeout(1500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60000)
    return page.content()


def _runs(store) -> list[tuple[int, str | None]]:
    return sorted((r.id, r.owner) for r in store.list_runs())


def test_a_student_never_sees_another_students_private_run(app, browser):
    url, store, secret = app["url"], app["store"], app["secret"]
    before = _runs(store)
    ctx = browser.new_context()
    page = ctx.new_page()
    _sign_in(page, url + "/learn", "bob")
    gone = f"no run with id {secret} here"
    every = f"run={secret}&runs={secret},{secret}&lesson={secret},{secret},{secret}"
    # each link, and what the page says instead (B's own run, or that the run is not here)
    links = {
        f"/learn?lesson={secret},,": gone,
        f"/learn?lesson={secret},{secret},{secret}": gone,
        f"/learn?{every}": gone,
        f"/explore?{every}": f"there is no run #{secret}",
        f"/compare?{every}": f"not in this store: #{secret}",
        **{f"/{name}?{every}": None for name in ("train", "groundtruth", "upload")},
    }
    for link, instead in links.items():
        page.goto(url + link)
        html = _settled_html(page, instead)
        assert SECRET_NAME not in html, link
        for task in SECRET_TASKS:
            assert task not in html, (link, task)
        if link.startswith("/learn"):
            assert page.locator(".js-plotly-plot").count() == 0, link  # no heatmap
        if link.startswith(("/explore", "/compare")):
            assert "bobtask0" in html, link  # B's own run is drawn instead
    page.wait_for_timeout(2000)  # a run queued by the visit would be in the store by now
    assert _runs(store) == before  # viewing queued nothing
    ctx.close()


def test_a_lesson_link_opened_by_the_teacher_queues_nothing(app, browser):
    url, store, secret = app["url"], app["store"], app["secret"]
    before = _runs(store)
    ctx = browser.new_context()
    page = ctx.new_page()
    _sign_in(page, url + "/learn", "teach")
    page.goto(f"{url}/learn?lesson={secret},,")
    html = _settled_html(page, "Negative transfer in one minute")
    assert f"no run with id {secret} here" not in html  # the teacher may open it
    # and sees its task names where a student sees none (so the checks above can fail)
    page.goto(f"{url}/explore?run={secret}")
    assert SECRET_TASKS[0] in _settled_html(page, SECRET_TASKS[0])
    page.wait_for_timeout(2000)
    assert _runs(store) == before
    ctx.close()
