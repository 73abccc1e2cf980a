"""What the rule engine remembers per key (rule and group), typed, and its compact form.

One `KeyState` per key: the key's watermark, its condition's memory, whether it holds and
since when, the alert it fired and that alert's timers. The engine keeps the object in
its table and mutates it in place; a Faust table writes it to its changelog (and a RocksDB
store to disk) through `__json__`, as a positional list whose trailing defaults are left
out, whose times are kept relative to the key's watermark (a few digits instead of
sixteen) and whose UUIDs are packed as base64url (about 21 characters instead of 36).
`KeyState.of` reads either back: the object itself, or the list a recovered table or a
store on disk gives.

It is deliberately not a dataclass: orjson (Faust's JSON codec) writes dataclasses itself,
as dicts of long field names, and would never ask for the compact form.
"""

from __future__ import annotations

import base64
import re
from bisect import insort
from typing import Any

Values = dict[str, Any]


class Held:
    """An observation held back for the allowed lateness, until the key's watermark passes it."""

    __slots__ = ("at", "evidence", "holds", "snapshot", "values")

    def __init__(self, at: int, holds: bool, values: Values, evidence: list[str],
                 snapshot: str | None) -> None:
        self.at, self.holds, self.values, self.evidence, self.snapshot = at, holds, values, evidence, snapshot

    def wire(self) -> list[Any]:
        return [self.at, self.holds, self.values, self.evidence, self.snapshot]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Held) and self.wire() == other.wire()

    def merge(self, other: Held, max_evidence: int) -> None:
        """Observations of one instant are one: it holds if any of them holds."""
        if other.holds and not self.holds:
            self.holds, self.values = True, other.values
            self.snapshot = other.snapshot or self.snapshot
        self.evidence = [*self.evidence, *other.evidence][-max_evidence:]


class Undecided:
    """A "no" from one model at an instant where the key held: it stands only once every
    model the key has seen said no, or the key's next instant comes."""

    __slots__ = ("at", "said_no", "values")

    def __init__(self, at: int, values: Values, said_no: list[str]) -> None:
        self.at, self.values, self.said_no = at, values, said_no

    def wire(self) -> list[Any]:
        return [self.at, self.values, self.said_no]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undecided) and self.wire() == other.wire()


_FIELDS = ("src", "last", "memory", "holds", "held_at", "since", "alert_id", "started", "evidence",
           "values", "snapshot", "models", "false_since", "clear_values", "reminders", "remind_at",
           "muted", "cooldown_until", "queue", "undecided", "offsets", "groups")
"""Positions in the compact form, the ones most keys have first. Append only: a table
written by an older version must still read."""
_TIMES = frozenset({"held_at", "since", "started", "false_since", "remind_at", "cooldown_until"})
_TIME_POSITIONS = tuple(index for index, name in enumerate(_FIELDS) if name in _TIMES)


