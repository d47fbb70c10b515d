"""What an import or an export tells the person who ran it: counts per kind and status, and
notes (why anything was skipped, changed or left out), with examples of each kind."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

MAX_NOTES_PER_KIND = 200  # a report keeps this many examples of each kind, then counts
SHOWN_PER_KIND = 20  # on the terminal


@dataclass(kw_only=True)
class Report:
    counts: Counter = field(default_factory=Counter)
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    note_counts: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def note(self, kind: str, text: str) -> None:
        self.note_counts[kind] += 1
        if len(self.notes[kind]) < MAX_NOTES_PER_KIND:
            self.notes[kind].append(text)

    def heading(self) -> str:
        raise NotImplementedError

    def extra(self) -> dict[str, Any]:
        """Fields of the subclass, for ``as_dict``."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.extra(),
            "counts": dict(sorted(self.counts.items())),
            "notes": {k: list(v) for k, v in sorted(self.notes.items())},
            "note_counts": dict(sorted(self.note_counts.items())),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }

    def summary_lines(self) -> list[str]:
        """The report for a terminal: counts grouped by what they count (``posts.live`` →
        ``posts: live 12``), then notes by kind with the first examples of each."""
        lines = [self.heading()]
        groups: dict[str, list[str]] = defaultdict(list)
        for key, n in sorted(self.counts.items()):
            head, _, tail = key.partition(".")
            groups[head].append(f"{tail or head} {n}")
        for head, parts in groups.items():
            lines.append(f"  {head}: " + ", ".join(parts))
        for kind, n in sorted(self.note_counts.items()):
            lines.append(f"  {kind} ({n}):")
            lines.extend(f"    - {text}" for text in self.notes[kind][:SHOWN_PER_KIND])
            if n > SHOWN_PER_KIND:
                lines.append(f"    … and {n - SHOWN_PER_KIND} more (see the JSON report)")
        lines.append("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items()))
        return lines
