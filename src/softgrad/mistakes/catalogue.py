"""The catalogue's machinery: a known mistake, the registry, and the wrong implementations of each.

The entries themselves live in one module per chapter of the book (:mod:`softgrad.mistakes`
imports them all, in the book's order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CATALOGUE", "Mistake", "mistake", "reproduces", "suspects"]


@dataclass(frozen=True)
class Mistake:
    """A known mistake: a stable id, a title, what goes wrong and how to fix it, and where it is taught."""

    id: str
    title: str
    explanation: str
    section: str
    implementations: dict[str, list[Callable[..., object]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def describe(self) -> str:
        """The paragraph a student reads when their code matches this mistake."""
        return (
            f"This matches a known mistake: {self.title} [{self.id}].\n"
            f"  {self.explanation}\n"
            f"  See: {self.section}."
        )


CATALOGUE: dict[str, Mistake] = {}
"""Every known mistake by id."""


def mistake(id: str, title: str, explanation: str, section: str) -> Mistake:
    """Create a :class:`Mistake` and add it to :data:`CATALOGUE` (ids are unique)."""
    if id in CATALOGUE:
        raise ValueError(f"mistake id {id!r} is already in the catalogue")
    entry = Mistake(id, title, " ".join(explanation.split()), section)
    CATALOGUE[id] = entry
    return entry


def reproduces(entry: Mistake, function_name: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register the decorated function as one way ``function_name`` goes wrong with ``entry``."""

    def register(implementation: Callable[..., object]) -> Callable[..., object]:
        entry.implementations.setdefault(function_name, []).append(implementation)
        return implementation

    return register


def suspects(function_name: str) -> dict[Mistake, list[Callable[..., object]]]:
    """The mistakes known for a graded function, each with its wrong implementations."""
    return {
        entry: entry.implementations[function_name]
        for entry in CATALOGUE.values()
        if function_name in entry.implementations
    }
