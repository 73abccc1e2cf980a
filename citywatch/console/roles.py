"""Roles, ordered: a viewer reads; an operator also acknowledges and silences; a rule editor
also changes rules; an admin also manages users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "operator", "rule_editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "rule_editor", "admin")


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)
