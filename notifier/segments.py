"""SMS length in segments, and truncation that keeps the start (where the essentials are).

GSM-7 messages fit 160 characters in one segment (153 per part when split; the
extension characters like '[' or '€' take two); anything outside GSM-7 switches the
whole message to UCS-2: 70 UTF-16 units, 67 per part. One wrong character (an ellipsis,
a curly quote) can triple the cost, so the truncation marker is plain '...'.
"""

from __future__ import annotations

import math

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
MARKER = "..."


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _units(text: str, gsm: bool) -> int:
    if gsm:
        return sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    gsm = is_gsm7(text)
    units = _units(text, gsm)
    single, part = (160, 153) if gsm else (70, 67)
    return 1 if units <= single else math.ceil(units / part)


def fit(text: str, max_segments: int = 1) -> str:
    """`text` cut at the end so it takes at most `max_segments` segments."""
    if segments(text) <= max_segments:
        return text
    gsm = is_gsm7(text)
    single, part = (160, 153) if gsm else (70, 67)
    budget = single if max_segments == 1 else part * max_segments
    budget -= _units(MARKER, gsm)
    kept, used = [], 0
    for char in text:
        cost = _units(char, gsm)
        if used + cost > budget:
            break
        kept.append(char)
        used += cost
    return "".join(kept).rstrip() + MARKER
