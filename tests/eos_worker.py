"""A consume-transform-produce worker for test_eos_pipeline.py, run as its own process so a test
can `kill -9` it.

It reads the input topic as a read_committed member of a consumer group (static membership, so a
restarted worker takes over its predecessor's partitions at once), and for each polled batch opens
a transaction, writes one output record per input record to the output partition with the same
number (key kept, value prefixed with "<input partition>:<input offset>:"), adds the next input
offsets with send_offsets_to_transaction and commits. It exits 0 once the group's committed offsets
reach the input's end offsets.

Progress goes to a file, one line each:
  S                      producer initialised (any transaction of a predecessor is aborted by then)
  F <n>                  <n> records of the open transaction are in the log and its offsets added
                         (TxnOffsetCommit done), nothing committed yet
  C <n> <total>          a transaction of <n> records committed; <total> committed by this process
  A <n> <reason>         a transaction of <n> records aborted after an abortable error
  DONE                   the committed offsets equal the input's end offsets
If the hold file exists and holds a number N, the worker stops after its first "F" line once it has
committed at least N records itself, and waits while the file exists: the test kills it there, so
each kill leaves a transaction with records in the log open.

Usage: eos_worker.py CLIENT BOOTSTRAP INPUT OUTPUT GROUP TXN_ID ENDS PROGRESS HOLD [BATCH]
CLIENT is confluent, kafka-python or aiokafka; ENDS the input's end offsets, comma-separated.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

TXN_DEADLINE_S = 90  # one transaction (with retries) never takes longer against a live broker
FATAL_EXIT = 2


class Progress:
    def __init__(self, path: str, hold_path: str):
        self.out = open(path, "a", buffering=1)
        self.hold_path = hold_path
        self.committed = 0

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def flushed(self, n: int) -> None:
        self.line(f"F {n}")
        threshold = self.hold_threshold()
        if threshold is not None and self.committed >= threshold:
            while os.path.exists(self.hold_path):
                time.sleep(0.02)

    async def flushed_async(self, n: int) -> None:
        self.line(f"F {n}")
        threshold = self.hold_threshold()
        if threshold is not None and self.committed >= threshold:
            while os.path.exists(self.hold_path):
                await asyncio.sleep(0.02)

    def hold_threshold(self) -> int | None:
        try:
            with open(self.hold_path) as f:
                return int(f.read().strip() or "0")
        except (FileNotFoundError, ValueError):
            return None

    def commit(self, n: int) -> None:
        self.committed += n
        self.line(f"C {n} {self.committed}")


def transform(partition: int, offset: int, value: bytes) -> bytes:
    return b"%d:%d:" % (partition, offset) + value


# --- confluent-kafka (librdkafka) --------------------------------------------------------

def run_confluent(bootstrap, input_topic, output_topic, group, txn_id, ends, progress, batch) -> int:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                         "transaction.timeout.ms": 60_000, "message.timeout.ms": 55_000,
                         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
                         # See txn_helpers.txn_producer: re-bootstrap strands the group coordinator.
                         "metadata.recovery.strategy": "none"})
    # Initialising first fences a predecessor and aborts its open transaction, so the committed
    # offsets the consumer starts from are stable.
    producer.init_transactions(TXN_DEADLINE_S)
    progress.line("S")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": f"{txn_id}-member",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 10_000,
                         "heartbeat.interval.ms": 1000,
                         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    consumer.subscribe([input_topic])
    all_tps = [TopicPartition(input_topic, p) for p in range(len(ends))]

    def done() -> bool:
        got = consumer.committed(all_tps, timeout=30)
        return all(tp.error is None and tp.offset == ends[tp.partition] for tp in got)

    def rewind() -> None:
        assigned = consumer.assignment()
        if not assigned:
            return
        for tp in consumer.committed(assigned, timeout=30):
            consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))

    def with_retries(call):
        """Runs a transactional call, again while it fails with a retriable error."""
        deadline = time.monotonic() + TXN_DEADLINE_S
        while True:
            try:
                return call()
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise

    while True:
        msgs = consumer.consume(num_messages=batch, timeout=1.0)
        data = []
        for m in msgs:
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            data.append(m)
        if not data:
            if done():
                progress.line("DONE")
                consumer.close()
                return 0
            continue
        next_offsets: dict[int, int] = {}
        try:
            producer.begin_transaction()
            for m in data:
                while True:
                    try:
                        producer.produce(output_topic, key=m.key(), partition=m.partition(),
                                         value=transform(m.partition(), m.offset(), m.value()))
                        break
                    except BufferError:
                        producer.poll(0.05)
                next_offsets[m.partition()] = m.offset() + 1
            left = producer.flush(TXN_DEADLINE_S)
            offsets = [TopicPartition(input_topic, p, o) for p, o in sorted(next_offsets.items())]
            with_retries(lambda: producer.send_offsets_to_transaction(
                offsets, consumer.consumer_group_metadata(), TXN_DEADLINE_S))
            if left == 0:
                progress.flushed(len(data))
            with_retries(lambda: producer.commit_transaction(TXN_DEADLINE_S))
        except KafkaException as e:
            err = e.args[0]
            if err.fatal() or not err.txn_requires_abort():
                progress.line(f"X fatal {err.code()} {err.str()!r}")
                return FATAL_EXIT
            progress.line(f"A {len(data)} {err.code()}")
            with_retries(lambda: producer.abort_transaction(TXN_DEADLINE_S))
            rewind()
            continue
        progress.commit(len(data))


# --- kafka-python -------------------------------------------------------------------------

def run_kafka_python(bootstrap, input_topic, output_topic, group, txn_id, ends, progress, batch) -> int:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id, linger_ms=5,
                             transaction_timeout_ms=60_000, max_block_ms=TXN_DEADLINE_S * 1000)
    producer.init_transactions()
    progress.line("S")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, group_instance_id=f"{txn_id}-member",
                             isolation_level="read_committed", enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=10_000, heartbeat_interval_ms=1000)
    consumer.subscribe([input_topic])
    all_tps = [TopicPartition(input_topic, p) for p in range(len(ends))]

    def done() -> bool:
        return all(consumer.committed(tp) == ends[tp.partition] for tp in all_tps)

    while True:
        polled = consumer.poll(timeout_ms=1000, max_records=batch)
        data = [r for records in polled.values() for r in records]
        if not data:
            if done():
                progress.line("DONE")
                consumer.close()
                producer.close()
                return 0
            continue
        producer.begin_transaction()
        next_offsets: dict[int, int] = {}
        for r in data:
            producer.send(output_topic, key=r.key, value=transform(r.partition, r.offset, r.value),
                          partition=r.partition)
            next_offsets[r.partition] = r.offset + 1
        producer.flush(timeout=TXN_DEADLINE_S)
        producer.send_offsets_to_transaction(
            {TopicPartition(input_topic, p): OffsetAndMetadata(o, "", -1) for p, o in next_offsets.items()},
            consumer.group_metadata())
        progress.flushed(len(data))
        producer.commit_transaction()
        progress.commit(len(data))


# --- aiokafka -------------------------------------------------------------------------------

async def run_aiokafka(bootstrap, input_topic, output_topic, group, txn_id, ends, progress, batch) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id, linger_ms=5,
                                transaction_timeout_ms=60_000)
    await producer.start()  # InitProducerId for the transactional id
    progress.line("S")
    consumer = AIOKafkaConsumer(input_topic, bootstrap_servers=bootstrap, group_id=group,
                                group_instance_id=f"{txn_id}-member", isolation_level="read_committed",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=10_000, heartbeat_interval_ms=1000)
    await consumer.start()
    all_tps = [TopicPartition(input_topic, p) for p in range(len(ends))]
    try:
        while True:
            polled = await consumer.getmany(timeout_ms=1000, max_records=batch)
            data = [r for records in polled.values() for r in records]
            if not data:
                committed = [await consumer.committed(tp) for tp in all_tps]
                if committed == list(ends):
                    progress.line("DONE")
                    return 0
                continue
            await producer.begin_transaction()
            next_offsets: dict[int, int] = {}
            for r in data:
                await producer.send(output_topic, key=r.key, value=transform(r.partition, r.offset, r.value),
                                    partition=r.partition)
                next_offsets[r.partition] = r.offset + 1
            await producer.flush()
            # aiokafka sends TxnOffsetCommit with the group id only (no generation or member id).
            await producer.send_offsets_to_transaction(
                {TopicPartition(input_topic, p): o for p, o in next_offsets.items()}, group)
            await progress.flushed_async(len(data))
            await producer.commit_transaction()
            progress.commit(len(data))
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str]) -> int:
    client, bootstrap, input_topic, output_topic, group, txn_id, ends_arg, progress_path, hold_path = argv[:9]
    batch = int(argv[9]) if len(argv) > 9 else 500
    ends = [int(x) for x in ends_arg.split(",")]
    progress = Progress(progress_path, hold_path)
    args = (bootstrap, input_topic, output_topic, group, txn_id, ends, progress, batch)
    if client == "confluent":
        return run_confluent(*args)
    if client == "kafka-python":
        return run_kafka_python(*args)
    if client == "aiokafka":
        return asyncio.run(run_aiokafka(*args))
    raise SystemExit(f"unknown client {client}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
