"""Classic consumer groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup/OffsetCommit/OffsetFetch) with
real confluent-kafka consumers, each in its own process (test_groups_support.GroupWorker).

Member ids are `<client.id>-<uuid>` and librdkafka's range and roundrobin assignors order members
by member id, so client ids c0 < c1 < c2 make the assignments exact."""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from helpers import admin, create_topic, produce_all, producer, unique
from test_groups_support import (FAST_CONSUMER, GROUP_BROKER_CONFIGS, GroupWorker, partitions_split,
                                 raw_heartbeat_v3, raw_join_group_v5, requires_classic_groups, stop_all, wait_assignments,
                                 wait_committed, wait_consumed)

pytestmark = [requires_classic_groups(), pytest.mark.timeout(150)]

N_PART = 6


def produce_round(broker, topic: str, tag: str, per_partition: int, partitions: int = N_PART) -> dict:
    """per_partition records into each partition; returns {(partition, offset): value}."""
    p = producer(broker)
    recs = [{"partition": i % partitions, "value": f"{tag}-{i}".encode()} for i in range(per_partition * partitions)]
    return {(d.partition, d.offset): d.value.decode() for d in produce_all(p, topic, recs)}


def end_positions(delivered: dict) -> dict[int, int]:
    out: dict[int, int] = {}
    for p, o in delivered:
        out[p] = max(out.get(p, 0), o + 1)
    return out


def committed_offsets(broker, group: str, topic: str, partitions: int = N_PART) -> dict[int, int]:
    adm = admin(broker)
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    res = adm.list_consumer_group_offsets([req])[group].result(timeout=30)
    assert res.group_id == group
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"{tp}: {tp.error}"
        out[tp.partition] = tp.offset
    return out


def assert_once_by_owner(workers, delivered: dict, owners: dict[int, GroupWorker] | None, marks: dict):
    """Every record in `delivered` came exactly once, from the worker that owns its partition (unless
    owners is None), and no worker got anything else after its mark."""
    got: dict = {}
    for w in workers:
        for p, o, v in w.records(marks[w.name]):
            assert (p, o) in delivered, f"{w.name} read {p}@{o} ({v!r}), which is not in this round"
            assert (p, o) not in got, f"{p}@{o} delivered twice: {got[(p, o)]} and {w.name}"
            got[(p, o)] = w.name
            assert v == delivered[(p, o)]
            assert owners is None or owners[p] is w, f"{p}@{o} read by {w.name}, owner is {owners[p].name}"
    assert set(got) == set(delivered)


def worker(broker, group, topic, name, **conf):
    return GroupWorker(broker.bootstrap, group, [topic] if isinstance(topic, str) else topic, name,
                       {**FAST_CONSUMER, **conf})


# --- three members: join, clean leave, kill -9, restart of the whole group ------------------------