class KeyState:
    __slots__ = _FIELDS

    def __init__(self, src: str | None = None, memory: dict[str, Any] | None = None) -> None:
        self.src = src
        self.last: int | None = None
        """The key's watermark: the latest event time (µs) it has seen."""
        self.memory: dict[str, Any] = {} if memory is None else memory
        """The condition's own memory (its windows and counters)."""
        self.holds = False
        self.held_at: int | None = None
        """The last instant an observation held (another model's "no" at it does not count)."""
        self.since: int | None = None
        """Holding since (the `for` timer runs from here)."""
        self.alert_id: str | None = None
        self.started: int | None = None
        self.evidence: list[str] = []
        self.values: Values = {}
        self.snapshot: str | None = None
        self.models: list[str] = []
        self.false_since: int | None = None
        """Fired, and no longer holding since (the `resolve_after` timer)."""
        self.clear_values: Values | None = None
        self.reminders = 0
        self.remind_at: int | None = None
        self.muted: str | None = None
        self.cooldown_until: int | None = None
        self.queue: list[Held] = []
        self.undecided: Undecided | None = None
        self.offsets: dict[str, int] = {}
        """The input log position last applied, per log (a replayed record is skipped)."""
        self.groups: list[str] = []
        """For a source's zone or track groups: the ones active (the key `rule|source*`)."""

    # -- what the engine asks ------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing pending: not holding, not fired, no window memory, no cooldown, no queue."""
        return (self.since is None and self.alert_id is None and self.cooldown_until is None
                and not self.queue and not any(self.memory.values()))

    def watermark(self, default: int) -> int:
        return default if self.last is None else self.last

    def hold_back(self, held: Held, max_evidence: int) -> None:
        """Queue an observation in time order, merging it into one of the same instant."""
        for queued in self.queue:
            if queued.at == held.at:
                queued.merge(held, max_evidence)
                return
        insort(self.queue, held, key=_at)

    def clear_firing(self) -> None:
        """The alert resolved: its id, timers and evidence go (the cooldown is the caller's)."""
        self.alert_id = self.started = self.false_since = self.snapshot = self.muted = None
        self.remind_at = self.clear_values = None
        self.evidence, self.values, self.reminders = [], {}, 0

    def copy(self) -> KeyState:
        twin = KeyState.__new__(KeyState)
        for name in _FIELDS:
            setattr(twin, name, getattr(self, name))
        twin.memory = dict(self.memory)
        return twin

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyState) and self.__json__() == other.__json__()

    def __repr__(self) -> str:
        return f"KeyState({self.__json__()!r})"

    # -- the compact form ----------------------------------------------------------------

    def __json__(self) -> list[Any]:
        values: list[Any] = [getattr(self, name) for name in _FIELDS]
        last = self.last
        if last is not None:
            for index in _TIME_POSITIONS:
                if values[index] is not None:
                    values[index] = last - values[index]
        values[_ALERT_ID] = _pack_ids([self.alert_id]) if self.alert_id is not None else None
        values[_EVIDENCE] = _pack_ids(self.evidence)
        values[_QUEUE] = [held.wire() for held in self.queue]
        values[_UNDECIDED] = self.undecided.wire() if self.undecided is not None else None
        while values and _is_default(values[-1], _DEFAULTS[len(values) - 1]):
            values.pop()
        return values

    @classmethod
    def decode(cls, wire: list[Any]) -> KeyState:
        state = cls()
        padded = [*wire, *_DEFAULTS[len(wire):]]
        last = padded[1]
        for index, (name, value) in enumerate(zip(_FIELDS, padded, strict=True)):
            if index in _TIME_POSITIONS and value is not None and last is not None:
                value = last - value
            if index == _ALERT_ID and value is not None:
                value = _unpack_ids(value)[0]
            elif index == _EVIDENCE:
                value = _unpack_ids(value)
            elif index == _QUEUE:
                value = [Held(*held) for held in value]
            elif index == _UNDECIDED:
                value = Undecided(*value) if value is not None else None
            elif isinstance(value, (list, dict)) and value is _DEFAULTS[index]:
                value = type(value)()  # never share a default
            setattr(state, name, value)
        state.holds = bool(state.holds)
        return state

    @classmethod
    def of(cls, stored: Any) -> KeyState | None:
        """The state a table holds: the object itself, or its compact form read back."""
        if stored is None or isinstance(stored, KeyState):
            return stored
        if isinstance(stored, list):
            return cls.decode(stored)
        if isinstance(stored, dict):
            return cls.from_dict(stored)
        raise TypeError(f"not a rule key state: {type(stored).__name__}")

    @classmethod
    def from_dict(cls, old: dict[str, Any]) -> KeyState:
        """The dict of short keys that tables held before the typed state: a changelog written
        by an older worker still recovers (each key takes the compact form when next written)."""
        state = cls(old.get("src"), old.get("m") or {})
        for short, name in _LEGACY.items():
            if short in old and old[short] is not None:
                setattr(state, name, old[short])
        state.holds = bool(old.get("h"))
        state.queue = [Held(*held) for held in old.get("q", ())]
        state.undecided = Undecided(*old["pf"]) if old.get("pf") else None
        return state


_DEFAULTS: tuple[Any, ...] = tuple(
    [] if isinstance(value, list) else {} if isinstance(value, dict) else value
    for value in (getattr(KeyState(), name) for name in _FIELDS))
_LEGACY = {"last": "last", "ht": "held_at", "since": "since", "alert_id": "alert_id", "started": "started",
           "evidence": "evidence", "values": "values", "snapshot": "snapshot", "mods": "models",
           "false_since": "false_since", "clear_values": "clear_values", "reminders": "reminders",
           "remind_at": "remind_at", "muted": "muted", "cooldown_until": "cooldown_until", "o": "offsets",
           "keys": "groups"}
_QUEUE, _UNDECIDED = _FIELDS.index("queue"), _FIELDS.index("undecided")
_ALERT_ID, _EVIDENCE = _FIELDS.index("alert_id"), _FIELDS.index("evidence")
_UUIDS = re.compile(r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})+")


def _pack_ids(ids: list[str]) -> str | list[str]:
    """Event and alert ids are canonical UUIDs (36 characters each); packed, their bytes as
    one unpadded base64url string (under 22 characters each). Anything else (an id some
    other producer chose) stays a list of strings, as it came."""
    joined = "".join(ids)
    if not ids or len(joined) != 36 * len(ids) or _UUIDS.fullmatch(joined) is None:
        return ids
    return base64.urlsafe_b64encode(bytes.fromhex(joined.replace("-", ""))).rstrip(b"=").decode()


def _unpack_ids(wire: str | list[str]) -> list[str]:
    if isinstance(wire, list):
        return wire
    digits = base64.urlsafe_b64decode(wire + "=" * (-len(wire) % 4)).hex()
    return [f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"
            for d in (digits[start:start + 32] for start in range(0, len(digits), 32))]


def _is_default(value: Any, default: Any) -> bool:
    """Left out at the end of the compact form: exactly the field's default (a relative time
    of 0 is a time, not "none")."""
    if default is None or isinstance(default, bool):
        return value is default
    return type(value) is type(default) and value == default


def _at(held: Held) -> int:
    return held.at
