"""Text files' bytes as ``str``: UTF-8 (with or without a BOM), UTF-16, or a detected encoding.

Spreadsheets save text in more than one encoding: Excel's "CSV UTF-8" adds a BOM, its
"Unicode text" is UTF-16 with a BOM, and a plain "CSV" on Windows is a legacy code page
(cp1252 in Western Europe). Order of trust:

1. a BOM (UTF-8, UTF-16 LE/BE) says it;
2. valid UTF-8 is UTF-8;
3. UTF-16 without a BOM is recognised by its zero bytes (ASCII text in UTF-16 has a zero in
   every other byte);
4. anything else goes to charset-normalizer (a maintained detector), limited to the legacy
   encodings spreadsheets write; the read then notes which encoding it used and how to
   re-save as UTF-8. When nothing fits, the file is refused with the first bad byte, the
   likely encoding (if any) and how to re-save.
"""

from __future__ import annotations

import codecs

from mtl_core.errors import LabError
from mtl_core.runfile.report import note

#: Legacy encodings tried, in order of preference on a tie (most common first).
LEGACY = (
    "cp1252",
    "cp1250",
    "cp1251",
    "gb18030",
    "cp932",
    "euc_kr",
    "big5",
    "cp1253",
    "cp1254",
    "cp1257",
    "koi8_r",
    "mac_roman",
    "euc_jp",
    "cp437",
    "cp850",
)
RESAVE = "re-save it as UTF-8 (Excel: Save As > 'CSV UTF-8'; pandas: to_csv(..., encoding='utf-8'))"
#: Above this, only a prefix is given to the detector (its verdict does not improve much).
_SAMPLE = 256 * 1024


def decode_text(data: bytes, name: str) -> str:
    """A text file's bytes as ``str``; see :func:`decode`."""
    return decode(data, name)[0]


def decode(data: bytes, name: str) -> tuple[str, str]:
    """A text file's bytes as ``(text, encoding)`` (see the module docstring for the order of
    trust); ``encoding`` is ``"utf-8"`` when the bytes are UTF-8 as they stand (a BOM allowed).

    Raises
    ------
    LabError
        Bytes that are no known encoding: names the first byte that is not UTF-8, the likely
        encoding when the detector has one, and how to re-save.
    """
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[3:], "utf-8", name), "utf-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _strict(data, "utf-16", name)
        note("read as UTF-16 text (a byte-order mark says so)")
        return text, "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        bad = exc.start
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        note(f"read as {utf16.upper()} text (no byte-order mark; recognised by its zero bytes)")
        return _strict(data, utf16, name), utf16
    enc = detect(data)
    if enc is None:
        raise LabError(
            f"{name}: not UTF-8 text (byte {bad} is {data[bad]:#04x}) and no common encoding "
            f"fits; {RESAVE}"
        )
    try:
        text = data.decode(enc)
    except UnicodeDecodeError:
        raise LabError(
            f"{name}: not UTF-8 text (byte {bad}); it looks like {enc} but does not decode as "
            f"it; {RESAVE}"
        ) from None
    note(f"read as {enc} text (detected; the file is not UTF-8): if names look wrong, {RESAVE}")
    return text, enc


def detect(data: bytes) -> str | None:
    """The likeliest legacy encoding of ``data`` (charset-normalizer), or None."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data[:_SAMPLE], cp_isolation=list(LEGACY)))
    if not matches:
        return None
    rank = {e: k for k, e in enumerate(LEGACY)}
    best = min(
        matches,
        key=lambda m: (round(m.chaos, 3), -round(m.coherence, 3), rank.get(m.encoding, 99)),
    )
    text = str(best)
    # the detector drops encodings that decode to the same text: name the commoner one
    for enc in LEGACY[: rank.get(best.encoding, len(LEGACY))]:
        try:
            if data[:_SAMPLE].decode(enc) == text:
                return enc
        except UnicodeDecodeError:
            continue
    return str(best.encoding)


def _strict(data: bytes, enc: str, name: str) -> str:
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        raise LabError(
            f"{name}: not valid {enc.upper()} text (byte {exc.start}); {RESAVE}"
        ) from None


def _utf16_without_bom(data: bytes) -> str | None:
    """``"utf-16-le"``/``"utf-16-be"`` when most odd (even) bytes are zero, else None."""
    head = data[:4096]
    if len(head) < 4 or len(head) % 2:
        return None
    even, odd = head[0::2], head[1::2]
    half = len(head) // 2
    if odd.count(0) > 0.6 * half and even.count(0) < 0.1 * half:
        return "utf-16-le"
    if even.count(0) > 0.6 * half and odd.count(0) < 0.1 * half:
        return "utf-16-be"
    return None
