"""RememberedIds: the ids in doubt, each owner's own, bounded per owner, forgotten once settled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cronwrap.agent import store
from cronwrap.agent.eventids import HEADROOM, RememberedIds
from cronwrap.agent.store import Store


def test_ids_are_each_owners_own_and_settling_forgets_them() -> None:
    ids = RememberedIds(per_owner=3)
    assert ids.add("same", 1.0, 1) == [] and ids.add("same", 1.0, 2) == []
    assert (1, "same") in ids and (2, "same") in ids and (3, "same") not in ids
    assert ids.settle(2, "same") and not ids.settle(2, "same")
    assert (1, "same") in ids and (2, "same") not in ids and len(ids) == 1
    assert not ids.settle(1, "never applied")


def test_an_owner_is_full_at_per_owner_and_pushed_out_only_past_the_headroom() -> None:
    ids = RememberedIds(per_owner=3)
    for n in range(3):
        ids.add(f"v{n}", 1.0, 2)
    assert ids.full(2) and not ids.full(1)
    evicted = [gone for n in range(3 + HEADROOM + 2) for gone in ids.add(f"f{n}", 2.0 + n, 1)]
    assert evicted == [(1, "f0"), (1, "f1")]  # only past per_owner + HEADROOM, its own oldest
    assert ids.count(1) == 3 + HEADROOM and ids.count(2) == 3
    ids.settle(2, "v0")
    assert not ids.full(2)


def test_loading_keeps_the_order_and_pruning_drops_the_old() -> None:
    ids = RememberedIds(per_owner=2)
    assert ids.add_all([("c", 3.0, 1), ("a", 1.0, 1), ("b", 2.0, 1), ("x", 1.5, -1)]) == []
    ids.prune(before=2.5)
    assert [(1, "a") in ids, (1, "b") in ids, (1, "c") in ids, (-1, "x") in ids] == \
        [False, False, True, False]
    assert ids.count(-1) == 0 and len(ids) == 1


def test_overflow_names_what_adding_would_push_out() -> None:
    ids = RememberedIds(per_owner=2 - HEADROOM)  # room for two ids an owner
    ids.add_all([("a", 1.0, 1), ("b", 2.0, 1), ("v", 1.0, 2)])
    new = [(1, "c"), (1, "b"), (1, "d"), (1, "e"), (2, "w")]
    pushed = ids.overflow(new)
    assert pushed == [(1, "a"), (1, "b"), (1, "c")]
    for owner, event_id in new:
        ids.add(event_id, 3.0, owner)
    assert [x for x in "abcde" if (1, x) in ids] == ["d", "e"] and (2, "v") in ids \
        and (2, "w") in ids


def test_the_ids_an_older_agent_kept_become_ids_in_doubt_of_its_last_ten_minutes(
        tmp_path: Path) -> None:
    """Migration 16: the ids of the last 10 minutes before the older agent's newest stay (a
    retry its last replies caused is drained within them), keyed by (owner, id)."""
    with sqlite3.connect(tmp_path / store.DB_NAME) as db:
        for number, script in enumerate(store.MIGRATIONS[:15], start=1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        db.executemany("INSERT INTO applied (id, time, owner_uid) VALUES (?, ?, ?)",
                       [("old", 999.0, 1), ("recent", 1500.0, 1), ("newest", 1600.0, 2)])
    migrated = Store(tmp_path)
    assert sorted(migrated.load_applied(0)) == [("newest", 1600.0, 2), ("recent", 1500.0, 1)]
    migrated.commit([], [], [("newest", 1700.0, 1)], {}, dropped_ids=[(2, "newest")])
    assert sorted(migrated.load_applied(0)) == [("newest", 1700.0, 1), ("recent", 1500.0, 1)]
    migrated.close()