def test_three_members_leave_kill_and_resume(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("grp3"), unique("g3")
    create_topic(broker, topic, N_PART)
    ws = [worker(broker, group, topic, f"c{i}", **{"partition.assignment.strategy": "range"}) for i in range(3)]
    c0, c1, c2 = ws
    try:
        # Range over member ids c0-* < c1-* < c2-*: two consecutive partitions each.
        wait_assignments(ws, [{0, 1}, {2, 3}, {4, 5}], what="range 2/2/2")
        marks = {w.name: w.mark() for w in ws}
        r1 = produce_round(broker, topic, "r1", 10)
        wait_consumed(ws, r1)
        wait_committed(ws, end_positions(r1))
        assert_once_by_owner(ws, r1, {0: c0, 1: c0, 2: c1, 3: c1, 4: c2, 5: c2}, marks)
        assert committed_offsets(broker, group, topic) == end_positions(r1)

        # c2 leaves cleanly (LeaveGroup): the other two rebalance at once to 3 partitions each.
        left_at = time.monotonic()
        assert c2.close() == 0
        wait_assignments([c0, c1], [{0, 1, 2}, {3, 4, 5}], what="range 3/3 after c2 left")
        took = time.monotonic() - left_at
        assert took < 5.5, f"rebalance after a clean leave took {took:.1f}s (a LeaveGroup must not wait for the session timeout)"
        assert re.search(rf'preparing to rebalance group group={group} .*reason="members left through LeaveGroup"',
                         broker.log())
        marks = {w.name: w.mark() for w in (c0, c1)}
        r2 = produce_round(broker, topic, "r2", 10)
        wait_consumed([c0, c1], r2)
        wait_committed([c0, c1], end_positions({**r1, **r2}))
        # c1 picked up 4 and 5 at c2's committed offsets: none of r1 again.
        assert_once_by_owner([c0, c1], r2, {0: c0, 1: c0, 2: c0, 3: c1, 4: c1, 5: c1}, marks)

        # c1 is killed: no LeaveGroup, so its partitions move only once its session (6 s) expires.
        mark0 = c0.mark()
        c1.kill()
        killed_at = time.monotonic()
        r3 = produce_round(broker, topic, "r3", 10)
        wait_assignments([c0], [set(range(N_PART))], timeout_s=40, what="c0 owning everything after c1's session expired")
        took = time.monotonic() - killed_at
        assert took >= 5.0, f"c1's partitions moved {took:.1f}s after kill -9, before its 6 s session could expire"
        expired = re.findall(rf"member's session expired.*group={group} member=(\S+)", broker.log())
        assert [m.split("-")[0] for m in expired] == ["c1"], expired
        wait_consumed([c0], r3)
        wait_committed([c0], end_positions({**r1, **r2, **r3}))
        assert_once_by_owner([c0], r3, {p: c0 for p in range(N_PART)}, {"c0": mark0})
        assert committed_offsets(broker, group, topic) == end_positions({**r1, **r2, **r3})
        assert c0.close() == 0

        # Whole group stopped; new records; a new group generation resumes exactly at the commits.
        r4 = produce_round(broker, topic, "r4", 5)
        ws2 = [worker(broker, group, topic, f"c{i}", **{"partition.assignment.strategy": "range"}) for i in range(2)]
        try:
            wait_assignments(ws2, [{0, 1, 2}, {3, 4, 5}], what="restarted group 3/3")
            wait_consumed(ws2, r4)
            wait_committed(ws2, end_positions({**r1, **r2, **r3, **r4}))
            # Whoever joined first may have read from all six partitions before the second joined:
            # only "exactly r4, once" is fixed here.
            assert_once_by_owner(ws2, r4, None, {"c0": 0, "c1": 0})
        finally:
            for w in ws2:
                w.close()
        # Across the whole run, no member saw a commit fail and nothing was read twice.
        everyone = ws + ws2
        for w in everyone:
            assert not [e for e in w.errors() if e["ev"] == "commit_error"], w.errors()
        all_reads = [(p, o) for w in everyone for p, o, _ in w.records()]
        assert len(all_reads) == len(set(all_reads)) == len(r1) + len(r2) + len(r3) + len(r4)
    finally:
        stop_all(ws)


# --- assignors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy, expected", [
    # Topics a (4 partitions) and b (4 partitions), members c0 < c1 < c2.
    # range: per topic, 4 over 3 members, the first member gets the extra one.
    ("range", [{("a", 0), ("a", 1), ("b", 0), ("b", 1)}, {("a", 2), ("b", 2)}, {("a", 3), ("b", 3)}]),
    # roundrobin: all 8 partitions sorted by topic then partition, dealt to c0, c1, c2, c0, ...
    ("roundrobin", [{("a", 0), ("a", 3), ("b", 2)}, {("a", 1), ("b", 0), ("b", 3)}, {("a", 2), ("b", 1)}]),
])
def test_eager_assignors_exact(broker_factory, strategy, expected):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    base = unique("asg")
    names = {"a": f"{base}-a", "b": f"{base}-b"}
    for t in names.values():
        create_topic(broker, t, 4)
    group = unique(f"g-{strategy}")
    ws = [GroupWorker(broker.bootstrap, group, sorted(names.values()), f"c{i}",
                      {**FAST_CONSUMER, "partition.assignment.strategy": strategy}) for i in range(3)]
    want = [{(names[t], p) for t, p in e} for e in expected]
    try:
        deadline = time.monotonic() + 45
        while [w.owned_tp() for w in ws] != want:
            assert time.monotonic() < deadline, f"{strategy}: owned {[w.owned_tp() for w in ws]}, want {want}"
            time.sleep(0.05)
        adm = admin(broker)  # keep a reference: a collected AdminClient never completes its futures
        desc = adm.describe_consumer_groups([group])[group].result(timeout=30)
        assert desc.partition_assignor == strategy
        assert desc.state.name == "STABLE"
        by_client = {m.client_id: {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                     for m in desc.members}
        assert by_client == {f"c{i}": want[i] for i in range(3)}
        for m in desc.members:
            assert m.member_id.startswith(m.client_id + "-")
    finally:
        for w in ws:
            w.close()


def test_cooperative_sticky_incremental(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("coop"), unique("g-coop")
    create_topic(broker, topic, N_PART)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    ws = [worker(broker, group, topic, f"c{i}", **conf) for i in range(3)]
    c0, c1, c2 = ws
    extra = None
    try:
        before = wait_assignments(ws, lambda o: partitions_split(o, N_PART, [2, 2, 2]), what="2/2/2")
        marks = {w.name: w.mark() for w in (c0, c1)}
        # c2 leaves: c0 and c1 keep what they had and each gain one of c2's two partitions.
        assert c2.close() == 0
        after = wait_assignments([c0, c1], lambda o: partitions_split(o, N_PART, [3, 3]), what="3/3")
        for w, old, new in zip((c0, c1), before, after):
            assert old < new, f"{w.name}: had {old}, now {new}: a sticky assignor keeps what a member owns"
            assert w.of("revoke", marks[w.name]) == [] and w.of("lost", marks[w.name]) == [], w.snapshot()[marks[w.name]:]
            gained = {p for e in w.of("assign", marks[w.name]) for _, p in e["parts"]}
            assert gained == new - old, f"{w.name}: incremental assigns {gained}, expected {new - old}"
        assert after[0] | after[1] == set(range(N_PART))

        # A new member joins: only the two partitions it takes are revoked (one from each).
        marks = {w.name: w.mark() for w in (c0, c1)}
        extra = worker(broker, group, topic, "c3", **conf)
        final = wait_assignments([c0, c1, extra], lambda o: partitions_split(o, N_PART, [2, 2, 2]), what="2/2/2 with c3")
        revoked = []
        for w, had, now in zip((c0, c1), after, final[:2]):
            assert now < had, f"{w.name}: had {had}, now {now}"
            r = {p for e in w.of("revoke", marks[w.name]) for _, p in e["parts"]}
            assert r == had - now, f"{w.name} revoked {r}; only the moved partitions {had - now} may be revoked"
            assert len(r) == 1
            assert w.of("lost", marks[w.name]) == []
            revoked += r
        assert set(revoked) == final[2]
        # Each partition's records go to its final owner, once.
        marks = {w.name: w.mark() for w in (c0, c1, extra)}
        r1 = produce_round(broker, topic, "r1", 5)
        wait_consumed([c0, c1, extra], r1)
        owners = {p: w for w, o in zip((c0, c1, extra), final) for p in o}
        assert_once_by_owner([c0, c1, extra], r1, owners, marks)
    finally:
        stop_all(ws + ([extra] if extra else []))


# --- static membership ------------------------------------------------------------------------------

def _rebalance_cnt(w: GroupWorker) -> int | None:
    s = w.of("stats")
    return s[-1]["cgrp"].get("rebalance_cnt") if s else None


def test_static_member_restart_no_rebalance_and_fencing(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("static"), unique("g-static")
    create_topic(broker, topic, N_PART)

    def static(name, iid):
        return GroupWorker(broker.bootstrap, group, [topic], name,
                           {**FAST_CONSUMER, "session.timeout.ms": 30000, "group.instance.id": iid,
                            "partition.assignment.strategy": "range"}, stats=True)

    ws = [static(f"c{i}", f"s{i}") for i in range(3)]
    s0, s1, s2 = ws
    extra: list[GroupWorker] = []
    adm = admin(broker)
    try:
        # librdkafka's range assignor orders static members by group.instance.id.
        wait_assignments(ws, [{0, 1}, {2, 3}, {4, 5}], what="static range 2/2/2")
        for w in ws:
            w.wait(lambda w: _rebalance_cnt(w) is not None, what="stats")
        desc = adm.describe_consumer_groups([group])[group].result(timeout=30)
        old_ids = {m.group_instance_id: m.member_id for m in desc.members}
        assert set(old_ids) == {"s0", "s1", "s2"}
        for iid, mid in old_ids.items():
            assert mid.startswith(iid + "-"), f"static member id {mid} should start with its instance id {iid}"

        # s2 goes away without LeaveGroup (static members don't send one) and comes back within the
        # session timeout: it gets its old partitions, s0 and s1 see no rebalance.
        marks = {w.name: w.mark() for w in (s0, s1)}
        for w in (s0, s1):  # stats come every 200 ms: take the count from reports made after the mark
            w.wait(lambda w, m=marks[w.name]: len(w.of("stats", m)) >= 2, what="fresh stats")
        counts = {w.name: _rebalance_cnt(w) for w in (s0, s1)}
        assert s2.close() == 0
        s2b = static("c2", "s2")
        extra.append(s2b)
        wait_assignments([s2b], [{4, 5}], what="restarted s2 gets 4,5 back")
        # Wait several heartbeat intervals (and stats reports) for any rebalance to show.
        for w in (s0, s1):
            m = w.mark()
            w.wait(lambda w, m=m: len(w.of("stats", m)) >= 5, what="stats after s2's return")
        for w in (s0, s1):
            evs = [e for e in w.snapshot()[marks[w.name]:] if e["ev"] in ("assign", "revoke", "lost", "assignment")]
            assert evs == [], f"{w.name} saw a rebalance when static member s2 restarted: {evs}"
            assert _rebalance_cnt(w) == counts[w.name]
        desc = adm.describe_consumer_groups([group])[group].result(timeout=30)
        assert desc.state.name == "STABLE"
        new_ids = {m.group_instance_id: m.member_id for m in desc.members}
        assert set(new_ids) == {"s0", "s1", "s2"}
        assert new_ids["s0"] == old_ids["s0"] and new_ids["s1"] == old_ids["s1"]
        assert new_ids["s2"] != old_ids["s2"] and new_ids["s2"].startswith("s2-")
        assert {(m.group_instance_id, tp.partition) for m in desc.members for tp in m.assignment.topic_partitions} \
            == {("s0", 0), ("s0", 1), ("s1", 2), ("s1", 3), ("s2", 4), ("s2", 5)}

        # The old s2 member id is fenced now.
        # (The coordinator checks the instance id before the generation, so any generation does.)
        assert raw_heartbeat_v3(broker, group, 1, old_ids["s2"], "s2") == 82, "FENCED_INSTANCE_ID"

        # A second live consumer with s0's instance id takes over s0's membership; the old s0 is fenced:
        # librdkafka turns FENCED_INSTANCE_ID into a fatal error (_FATAL, with the cause as text).
        s0_mark = s0.mark()
        s0b = static("c0", "s0")
        extra.append(s0b)
        wait_assignments([s0b], [{0, 1}], what="second s0 gets 0,1")
        s0.wait(lambda w: [e for e in w.of("error", s0_mark) if e["fatal"]], timeout_s=30, what="old s0 fenced")
        fatal = [e for e in s0.of("error", s0_mark) if e["fatal"]][0]
        assert fatal["name"] == "_FATAL", fatal
        assert "Static consumer fenced by other consumer with same group.instance.id" in fatal["str"], fatal
        # s1 and s2 kept their partitions through all of it.
        assert (s1.owned(), s2b.owned()) == ({2, 3}, {4, 5})
        desc = adm.describe_consumer_groups([group])[group].result(timeout=30)
        ids = {m.group_instance_id: m.member_id for m in desc.members}
        assert ids["s0"] != old_ids["s0"]
        assert len(desc.members) == 3
    finally:
        stop_all(ws + extra)


# --- error codes real clients only log ------------------------------------------------------------

def test_join_and_heartbeat_error_codes(broker_factory):
    """JoinGroup v5 / Heartbeat v3 by hand: MEMBER_ID_REQUIRED (79) hands out a member id first
    (KIP-394), then the join completes; INVALID_SESSION_TIMEOUT (26) outside the broker's bounds;
    ILLEGAL_GENERATION (22) and UNKNOWN_MEMBER_ID (25) on heartbeats."""
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("raw"), unique("g-raw")
    create_topic(broker, topic, 2)
    assert raw_join_group_v5(broker, group, "", None, [topic], session_ms=3000)["error"] == 26
    assert raw_join_group_v5(broker, group, "", None, [topic], session_ms=1_800_001)["error"] == 26
    first = raw_join_group_v5(broker, group, "", None, [topic])
    assert first["error"] == 79, first
    assert first["member_id"].startswith("strom-tests-"), first  # <client id>-<uuid>
    joined = raw_join_group_v5(broker, group, first["member_id"], None, [topic])
    assert joined["error"] == 0, joined
    assert (joined["member_id"], joined["leader"], joined["protocol"]) == (first["member_id"], first["member_id"], "range")
    assert joined["generation"] == 1
    mid = joined["member_id"]
    assert raw_heartbeat_v3(broker, group, 1, mid, None) == 0
    assert raw_heartbeat_v3(broker, group, 2, mid, None) == 22
    assert raw_heartbeat_v3(broker, group, 1, "strom-tests-nosuch", None) == 25
    assert raw_heartbeat_v3(broker, unique("g-none"), 1, mid, None) == 25


# --- records keep coming while the group changes ----------------------------------------------------

class BackgroundProducer:
    """Produces round-robin over the partitions every few ms on a thread until stopped; `delivered`
    is {(partition, offset): value} of every acknowledged record."""

    def __init__(self, broker, topic, partitions, interval_s=0.004):
        import threading
        self.p = producer(broker, **{"linger.ms": 1})
        self.topic, self.partitions, self.interval_s = topic, partitions, interval_s
        self.delivered: dict = {}
        self.errors: list = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _cb(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.delivered[(msg.partition(), msg.offset())] = msg.value().decode()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            self.p.produce(self.topic, value=f"bg-{i}".encode(), partition=i % self.partitions, on_delivery=self._cb)
            self.p.poll(0)
            i += 1
            time.sleep(self.interval_s)
        self.p.flush(30)

    def stop(self) -> dict:
        self._stop.set()
        self._t.join(60)
        assert not self.errors, self.errors[:3]
        return dict(self.delivered)


def test_records_produced_through_rebalances(broker_factory):
    """A producer runs the whole time while members join, leave cleanly and get killed. At-least-once:
    every acknowledged record is consumed; a record is only ever read again if no commit covering it
    had been acknowledged before the re-reader got the partition (exactly once per committed position)."""
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("bg"), unique("g-bg")
    create_topic(broker, topic, N_PART)
    conf = {"partition.assignment.strategy": "range"}
    bg = BackgroundProducer(broker, topic, N_PART)
    ws: list[GroupWorker] = []
    try:
        ws.append(worker(broker, group, topic, "c0", **conf))
        wait_assignments(ws, [set(range(N_PART))], what="c0 alone")
        ws.append(worker(broker, group, topic, "c1", **conf))
        ws.append(worker(broker, group, topic, "c2", **conf))
        wait_assignments(ws, [{0, 1}, {2, 3}, {4, 5}], what="2/2/2")
        ws[0].wait(lambda w: len(w.records()) > 50, what="records flowing")
        assert ws[2].close() == 0
        wait_assignments(ws[:2], [{0, 1, 2}, {3, 4, 5}], what="3/3")
        ws[1].wait(lambda w: len(w.of("commit")) > 5, what="c1 committing")
        ws[1].kill()
        wait_assignments(ws[:1], [set(range(N_PART))], timeout_s=40, what="c0 alone after c1's session expired")
        ws.append(worker(broker, group, topic, "c3", **conf))
        wait_assignments([ws[0], ws[3]], [{0, 1, 2}, {3, 4, 5}], what="c0 + c3")
        delivered = bg.stop()
        ends = end_positions(delivered)
        wait_consumed(ws, delivered, timeout_s=60)  # the departed members' reads count too
        wait_committed([ws[0], ws[3]], ends)
        for w in (ws[0], ws[3]):
            assert w.close() == 0
        assert committed_offsets(broker, group, topic) == ends

        # Replay the run from the workers' reports (timestamps are when this process read them).
        events = sorted(((e["t"], w.name, e) for w in ws for e in w.snapshot()), key=lambda x: x[0])
        acked: dict[int, int] = {}               # highest acknowledged commit per partition so far
        floor: dict[tuple[str, int], int] = {}   # per (worker, partition): acked commit when it got it
        reads: dict[tuple[int, int], int] = {}
        for _, name, e in events:
            if e["ev"] == "commit":
                for _, p, o in e["offsets"]:
                    acked[p] = max(acked.get(p, 0), o)
            elif e["ev"] == "assignment":
                for _, p in e["parts"]:
                    floor.setdefault((name, p), acked.get(p, 0))
                owned_now = {p for _, p in e["parts"]}
                for key in [k for k in floor if k[0] == name and k[1] not in owned_now]:
                    del floor[key]
            elif e["ev"] == "msg":
                p, o = e["p"], e["o"]
                assert e["v"] == delivered.get((p, o), e["v"])
                reads[(p, o)] = reads.get((p, o), 0) + 1
                if reads[(p, o)] > 1:
                    f = floor.get((name, p), 0)
                    assert o >= f, (f"{name} re-read {p}@{o}, below the commit {f} acknowledged before it "
                                    f"got partition {p}")
        missing = set(delivered) - set(reads)
        assert not missing, f"{len(missing)} acknowledged records never consumed, e.g. {sorted(missing)[:5]}"
        assert set(reads) == set(delivered)
        # Re-reads can only come from the kill -9 (what c1 read but had not committed yet): c1 held
        # partitions 3, 4 and 5 then, and its consume loop commits each batch right after reading it.
        dups = {k: n for k, n in reads.items() if n > 1}
        assert {p for p, _ in dups} <= {3, 4, 5}, sorted(dups)[:10]
        assert all(n == 2 for n in dups.values())
    finally:
        bg.stop() if bg._t.is_alive() else None
        stop_all(ws)


def test_static_member_expiry_and_admin_removal(broker_factory):
    """A static member that goes away (no LeaveGroup) loses its partitions only at its session timeout;
    an admin LeaveGroup by group.instance.id (KIP-345, kafka-python remove_group_members) removes a
    departed static member at once. Removing an unknown instance id is UNKNOWN_MEMBER_ID per member."""
    from kafka.admin import MemberToRemove
    from kafka import errors as kerr

    from helpers import kp_admin
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("sx"), unique("g-sx")
    create_topic(broker, topic, N_PART)

    def static(iid):
        return GroupWorker(broker.bootstrap, group, [topic], f"c-{iid}",
                           {**FAST_CONSUMER, "group.instance.id": iid, "partition.assignment.strategy": "range"})

    ws = [static("s0"), static("s1")]
    kadm = kp_admin(broker)
    try:
        wait_assignments(ws, [{0, 1, 2}, {3, 4, 5}], what="static 3/3")
        ws[1].kill()
        gone = time.monotonic()
        wait_assignments(ws[:1], [set(range(N_PART))], timeout_s=40, what="s0 owning all after s1's session")
        took = time.monotonic() - gone
        assert took >= 5.0, f"a static member's partitions moved {took:.1f}s after it vanished (session is 6 s)"

        ws.append(static("s1"))
        wait_assignments([ws[0], ws[2]], [{0, 1, 2}, {3, 4, 5}], what="s1 back, 3/3")
        assert ws[2].close() == 0  # static: no LeaveGroup, s1 stays a member until its session ends
        gone = time.monotonic()
        res = kadm.remove_group_members(group, [MemberToRemove(group_instance_id="s1")])
        assert list(res.values()) == [kerr.NoError], res
        wait_assignments(ws[:1], [set(range(N_PART))], what="s0 owning all after s1's removal")
        took = time.monotonic() - gone
        assert took < 5.0, f"removing s1 took {took:.1f}s to rebalance; it should not wait for the session"
        res = kadm.remove_group_members(group, [MemberToRemove(group_instance_id="nobody")])
        assert list(res.values()) == [kerr.UnknownMemberIdError], res
    finally:
        kadm.close()
        stop_all(ws)
