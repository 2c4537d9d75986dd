"""State machines: the one way a status column moves, in every app.

A stateful model declares its allowed moves once, next to its fields, as a `StateMachine` class
attribute (`MOVES`, or one per status column), and changes status only through:

- its `mark_<state>()` methods, each a call to `StateMachine.move`: refuse an illegal move, set the
  status with every field coupled to it, and save exactly those columns (on a row the caller locked);
- `StateMachine.claim` for moves of many rows, or of a row two workers may race for: one
  `UPDATE ... WHERE <status> IN (allowed sources)`, whose row count says how many moved.

Anything not in the table raises `IllegalTransition`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from config.errors import Conflict


class IllegalTransition(Conflict):  # noqa: N818 - the name every app already catches
    """A status change the state machine does not allow: a `Conflict` (the API answers 409)."""

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity} cannot go from {current} to {target}.")
        self.entity = entity
        self.current = current
        self.target = target


class StateMachine:
    """The allowed moves of one status column: `{from: {to, ...}}`, every state a key.

    Declared as a class attribute of the model (it learns the model's name from there).
    """

    def __init__(self, field: str, moves: Mapping[str, Iterable[str]]) -> None:
        self.field = field
        self.moves: dict[str, frozenset[str]] = {
            str(old): frozenset(str(new) for new in to) for old, to in moves.items()
        }
        unknown = {new for to in self.moves.values() for new in to} - self.moves.keys()
        if unknown:
            raise ValueError(f"moves to states that are not declared: {sorted(unknown)}")
        self.entity = field

    def __set_name__(self, owner: type, name: str) -> None:
        self.entity = owner.__name__ if self.field == "status" else f"{owner.__name__}.{self.field}"

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.moves)

    def allows(self, old: str, new: str) -> bool:
        return new in self.moves.get(str(old), frozenset())

    def check(self, old: str, new: str) -> None:
        """Refuse a move the table does not list."""
        if not self.allows(old, new):
            raise IllegalTransition(self.entity, str(old), str(new))

    def targets(self, old: str) -> frozenset[str]:
        return self.moves.get(str(old), frozenset())

    def sources(self, new: str) -> frozenset[str]:
        return frozenset(old for old, to in self.moves.items() if new in to)

    def move(self, row: models.Model, to: str, **fields: Any) -> None:
        """Move one row: refuse an illegal move, set the status and `fields`, save exactly those columns.

        Call it on a row locked with select_for_update inside the caller's transaction.
        """
        self.check(getattr(row, self.field), to)
        setattr(row, self.field, to)
        for name, value in fields.items():
            setattr(row, name, value)
        row.save(update_fields=[self.field, *fields])

    def claim(
        self, queryset: models.QuerySet[Any], to: str, *, sources: Iterable[str] | None = None, **fields: Any
    ) -> int:
        """Move every row of `queryset` whose status may move to `to` (or only those in `sources`,
        each of which must be allowed to) in one conditional UPDATE; returns how many moved."""
        allowed = self.sources(to)
        if sources is not None:
            for old in sources:
                self.check(old, to)
            allowed = frozenset(str(old) for old in sources)
        if not allowed:
            raise IllegalTransition(self.entity, "anywhere", str(to))
        return queryset.filter(**{f"{self.field}__in": sorted(allowed)}).update(**{self.field: to}, **fields)
