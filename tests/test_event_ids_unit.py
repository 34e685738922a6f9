"""RememberedIds: each owner's newest ids kept, one owner's flood never pushes out another's."""

from __future__ import annotations

from cronwrap.agent.eventids import RememberedIds


def test_each_owner_keeps_its_newest_ids_and_no_more() -> None:
    ids = RememberedIds(per_owner=3)
    assert ids.add("v1", 1.0, 2) == []
    evicted = [gone for n in range(10) for gone in ids.add(f"f{n}", 2.0 + n, 1)]
    assert evicted == [f"f{n}" for n in range(7)]
    assert [f"f{n}" in ids for n in range(10)] == [False] * 7 + [True] * 3
    assert "v1" in ids and ids.count(2) == 1 and ids.count(1) == 3 and len(ids) == 4
    assert ids.add("f9", 20.0, 1) == []  # already remembered: nothing moves


def test_loading_keeps_the_newest_and_pruning_drops_the_old() -> None:
    ids = RememberedIds(per_owner=2)
    assert ids.add_all([("c", 3.0, 1), ("a", 1.0, 1), ("b", 2.0, 1), ("x", 1.5, -1)]) == ["a"]
    ids.prune(before=2.5)
    assert ["a" in ids, "b" in ids, "c" in ids, "x" in ids] == [False, False, True, False]
    assert ids.count(-1) == 0 and len(ids) == 1


def test_overflow_names_what_adding_would_push_out() -> None:
    ids = RememberedIds(per_owner=2)
    ids.add_all([("a", 1.0, 1), ("b", 2.0, 1), ("v", 1.0, 2)])
    new = [("c", 1), ("b", 1), ("d", 1), ("e", 1), ("w", 2)]
    pushed = ids.overflow(new)
    assert pushed == ["a", "b", "c"]
    for event_id, owner in new:
        ids.add(event_id, 3.0, owner)
    assert [x for x in "abcde" if x in ids] == ["d", "e"] and "v" in ids and "w" in ids
