"""MibSnapshot answers Get/GetNext like a naive sorted list of all instances, rebuilt each time,
at two rows and at thousands of rows."""

from __future__ import annotations

import bisect
import logging
from typing import Any

import pytest
from cronwrap.agent import mib, mibvalues
from cronwrap.agent.mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, NoSuch, Oid
from cronwrap.agent.model import AgentStats, JobKey, JobRecord, JobState, RunRecord
from cronwrap.agent.snapshot import MibSnapshot
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

COL = mib.column_oid
RUNS, PID = mib.Column.cronJobRuns, mib.Column.cronJobRunningPid
STATS = AgentStats(job_count=2, events_accepted=10, events_rejected=1, started_at=1000.0)


def record(owner: str, name: str, uid: int = 0, **fields: Any) -> JobRecord:
    return JobRecord(JobKey(uid, name), owner, **fields)


class Naive:
    """The specification: every instance in one sorted list, rebuilt from scratch."""

    def __init__(self) -> None:
        self.jobs: dict[JobKey, JobRecord] = {}
        self.stats: AgentStats | None = None

    def instances(self) -> list[tuple[Oid, Any]]:
        rows: list[tuple[Oid, Any]] = []
        if self.stats is not None:
            rows += [(mib.scalar_oid(s) + (0,), v) for s, v in mibvalues.scalar_values(self.stats)]
        for r in self.jobs.values():
            index = mibvalues.row_index(r.owner, r.key.name)
            rows += [(COL(c) + index, v) for c, v in mibvalues.row_values(r)]
            for run in r.history:
                rows += [(mib.run_column_oid(c) + index + (mibvalues.run_number(run),), v)
                         for c, v in mibvalues.run_values(run)]
        return sorted(rows, key=lambda ov: ov[0])

    def get(self, oid: Oid) -> Any:
        for o, v in self.instances():
            if o == oid:
                return v
        objects = [mib.scalar_oid(s) for s in mib.Scalar] + [COL(c) for c in mib.VALUE_COLUMNS]
        objects += [mib.run_column_oid(c) for c in mib.RUN_VALUE_COLUMNS]
        if any(oid[: len(o)] == o for o in objects):
            return NO_SUCH_INSTANCE
        return NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool, end: Oid | None) -> tuple[Oid, Any] | None:
        for o, v in self.instances():
            if (o > start or (include and o == start)) and (end is None or o < end):
                return o, v
            if end is not None and o >= end:
                return None
        return None


@pytest.fixture
def two_rows() -> MibSnapshot:
    snapshot = MibSnapshot()
    snapshot.stats_changed(STATS)
    snapshot.job_changed(record("root", "backup", runs=3))
    snapshot.job_changed(record("alice", "sync", uid=1000, runs=7, running_pid=99))
    return snapshot


ALICE = mibvalues.row_index("alice", "sync")
ROOT_ROW = mibvalues.row_index("root", "backup")


def test_rows_are_ordered_by_length_prefixed_index(two_rows: MibSnapshot) -> None:
    assert ROOT_ROW < ALICE  # "root" is shorter than "alice"
    first = two_rows.get_next(COL(RUNS))
    assert isinstance(first, Entry)
    assert first.oid == COL(RUNS) + ROOT_ROW
    assert int(first.value) == 3


def test_get(two_rows: MibSnapshot) -> None:
    entry = two_rows.get(COL(RUNS) + ALICE)
    assert isinstance(entry, Entry)
    assert int(entry.value) == 7
    scalar = two_rows.get(mib.scalar_oid(mib.Scalar.cronEventsAccepted) + (0,))
    assert isinstance(scalar, Entry)
    assert int(scalar.value) == 10


