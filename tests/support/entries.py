"""A stand-in for a catalogue entry, for the tests of the book's mistake tables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """What ``softgrad.book.mistake_table`` reads of a catalogue entry."""

    id: str
    title: str
    explanation: str
    section: str
