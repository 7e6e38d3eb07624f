"""Is this text, and in which encoding? Decided from the first chunk only.

Order: byte-order mark; UTF-16 without a BOM (NUL in every other byte); NUL or control bytes mean
binary; then trial decoding as UTF-8 and GB18030 (a superset of GBK and GB2312, what Chinese
Windows and older Excel write). A chunk may end inside a multi-byte character, so decoding is
incremental and not final.
"""

from __future__ import annotations

import codecs

from agent.exports.limits import Unreadable

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1a\x1b")
MAX_CONTROL_SHARE = 0.01


def _utf16_without_bom(head: bytes) -> str | None:
    even, odd = head[0::2], head[1::2]
    if not odd:
        return None
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.3 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.3 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _decodes(head: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(head: bytes) -> str:
    """The codec name to read the file with; raises Unreadable for binary content."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    utf16 = _utf16_without_bom(head)
    if utf16 is not None:
        return utf16
    if b"\0" in head:
        raise _binary("NUL bytes in the first chunk")
    controls = sum(1 for byte in head if byte < 0x20 and byte not in _TEXT_CONTROLS)
    if head and controls / len(head) > MAX_CONTROL_SHARE:
        raise _binary(f"{controls} control bytes in the first {len(head)} bytes")
    for encoding in ("utf-8", "gb18030"):
        if _decodes(head, encoding):
            return encoding
    raise _binary("first chunk is neither UTF-8 nor GB18030 text")


def _binary(why: str) -> Unreadable:
    return Unreadable(f"binary or unknown content ({why})")