@pytest.mark.parametrize(
    ("oid", "why"),
    [
        (COL(RUNS), NO_SUCH_INSTANCE),  # the column itself
        (COL(RUNS) + mibvalues.row_index("bob", "x"), NO_SUCH_INSTANCE),
        (COL(RUNS) + (2**64,), NO_SUCH_INSTANCE),
        (mib.scalar_oid(mib.Scalar.cronJobCount) + (1,), NO_SUCH_INSTANCE),
        (mib.scalar_oid(mib.Scalar.cronJobCount) + (0, 0), NO_SUCH_INSTANCE),
        (COL(mib.Column.cronJobOwner) + ROOT_ROW, NO_SUCH_OBJECT),  # not-accessible
        (COL(mib.Column.cronJobName) + ROOT_ROW, NO_SUCH_OBJECT),
        (mib.JOB_ENTRY + (max(mib.Column) + 1,) + ROOT_ROW, NO_SUCH_OBJECT),  # past the last
        (mib.JOB_ENTRY, NO_SUCH_OBJECT),
        (mib.OBJECTS + (99, 0), NO_SUCH_OBJECT),
        (mib.NOTIFY_OBJECTS + (1, 0), NO_SUCH_OBJECT),  # accessible-for-notify
        (mib.ROOT, NO_SUCH_OBJECT),
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), NO_SUCH_OBJECT),
        ((), NO_SUCH_OBJECT),
    ],
)
def test_get_says_why_nothing_is_there(two_rows: MibSnapshot, oid: Oid, why: NoSuch) -> None:
    assert two_rows.get(oid) is why


def test_scalars_are_absent_until_stats_arrive() -> None:
    snapshot = MibSnapshot()
    assert snapshot.get(mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)) is NO_SUCH_INSTANCE
    assert snapshot.get_next(()) is None


def oid_of(entry: Entry | None) -> Oid | None:
    return None if entry is None else entry.oid


def test_get_next_edges(two_rows: MibSnapshot) -> None:
    first_scalar = mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)
    last_row = COL(mib.VALUE_COLUMNS[-1]) + ALICE
    last = mib.scalar_oid(max(mib.Scalar)) + (0,)  # scalars after the table follow its rows
    assert oid_of(two_rows.get_next(())) == first_scalar  # before our subtree
    assert oid_of(two_rows.get_next((1, 3, 6, 1, 2, 1))) == first_scalar
    assert oid_of(two_rows.get_next(mib.ROOT)) == first_scalar
    assert oid_of(two_rows.get_next(first_scalar)) == mib.scalar_oid(mib.Scalar(2)) + (0,)
    assert oid_of(two_rows.get_next(first_scalar, include=True)) == first_scalar
    # between objects: from the last scalar into the table, from one column to the next
    assert oid_of(two_rows.get_next(mib.scalar_oid(mib.Scalar(4)) + (0,))) == COL(RUNS) + ROOT_ROW
    assert oid_of(two_rows.get_next(COL(RUNS) + ALICE)) == COL(RUNS + 1) + ROOT_ROW
    assert oid_of(two_rows.get_next(COL(RUNS) + (2**32 - 1,))) == COL(RUNS + 1) + ROOT_ROW
    assert oid_of(two_rows.get_next(COL(RUNS) + (2**70, 5))) == COL(RUNS + 1) + ROOT_ROW
    assert oid_of(two_rows.get_next(COL(RUNS) + ROOT_ROW + (0,))) == COL(RUNS) + ALICE
    # at and past the last instance
    after_table = min(s for s in mib.Scalar if mib.scalar_oid(s) > mib.JOB_TABLE)
    assert oid_of(two_rows.get_next(last_row)) == mib.scalar_oid(after_table) + (0,)
    assert two_rows.get_next(last) is None
    assert oid_of(two_rows.get_next(last, include=True)) == last
    assert two_rows.get_next(mib.ROOT + (2,)) is None
    assert two_rows.get_next((2,)) is None
    # end bounds are exclusive
    assert two_rows.get_next(COL(RUNS), end=COL(RUNS) + ROOT_ROW) is None
    assert (
        oid_of(two_rows.get_next(COL(RUNS), end=COL(RUNS) + ROOT_ROW + (0,)))
        == COL(RUNS) + ROOT_ROW
    )
    assert two_rows.get_next(COL(RUNS) + ROOT_ROW, include=True, end=COL(RUNS) + ROOT_ROW) is None
    assert oid_of(two_rows.get_next((), end=mib.ROOT + (2,))) == first_scalar


def test_a_changed_record_is_served_at_once() -> None:
    snapshot = MibSnapshot()
    snapshot.job_changed(record("root", "backup", runs=1, failures=0))
    snapshot.job_changed(record("root", "backup", runs=2, failures=0))
    runs = snapshot.get(COL(RUNS) + ROOT_ROW)
    assert isinstance(runs, Entry) and int(runs.value) == 2
    assert len(snapshot) == len(mib.VALUE_COLUMNS)


