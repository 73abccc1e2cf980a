"""How a monitoring file is laid out, found from the file itself: its delimiter and quoting
(sniffed), and the form of its times (inferred from the rows), each with an error that names
what was seen when it cannot be told.

Agencies ship the same data in many layouts: comma or semicolon or tab separated, ISO times
or day-first (Europe) or month-first (US) dates, with or without seconds. A date like
06/07/2001 reads both ways; the rows are read until one of them (a day above 12) tells, and
if none does the file is refused with both readings, since guessing would shift a month.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime

DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y")
TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%H:%M:%S.%f")
CANDIDATES = tuple(f"{date}{sep}{time}" for date in DATE_FORMATS for sep in (" ", "T")
                   for time in TIME_FORMATS if not (sep == "T" and not date.startswith("%Y"))) + DATE_FORMATS
"""Every layout tried, most specific first; a date alone is a daily file."""
ISO = "iso"
"""ISO 8601 with a zone or fractions (2001-01-01T00:00:00Z, +01:00): read by fromisoformat."""


class LayoutError(ValueError):
    """The file's layout cannot be told; the text says what was seen and what to set."""


def sniff_dialect(sample: str, delimiter: str | None) -> type[csv.Dialect] | csv.Dialect:
    """The dialect of a file from its start; `delimiter` set in the settings wins."""
    if delimiter is not None:
        class Given(csv.excel):
            pass
        Given.delimiter = delimiter
        return Given
    header = sample.splitlines()[0] if sample else ""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        if counts[best] == 0:
            return csv.excel  # one column: a comma file with nothing to split
        class Counted(csv.excel):
            pass
        Counted.delimiter = best
        return Counted


def parse_time(text: str, form: str) -> datetime:
    if form == ISO:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return datetime.strptime(text, form)


def infer_time_format(samples: Iterable[tuple[int, str]], limit: int = 5000) -> str:
    """The one layout every sampled time (line, text) reads in, and reads the same as every
    other layout that fits: rows are read until the fitting layouts agree on every moment
    so far (after at least 20 rows), or `limit` rows. A time that fits none of them is a bad
    row, left to be rejected when it is replayed."""
    signature: dict[str, int] = dict.fromkeys((*CANDIDATES, ISO), 0)
    """Per layout still fitting: a running hash of the moments it has read; one value, one meaning."""
    seen = 0
    unfit: list[tuple[int, str]] = []
    first_split: tuple[int, str] | None = None
    for line, raw in samples:
        text = raw.strip()
        if not text:
            continue
        moments = {form: _moment(text, form) for form in signature}
        fitting = {form: moment for form, moment in moments.items() if moment is not None}
        if not fitting:  # a bad row (rejected when it is replayed), not a layout
            unfit.append((line, text))
            continue
        seen += 1
        if first_split is None and len(set(fitting.values())) > 1:
            first_split = (line, text)
        signature = {form: hash((signature[form], moment)) for form, moment in fitting.items()}
        if seen >= limit or (seen >= 20 and len(set(signature.values())) == 1):
            break
    if not seen:
        shown = ", ".join(f"line {line}: {text[:40]!r}" for line, text in unfit[:3]) or "none"
        raise LayoutError(f"no time in a layout known here (first times: {shown}): set time_format")
    groups: dict[int, list[str]] = {}
    for form, value in signature.items():
        groups.setdefault(value, []).append(form)
    if len(groups) > 1:
        line, text = first_split or (0, "")
        both = "; ".join(f"{forms[0]} reads it as {_moment(text, forms[0])}" for forms in groups.values())
        raise LayoutError(f"line {line}: {text!r} is ambiguous in every row read ({both}): set time_format")
    return next(iter(groups.values()))[0]


def _moment(text: str, form: str) -> str | None:
    try:
        return parse_time(text, form).isoformat()
    except ValueError:
        return None
