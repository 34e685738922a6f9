"""The event ids the agent remembers so that a retried event counts once, bounded per owner.

A wrapper sends each event once over the socket and spools it only when it got no reply; the
spool drain removes a file only once its event is committed. So the same event (the same id)
can reach the agent again only through its owner's spool, soon after it was first applied:
after a reply that was lost, or a drain stopped between a commit and the unlink. The agent
remembers each owner's newest `per_owner` ids (and none older than applied_retention), which
covers those retries (docs/protocol.md, "Exactly once"), while one user's flood of events can
only push out that user's own older ids: the memory and the database rows it costs are bounded
per owner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable


class RememberedIds:
    """Applied event ids, per owner in the order they were applied, at most `per_owner` each."""

    def __init__(self, per_owner: int) -> None:
        self.per_owner = per_owner
        self._owner_of: dict[str, int] = {}
        self._by_owner: dict[int, dict[str, float]] = {}  # id -> when applied, oldest first

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._owner_of

    def __len__(self) -> int:
        return len(self._owner_of)

    def count(self, owner_uid: int) -> int:
        return len(self._by_owner.get(owner_uid, ()))

    def add(self, event_id: str, when: float, owner_uid: int) -> list[str]:
        """Remember `event_id`; the ids of that owner pushed out by it (oldest first)."""
        if event_id in self._owner_of:
            return []
        ids = self._by_owner.setdefault(owner_uid, {})
        ids[event_id] = when
        self._owner_of[event_id] = owner_uid
        evicted = []
        while len(ids) > self.per_owner:
            oldest = next(iter(ids))
            del ids[oldest], self._owner_of[oldest]
            evicted.append(oldest)
        return evicted

    def overflow(self, new: Iterable[tuple[str, int]]) -> list[str]:
        """The ids that adding `new` (id, owner uid), in order, would push out: the store
        deletes them in the same commit that inserts `new`."""
        added: dict[int, list[str]] = {}
        for event_id, owner_uid in new:
            if event_id not in self._owner_of:
                added.setdefault(owner_uid, []).append(event_id)
        pushed: list[str] = []
        for owner_uid, ids in added.items():
            kept = self._by_owner.get(owner_uid, {})
            excess = len(kept) + len(ids) - self.per_owner
            pushed += list(itertools.islice(itertools.chain(kept, ids), max(0, excess)))
        return pushed

    def add_all(self, rows: Iterable[tuple[str, float, int]]) -> list[str]:
        """Remember (id, when, owner uid) rows in time order; the ids pushed out."""
        evicted: list[str] = []
        for event_id, when, owner_uid in sorted(rows, key=lambda row: row[1]):
            evicted += self.add(event_id, when, owner_uid)
        return evicted

    def prune(self, before: float) -> None:
        """Forget the ids applied before `before` (the store deletes their rows itself)."""
        for owner_uid in list(self._by_owner):
            ids = self._by_owner[owner_uid]
            while ids:
                oldest, when = next(iter(ids.items()))
                if when >= before:
                    break
                del ids[oldest], self._owner_of[oldest]
            if not ids:
                del self._by_owner[owner_uid]
