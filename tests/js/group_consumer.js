// A kafkajs consumer-group member for tests/test_groups_kafkajs.py.
//
//   node group_consumer.js '{"brokers": ["127.0.0.1:9092"], "groupId": "g", "topic": "t",
//                            "clientId": "js0", "expect": 30, "timeoutMs": 60000}'
//
// Subscribes, commits each record's offset + 1 right after handling it, and stops (disconnect,
// which sends LeaveGroup) once `expect` records arrived, or when a line "stop" comes on stdin.
// Reports JSON lines on stdout: {"ev": "join", ...}, {"ev": "msg", "p", "o", "v"},
// {"ev": "commit", "p", "o"}, {"ev": "crash", "error"}, {"ev": "done", "count"}.
// Exit code: 0 when done, 2 on timeout, 1 on a consumer crash.

'use strict';

const { Kafka, logLevel } = require('kafkajs');
const readline = require('readline');

const spec = JSON.parse(process.argv[2]);
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const kafka = new Kafka({
  clientId: spec.clientId || 'strom-tests-js',
  brokers: spec.brokers,
  logLevel: logLevel.ERROR,
  retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
});

const consumer = kafka.consumer({
  groupId: spec.groupId,
  sessionTimeout: spec.sessionTimeout || 6000,
  heartbeatInterval: 300,
  rebalanceTimeout: 10000,
  maxWaitTimeInMs: 100,
});

let count = 0;
let stopping = false;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await consumer.disconnect();
  } catch (e) {
    emit({ ev: 'disconnect_error', error: String(e) });
  }
  emit({ ev: 'done', count });
  process.exit(code);
}

const timer = setTimeout(() => {
  emit({ ev: 'timeout', count });
  process.exit(2);
}, spec.timeoutMs || 60000);

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stop') stop(0);
});

consumer.on(consumer.events.GROUP_JOIN, (e) => {
  const p = e.payload;
  emit({ ev: 'join', memberId: p.memberId, leaderId: p.leaderId, isLeader: p.isLeader,
         groupProtocol: p.groupProtocol, assignment: p.memberAssignment });
});
consumer.on(consumer.events.CRASH, (e) => {
  emit({ ev: 'crash', error: String(e.payload.error && e.payload.error.message), restart: e.payload.restart });
});

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topics: [spec.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      if (stopping) return;
      const offset = Number(message.offset);
      emit({ ev: 'msg', topic, p: partition, o: offset, v: message.value === null ? null : message.value.toString() });
      await consumer.commitOffsets([{ topic, partition, offset: String(offset + 1) }]);
      emit({ ev: 'commit', p: partition, o: offset + 1 });
      count += 1;
      if (spec.expect && count >= spec.expect) {
        clearTimeout(timer);
        setImmediate(() => stop(0));
      }
    },
  });
  emit({ ev: 'running' });
}

main().catch((e) => {
  emit({ ev: 'crash', error: String(e) });
  process.exit(1);
});
