"""Headless Chromium for the end-to-end tests: where it is, how it starts, and the marks that
skip a module (with the reason) where it is absent. The ``browser`` fixture is in
``tests/e2e/conftest.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: Playwright cannot download its own browser here: Debian's, headless, no sandbox (root).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: ``pytestmark`` of an end-to-end module.
E2E_MARKS = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"end-to-end tests need Chromium at {CHROMIUM} "
        "(Debian: apt-get install chromium; .ci/run installs it)",
    ),
]


def slider(page, label: str, timeout: float = 30000):
    """The slider whose label starts with ``label``, attached (waits up to ``timeout`` ms).

    By label, not by position: while a page is still drawing, ``get_by_role("slider").nth(i)``
    can name a later slider (the step slider not drawn yet makes ``nth(1)`` the threshold)."""
    box = page.locator("[data-testid='stSlider']").filter(
        has=page.locator("[data-testid='stWidgetLabel']", has_text=label)
    )
    thumb = box.first.get_by_role("slider")
    thumb.wait_for(timeout=timeout)
    return thumb


def wait_slider_value(page, label: str, value: str, timeout: float = 20000) -> None:
    """Wait until the slider labelled ``label`` holds ``value`` (its range input's value)."""
    page.wait_for_function(
        """([label, value]) => [...document.querySelectorAll("[data-testid='stSlider']")]
            .some(b => {
              const l = b.querySelector("[data-testid='stWidgetLabel']");
              const t = b.querySelector("input[type='range']");
              return l && t && l.innerText.trim().startsWith(label) && t.value === value; })""",
        arg=[label, value],
        timeout=timeout,
    )


def heatmap_cell_centre(page, source: str, target: str, timeout: float = 30000):
    """Page pixels ``(x, y)`` of the centre of cell row ``source``, column ``target`` of the
    first plotted heatmap, once plotly has laid out both axes (finite pixels)."""
    handle = page.wait_for_function(
        """([s, t]) => {
          const g = [...document.querySelectorAll('.js-plotly-plot')]
            .find(g => g.data && g.data.some(d => d.type === 'heatmap') && g._fullLayout);
          if (!g) return null;
          const L = g._fullLayout, r = g.getBoundingClientRect();
          const x = r.left + L._size.l + L.xaxis.d2p(t), y = r.top + L._size.t + L.yaxis.d2p(s);
          return Number.isFinite(x) && Number.isFinite(y) ? [x, y] : null; }""",
        arg=[source, target],
        timeout=timeout,
    )
    return tuple(handle.json_value())


def sign_in(page, name: str, password: str = "pear", timeout: float = 60000) -> None:
    """Sign in on the page's form and wait until the browser holds the sign-in cookie
    (``app.cookie.COOKIE``): the page stores it by script after the sign-in rerun, so a link
    opened before that (a loaded machine) would find the form again."""
    import time

    page.get_by_role("textbox", name="User name").wait_for(timeout=timeout)
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=timeout)
    end = time.monotonic() + timeout / 1000
    while not any(c["name"] == "lab_sign_in" for c in page.context.cookies()):
        if time.monotonic() > end:
            raise AssertionError(f"signed in as {name}, but no sign-in cookie was stored")
        page.wait_for_timeout(200)


#: Every visible select, number and text input whose shown value is cut (text wider than the
#: box it is drawn in), as ``{label, shown, text_px, box_px}``. Streamlit 1.67 draws a select as
#: a combo box whose ``input`` holds the chosen option's text, like a number or text input: the
#: value is measured with a canvas in the input's own font against the input's inner width
#: (client width less padding).
CUT_VALUES_JS = """() => {
  const canvas = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const w of document.querySelectorAll(
      "[data-testid='stSelectbox'], [data-testid='stNumberInput'], [data-testid='stTextInput']")) {
    if (w.getBoundingClientRect().width === 0) continue;
    const inp = w.querySelector('input');
    if (!inp || !inp.value) continue;
    const cs = getComputedStyle(inp);
    canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const text = canvas.measureText(inp.value).width;
    const room = inp.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const l = w.querySelector("[data-testid='stWidgetLabel']");
    if (text > room + 1)
      out.push({label: l ? l.innerText.trim() : '', shown: inp.value,
                text_px: Math.round(text), box_px: Math.round(room)});
  }
  return out;
}"""
#: ``{label: shown value}`` of every labelled select on the page (its combo box's input).
SELECT_VALUES_JS = """() => Object.fromEntries(
  [...document.querySelectorAll("[data-testid='stSelectbox']")]
  .map(w => [w.querySelector("[data-testid='stWidgetLabel']"), w.querySelector('input')])
  .filter(([l, v]) => l && v).map(([l, v]) => [l.innerText.trim(), v.value]))"""