def test_owner_rename_moves_the_row() -> None:
    snapshot = MibSnapshot()
    snapshot.job_changed(record("1000", "sync", uid=1000))
    snapshot.job_changed(record("alice", "sync", uid=1000))
    assert snapshot.get(COL(RUNS) + mibvalues.row_index("1000", "sync")) is NO_SUCH_INSTANCE
    assert isinstance(snapshot.get(COL(RUNS) + ALICE), Entry)
    assert len(snapshot) == len(mib.VALUE_COLUMNS)


def test_job_removed(two_rows: MibSnapshot) -> None:
    two_rows.job_removed(JobKey(0, "backup"))
    two_rows.job_removed(JobKey(0, "never-seen"))
    assert two_rows.get(COL(RUNS) + ROOT_ROW) is NO_SUCH_INSTANCE
    assert len(two_rows) == len(mib.Scalar) + len(mib.VALUE_COLUMNS)
    assert oid_of(two_rows.get_next(COL(RUNS))) == COL(RUNS) + ALICE


def test_a_walk_stays_right_when_rows_come_and_go_between_steps() -> None:
    """get_next continues a walk from its last answer; rows changing under it must not
    make it skip or repeat an instance (each answer checked against the naive model)."""
    snapshot, naive = MibSnapshot(), Naive()
    names = ["b", "d", "f", "h"]
    for name in names:
        snapshot.job_changed(naive_put(naive, record("root", name)))
    changes = iter([
        lambda: snapshot.job_changed(naive_put(naive, record("root", "a"))),  # before the cursor
        lambda: snapshot.job_removed(naive_pop(naive, JobKey(0, "d"))),  # after it
        lambda: snapshot.job_changed(naive_put(naive, record("root", "e"))),
        lambda: snapshot.job_removed(naive_pop(naive, JobKey(0, "a"))),
    ])
    oid: Oid = ()
    steps = 0
    while True:
        if steps % 5 == 2:
            next(changes, lambda: None)()
        want = naive.get_next(oid, False, None)
        got = snapshot.get_next(oid)
        assert oid_of(got) == (want and want[0])
        if got is None:
            break
        again = snapshot.get_next(got.oid, include=True)  # include: the answer itself
        assert oid_of(again) == got.oid
        oid, steps = got.oid, steps + 1
    assert steps > len(mib.VALUE_COLUMNS) * 3


def naive_put(naive: Naive, r: JobRecord) -> JobRecord:
    naive.jobs[r.key] = r
    return r


def naive_pop(naive: Naive, key: JobKey) -> JobKey:
    naive.jobs.pop(key)
    return key


def test_a_record_the_mib_cannot_carry_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    snapshot = MibSnapshot()
    with caplog.at_level(logging.ERROR):
        snapshot.job_changed(record("x" * 40, "job"))
        snapshot.job_changed(record("root", "job", last_exit_status=300))
    assert len(snapshot) == 0
    assert "not 1..32 characters" in caplog.text
    assert "cronJobTable" in caplog.text


def test_a_second_job_with_the_same_index_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    snapshot = MibSnapshot()
    snapshot.job_changed(record("root", "backup", uid=0, runs=1))
    with caplog.at_level(logging.ERROR):
        snapshot.job_changed(record("root", "backup", uid=7, runs=2))
    assert "already" in caplog.text
    snapshot.job_removed(JobKey(7, "backup"))
    entry = snapshot.get(COL(RUNS) + ROOT_ROW)
    assert isinstance(entry, Entry) and int(entry.value) == 1


# --- property: the snapshot behaves like the naive model -------------------------------------

# each uid has its own owner names (a name may change, e.g. once the user gets a passwd entry)
OWNERS = {0: ["root", "0"], 1000: ["alice", "1000", "u" * 32]}
names = st.sampled_from(["a", "b", "backup", "db.dump-1", "n" * 64])
times = st.none() | st.floats(min_value=0, max_value=4e9)
counts = st.integers(min_value=0, max_value=2**33)
histories = st.lists(st.integers(1, 2**32 - 1), max_size=3, unique=True).map(
    lambda numbers: tuple(RunRecord(n, 1000.0 + n, n % 300, n % 256, 0, JobState.ok, n % 2 == 0)
                          for n in sorted(numbers)))

