"""Produce then consume N records of S bytes through librdkafka (confluent-kafka)
against a running broker, and print records/s and MB/s for each direction.

    .venv/bin/python bench/throughput.py --bootstrap 127.0.0.1:9092 --records 1000000 --size 100

It creates a fresh topic (6 partitions unless --partitions says otherwise),
produces with acks=all, linger 5 ms and 1 MB batches, waits for every delivery
report, then reads every partition from the start with a plain assign()."""

import argparse
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--compression", default="none")
    args = parser.parse_args()

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(timeout=30)

    payload = b"x" * args.size
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": args.compression,
        "queue.buffering.max.messages": 1_000_000,
    })
    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    started = time.perf_counter()
    for i in range(args.records):
        while True:
            try:
                producer.produce(topic, payload, partition=i % args.partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    produce_s = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} deliveries failed, first: {failures[0]}")

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "bench-unused",
        "enable.auto.commit": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(args.partitions)])
    received = 0
    started = time.perf_counter()
    while received < args.records:
        for msg in consumer.consume(num_messages=10_000, timeout=5):
            if msg.error() is None:
                received += 1
    consume_s = time.perf_counter() - started
    consumer.close()

    megabytes = args.records * args.size / 1e6
    print(f"records={args.records} size={args.size}B partitions={args.partitions} compression={args.compression}")
    print(f"produce: {args.records / produce_s:,.0f} records/s, {megabytes / produce_s:,.1f} MB/s ({produce_s:.2f} s)")
    print(f"consume: {args.records / consume_s:,.0f} records/s, {megabytes / consume_s:,.1f} MB/s ({consume_s:.2f} s)")


if __name__ == "__main__":
    main()
