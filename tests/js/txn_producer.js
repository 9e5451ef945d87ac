// A kafkajs transactional producer for tests/test_transactions.py.
//
//   node txn_producer.js '{"brokers": ["127.0.0.1:9092"], "transactionalId": "t", "topic": "out",
//                          "group": "g", "source": "in",
//                          "steps": [{"tag": "c1", "records": 50, "offset": 111, "end": "commit"}, ...]}'
//
// Runs one transaction per step, in order: `records` records with keys "<tag>-k<i>" and values
// "<tag>-v<i>" to partition 0 of `topic`, then sendOffsets for partition 0 of `source` at `offset`
// in `group`, then commit or abort. Prints {"ev": "done"} and exits 0, or {"ev": "error", ...}
// and exits 1.

'use strict';

const { Kafka, logLevel } = require('kafkajs');

const spec = JSON.parse(process.argv[2]);
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const pad = (i) => String(i).padStart(3, '0');

async function main() {
  const kafka = new Kafka({
    clientId: 'strom-tests-js-txn',
    brokers: spec.brokers,
    logLevel: logLevel.ERROR,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const producer = kafka.producer({
    transactionalId: spec.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 60000,
  });
  await producer.connect();
  for (const step of spec.steps) {
    const txn = await producer.transaction();
    const messages = [];
    for (let i = 0; i < step.records; i++) {
      messages.push({ key: `${step.tag}-k${pad(i)}`, value: `${step.tag}-v${pad(i)}`, partition: 0 });
    }
    await txn.send({ topic: spec.topic, acks: -1, messages });
    await txn.sendOffsets({
      consumerGroupId: spec.group,
      topics: [{ topic: spec.source, partitions: [{ partition: 0, offset: String(step.offset) }] }],
    });
    if (step.end === 'commit') await txn.commit(); else await txn.abort();
    emit({ ev: step.end, tag: step.tag });
  }
  await producer.disconnect();
}

const timer = setTimeout(() => { emit({ ev: 'error', error: `timed out after ${spec.timeoutMs} ms` }); process.exit(2); },
  spec.timeoutMs || 90000);
main().then(() => { clearTimeout(timer); emit({ ev: 'done' }); process.exit(0); })
  .catch((e) => { emit({ ev: 'error', error: String(e && e.stack || e), type: e && e.type }); process.exit(1); });