records = st.builds(
    lambda uid, pick, name, **f: JobRecord(JobKey(uid, name), pick(OWNERS[uid]), **f),
    uid=st.sampled_from(sorted(OWNERS)),
    pick=st.randoms(use_true_random=False).map(lambda r: r.choice),
    name=names,
    runs=counts,
    failures=st.integers(0, 3),
    last_exit_status=st.none() | st.integers(-1, 255),
    last_start=times,
    state=st.sampled_from(list(JobState)),
    running_pid=st.none() | st.integers(0, 2**22),
    history=histories,
)
stats = st.builds(AgentStats, st.integers(0, 100), counts, counts, st.floats(0, 4e9))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("changed"), records),
        st.tuples(st.just("removed"), st.builds(JobKey, st.sampled_from(sorted(OWNERS)), names)),
        st.tuples(st.just("stats"), stats),
    ),
    max_size=25,
)
subids = st.integers(min_value=0, max_value=2**64)


def probes(instances: list[Oid]) -> st.SearchStrategy[Oid]:
    """OIDs at, around, between and outside the instances."""
    anchors = [(), mib.ROOT, mib.OBJECTS, mib.JOB_ENTRY, *(COL(c) for c in mib.Column),
               mib.RUN_ENTRY, *(mib.run_column_oid(c) for c in mib.RunColumn), *instances]
    base = st.sampled_from(anchors)
    return st.one_of(
        base,
        st.builds(lambda o, n: o[:n], base, st.integers(0, 30)),
        st.builds(lambda o, tail: o + tuple(tail), base, st.lists(subids, max_size=3)),
        st.builds(lambda o, d: o[:-1] + (max(o[-1] + d, 0),) if o else o, base, st.integers(-1, 1)),
        st.lists(subids, max_size=6).map(tuple),
    )


@settings(max_examples=150, deadline=None)
@given(ops=operations, data=st.data())
def test_snapshot_matches_the_naive_model(ops: list[tuple[str, Any]], data: st.DataObject) -> None:
    snapshot, naive = MibSnapshot(), Naive()
    for op, arg in ops:
        if op == "changed":
            snapshot.job_changed(arg)
            naive.jobs = {k: r for k, r in naive.jobs.items() if k != arg.key}
            naive.jobs[arg.key] = arg
        elif op == "removed":
            snapshot.job_removed(arg)
            naive.jobs.pop(arg, None)
        else:
            snapshot.stats_changed(arg)
            naive.stats = arg
    expected = naive.instances()
    assert len(snapshot) == len(expected)
    oids = [o for o, _ in expected]
    for _ in range(20):
        oid = data.draw(probes(oids))
        include = data.draw(st.booleans())
        end = data.draw(st.none() | probes(oids))
        got = snapshot.get(oid)
        want = naive.get(oid)
        if isinstance(want, NoSuch):
            assert got is want
        else:
            assert isinstance(got, Entry) and got.oid == oid and got.value == want
        nxt = snapshot.get_next(oid, include, end)
        want_next = naive.get_next(oid, include, end)
        if want_next is None:
            assert nxt is None
        else:
            assert nxt is not None and (nxt.oid, nxt.value) == want_next
        i = bisect.bisect_right(oids, oid)
        if i < len(oids):  # get_next walks the table in order
            walked = snapshot.get_next(oid)
            assert walked is not None and walked.oid == oids[i]


def test_a_walk_of_thousands_of_rows_gives_every_instance_of_the_naive_model_in_order() -> None:
    """At scale (3,000 rows of 30 owners, most with kept runs): a walk by get_next and a Get of
    every instance give exactly the naive model's instances and values, in its order."""
    snapshot, naive = MibSnapshot(), Naive()
    naive.stats = STATS
    snapshot.stats_changed(STATS)
    for n in range(3000):
        runs = tuple(RunRecord(k, 1000.0 + k, k, k % 256, 0, JobState.ok, False)
                     for k in range(n % 4 * 2, n % 4 * 2 + n % 6))
        job = record(f"user{n % 30}", f"job-{n}", uid=n % 30, runs=n, history=runs)
        snapshot.job_changed(naive_put(naive, job))
    expected = naive.instances()
    walked = []
    entry = snapshot.get_next(())
    while entry is not None:
        walked.append((entry.oid, entry.value))
        entry = snapshot.get_next(entry.oid)
    assert walked == expected
    assert len(snapshot) == len(expected)
    for oid, value in expected[::97]:
        got = snapshot.get(oid)
        assert isinstance(got, Entry) and got.value == value
