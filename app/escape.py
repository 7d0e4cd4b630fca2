"""Untrusted text made safe for the places the app shows it. No Streamlit here; text only.

Run names, task names, file names and error messages that quote a file come from users (an
upload, the Train form, another browser session). Streamlit renders every ``st.markdown``,
``st.caption``, ``st.error``/``st.info``, widget label and progress text as Markdown (links,
images, ``**bold**``, ``:red[colour]``, ``$LaTeX$``, ``:material/icons:``), and raw HTML as well
where a call passes ``unsafe_allow_html=True``. :func:`md` turns a user string into Markdown
that renders as exactly that text, in either mode; figure text goes through
:func:`app.figures.escape.escape_figure` instead (plotly's own tag subset and entities).

The rule for pages: build the sentence, and pass every user-supplied part through :func:`md`
(``st.markdown(f"**{md(run.name)}** failed: {md(run.error)}")``).
"""

from __future__ import annotations

import re

#: Every ASCII punctuation character: CommonMark lets each be backslash-escaped, which makes
#: it a literal character (no emphasis, link, code, HTML tag, entity, directive or maths).
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")
#: U+2060 WORD JOINER: invisible, but it breaks what Streamlit and GFM recognise in plain text
#: even after escaping (``:material/home:`` icons, ``http://`` / ``www.`` / e-mail autolinks).
_JOIN = "\u2060"
_AUTOLINK = re.compile(r"(?i)(:|@|www(?=\.))")
#: C0/C1 control characters and bidirectional overrides: never meaningful in a name, and
#: they can disguise text (U+202E reverses what follows).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def md(text: object, *, max_len: int | None = None) -> str:
    """``text`` as Markdown that renders literally (also safe with ``unsafe_allow_html``).

    Line breaks become spaces (a name never starts a heading, list or code block), control
    and bidi-override characters are dropped, and ``max_len`` (characters, before escaping)
    shortens long text with an ellipsis.
    """
    s = _CONTROL.sub("", str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    if max_len is not None and len(s) > max_len:
        s = s[: max(0, max_len - 1)] + "…"
    s = _AUTOLINK.sub(lambda m: m.group(1) + _JOIN, s)
    return _PUNCT.sub(r"\\\1", s)


def plain(text: object) -> str:
    """``text`` for places that show plain text (table cells, select options, file names):
    control and bidi-override characters dropped, line breaks kept as spaces."""
    return _CONTROL.sub("", str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
