"""The multi-broker helper (cluster.py) and what a KRaft cluster reports about itself:
DescribeQuorum on client and CONTROLLER listeners, NOT_LEADER_OR_FOLLOWER from followers, and the
quorum after its leader is killed, restarted, paused and resumed.

Until `strom server` accepts `controller.quorum.voters` (it refuses them while brokers of several
nodes cannot join one cluster), the tests that start nodes skip, and only when the node's log
shows exactly that refusal."""

from __future__ import annotations

import tomllib

import pytest

from cluster import Cluster
from conftest import BrokerError
from helpers import wait_until
from test_describe_quorum import describe_quorum_raw, quorum_partition, voters

REFUSAL = "brokers of several nodes do not join one cluster yet"
NOT_LEADER_OR_FOLLOWER = 6


def start_or_skip(cluster: Cluster) -> Cluster:
    try:
        return cluster.start()
    except BrokerError:
        if any(REFUSAL in node.log() for node in cluster.nodes.values()):
            pytest.skip("strom server still refuses controller.quorum.voters")
        raise


def test_every_node_gets_its_own_ports_dirs_and_the_shared_voters(tmp_path):
    c = Cluster(tmp_path, 3, configs={"num.partitions": "2"})
    controller = {i: c.node(i).controller_port for i in (1, 2, 3)}
    assert c.voters == f"1@127.0.0.1:{controller[1]},2@127.0.0.1:{controller[2]},3@127.0.0.1:{controller[3]}"
    ports = [p for n in c.nodes.values() for p in (n.port, n.controller_port, n.metrics_port)]
    assert len(set(ports)) == 9
    assert c.bootstrap == ",".join(f"127.0.0.1:{c.node(i).port}" for i in (1, 2, 3))
    for node_id, node in c.nodes.items():
        path = node.write_config()
        assert path == tmp_path / f"node{node_id}" / "server.toml"
        assert tomllib.loads(path.read_text()) == {
            "node.id": str(node_id),
            "process.roles": "broker,controller",
            "controller.quorum.voters": c.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(tmp_path / f"node{node_id}" / "data"),
            "strom.metrics.listener": f"127.0.0.1:{node.metrics_port}",
            "num.partitions": "2",
        }
        assert node.command()[1:] == ["server", "--config", str(path)]


def test_a_one_voter_kraft_node_describes_its_quorum_on_both_listeners(cluster_factory):
    c = start_or_skip(cluster_factory(1, wait=False))
    node = c.node(1)
    for port in (node.port, node.controller_port):
        described = describe_quorum_raw(node.host, port, 2)
        p = quorum_partition(described)
        assert (p["error_code"], p["leader_id"]) == (0, 1)
        assert [v[0] for v in voters(p)] == [1]
        # Where the controller is reached: the CONTROLLER listener at its voter address.
        assert described["nodes"] == [{"node_id": 1, "listeners": [
            {"name": "CONTROLLER", "host": "127.0.0.1", "port": node.controller_port}]}]


def quorum_of(node) -> dict:
    return quorum_partition(describe_quorum_raw(node.host, node.port, 1))


def leader_of(c: Cluster, ids) -> int:
    """The leader, once exactly one of `ids` answers DescribeQuorum (naming itself) and the others
    say NOT_LEADER_OR_FOLLOWER."""
    def agreed():
        answers = {i: quorum_of(c.node(i)) for i in ids}
        leading = [i for i, p in answers.items() if p["error_code"] == 0 and p["leader_id"] == i]
        others = [p["error_code"] for i, p in answers.items() if i not in leading]
        if len(leading) == 1 and others == [NOT_LEADER_OR_FOLLOWER] * (len(ids) - 1):
            return leading[0]
        return None
    return wait_until(agreed, what="one quorum leader")


def test_three_nodes_report_one_leader_and_its_voters_through_failures(cluster_factory):
    c = start_or_skip(cluster_factory(3, wait=False))
    leader = leader_of(c, [1, 2, 3])
    followers = [i for i in (1, 2, 3) if i != leader]
    for i in followers:
        p = quorum_of(c.node(i))
        assert (p["partition_index"], p["error_code"]) == (0, NOT_LEADER_OR_FOLLOWER)

    def caught_up(node_id, expected_voters):
        p = quorum_of(c.node(node_id))
        if p["error_code"] != 0:
            return None
        ends = dict(voters(p))
        return p if sorted(ends) == expected_voters and set(ends.values()) == {p["high_watermark"]} else None

    p = wait_until(lambda: caught_up(leader, [1, 2, 3]), what="every voter at the high watermark")
    first_epoch = p["leader_epoch"]

    # The leader dies: the others elect one of themselves in a later epoch.
    c.kill(leader)
    new_leader = leader_of(c, followers)
    assert new_leader in followers
    p = quorum_of(c.node(new_leader))
    assert p["leader_epoch"] > first_epoch
    # It comes back and catches up.
    c.restart(leader)
    c.wait_until_ready()
    wait_until(lambda: caught_up(new_leader, [1, 2, 3]), what="the restarted voter caught up")

    # A paused follower stops fetching; once resumed it is caught up again.
    paused = next(i for i in (1, 2, 3) if i != new_leader)
    c.pause(paused)
    c.resume(paused)
    wait_until(lambda: caught_up(new_leader, [1, 2, 3]), what="the resumed voter caught up")
