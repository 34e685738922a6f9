"""The event ids in doubt: applied events whose retry may still come, bounded per owner.

A wrapper spools an event it sent as a retry (`r-<id>.json`) only when it did not read the
agent's reply; a drained spool file comes back only when the drain stopped between committing
its event and unlinking it. So the agent remembers an applied event's id, per owner, only
while a copy of it may still arrive: from its commit until its reply is queued to the wrapper
(socket) or its file is unlinked (spool), and for ever when neither happened, until its retry
is drained (docs/protocol.md, "Exactly once"). An owner at `per_owner` ids in doubt has its
socket events answered "busy" (spooled, applied later), so an honest wrapper's retry always
finds its id; HEADROOM more are room for the drain's slices between commit and unlink.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

HEADROOM = 1000  # ids of spooled files committed, not yet unlinked: a few drain slices
OwnedId = tuple[int, str]  # (owner uid, event id): each owner's ids are its own


class RememberedIds:
    """Event ids in doubt, per owner in the order they were applied."""

    def __init__(self, per_owner: int) -> None:
        self.per_owner = per_owner
        self._by_owner: dict[int, dict[str, float]] = {}  # id -> when applied, oldest first

    def __contains__(self, owned: object) -> bool:
        if not isinstance(owned, tuple):
            return False
        owner_uid, event_id = owned
        return event_id in self._by_owner.get(owner_uid, {})

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._by_owner.values())

    def count(self, owner_uid: int) -> int:
        return len(self._by_owner.get(owner_uid, ()))

    def full(self, owner_uid: int) -> bool:
        """Whether `owner_uid` has `per_owner` ids in doubt: its socket events wait (busy)."""
        return self.count(owner_uid) >= self.per_owner

    def add(self, event_id: str, when: float, owner_uid: int) -> list[OwnedId]:
        """Remember `event_id`; the ids of that owner pushed out past per_owner + HEADROOM
        (reached only when a spool's files cannot be unlinked)."""
        ids = self._by_owner.setdefault(owner_uid, {})
        if event_id in ids:
            return []
        ids[event_id] = when
        evicted = []
        while len(ids) > self.per_owner + HEADROOM:
            oldest = next(iter(ids))
            del ids[oldest]
            evicted.append((owner_uid, oldest))
        return evicted

    def settle(self, owner_uid: int, event_id: str) -> bool:
        """No copy of the event can come any more: forget it; whether it was remembered."""
        ids = self._by_owner.get(owner_uid, {})
        if ids.pop(event_id, None) is None:
            return False
        if not ids:
            del self._by_owner[owner_uid]
        return True

    def overflow(self, new: Iterable[OwnedId]) -> list[OwnedId]:
        """The ids that adding `new` (owner uid, id), in order, would push out: the store
        deletes them in the same commit that inserts `new`."""
        added: dict[int, list[str]] = {}
        for owner_uid, event_id in new:
            if (owner_uid, event_id) not in self:
                added.setdefault(owner_uid, []).append(event_id)
        pushed: list[OwnedId] = []
        for owner_uid, ids in added.items():
            kept = self._by_owner.get(owner_uid, {})
            excess = len(kept) + len(ids) - self.per_owner - HEADROOM
            pushed += [(owner_uid, event_id) for event_id in
                       itertools.islice(itertools.chain(kept, ids), max(0, excess))]
        return pushed

    def add_all(self, rows: Iterable[tuple[str, float, int]]) -> list[OwnedId]:
        """Remember (id, when, owner uid) rows in time order; the ids pushed out."""
        evicted: list[OwnedId] = []
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
                del ids[oldest]
            if not ids:
                del self._by_owner[owner_uid]
