"""aiokafka (asyncio client): admin, an idempotent compressed producer, and a group
consumer that commits; the exact records and offsets come back, and the commits are
what confluent-kafka's committed() sees."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import TopicPartition

from helpers import consumer

pytestmark = pytest.mark.timeout(120)


def test_aiokafka_produce_group_consume_and_commit(broker):
    async def scenario():
        adm = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await adm.start()
        await adm.create_topics([NewTopic("aio", 3, 1)])
        await adm.close()
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                             compression_type="gzip")
        await p.start()
        sent = []
        for i in range(60):
            md = await p.send_and_wait("aio", key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)])
            sent.append((md.partition, md.offset, b"k%d" % i, b"v%d" % i, [("n", b"%d" % i)]))
        await p.stop()
        c = AIOKafkaConsumer("aio", bootstrap_servers=broker.bootstrap, group_id="aio-group",
                             auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        got = []
        while len(got) < len(sent):
            batches = await asyncio.wait_for(c.getmany(timeout_ms=1000), 30)
            for msgs in batches.values():
                got.extend((m.partition, m.offset, m.key, m.value, list(m.headers)) for m in msgs)
        await c.commit()
        assignment = sorted(tp.partition for tp in c.assignment())
        await c.stop()
        return sent, got, assignment

    sent, got, assignment = asyncio.run(scenario())
    assert sorted(got) == sorted(sent)
    assert assignment == [0, 1, 2]
    ends = {}
    for partition, offset, *_ in sent:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    c = consumer(broker, **{"group.id": "aio-group"})
    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition("aio", p) for p in range(3)], timeout=30)}
    c.close()
    assert committed == {p: ends.get(p, -1001) for p in range(3)}
