//! An entry point for fuzzing (feature `fuzzing`, used by `fuzz/`): a real
//! one-node broker in this process, with no listener bound, that answers
//! request frames through the path a connection takes (header peek, API
//! table, decode, handler, encode).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, InitProducerIdRequest, ProducerId, RequestHeader, ResponseHeader,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::apis::Caller;
use crate::broker::Broker;
use crate::config::BrokerConfig;

/// The `broker` target's configs (Kafka names) over the defaults: one partition per
/// internal topic and no rebalance delay, so inputs are answered at once.
pub const SEEDED_CONFIGS: &[(&str, &str)] = &[
    ("offsets.topic.num.partitions", "1"),
    ("transaction.state.log.num.partitions", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
    ("log.segment.bytes", "1048576"),
];

/// The topics `fuzz/capture_seeds.py` creates (name, partitions, compacted), so the
/// seeds' produce and fetch requests find them whatever order libFuzzer runs them in.
const SEED_TOPICS: &[(&str, i32, bool)] = &[
    ("seed-plain", 4, false),
    ("seed-compact", 1, true),
    ("seed-txn", 2, false),
    ("seed-kp", 2, false),
    ("seed-kcat", 1, false),
];

/// The InitProducerId calls of `fuzz/capture_seeds.py`'s session, in its order (None:
/// an idempotent producer): confluent-kafka's four idempotent producers, its
/// transactional one, kafka-python's four producers. A fresh broker hands out ids from
/// 0, so these issue the ids 0..=8 the seeds carry, `seed-txn-id` mapped to 4.
const SEED_PRODUCERS: &[Option<&str>] = &[
    None,
    None,
    None,
    None,
    Some("seed-txn-id"),
    None,
    None,
    None,
    None,
];

/// A broker and the runtime it runs on (with its background tasks).
pub struct FuzzBroker {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    caller: Caller,
}

/// What one request frame came to.
#[derive(Debug)]
pub enum Outcome {
    /// The response frame, size prefix included (None for acks=0 produce).
    Answered(Option<BytesMut>),
    /// The connection would be closed with this log line's error.
    Closed(String),
    /// Still waiting (a long poll, a rebalance) when the deadline passed.
    Waiting,
}

impl FuzzBroker {
    /// Starts a single-voter broker on `log_dir` with `configs` (Kafka names)
    /// over the defaults, and opens it to clients as `strom server` does.
    pub fn start(log_dir: &Path, configs: &[(&str, &str)]) -> Self {
        let mut map: BTreeMap<String, String> = configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("log.dirs".into(), log_dir.display().to_string());
        let config = BrokerConfig::from_map(map).expect("fuzzing configs are valid");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let broker = runtime.block_on(async {
            let broker = Broker::start(config).await.expect("broker starts");
            broker.load().await.expect("broker loads");
            broker.register().await.expect("broker registers");
            broker.open_to_clients();
            // As `strom server` runs them: without the coordinator loads every group and
            // transaction request would answer COORDINATOR_LOAD_IN_PROGRESS.
            crate::housekeeping::spawn(broker.clone());
            broker
        });
        // A PLAINTEXT client connection's caller (no ACLs are configured).
        let caller = Caller {
            trusted: false,
            ..Caller::forwarded(SocketAddr::from(([127, 0, 0, 1], 1)), None)
        };
        Self {
            runtime,
            broker,
            caller,
        }
    }

    /// The `broker` target's broker: `SEEDED_CONFIGS`, the seed session's topics, and
    /// its producer ids issued through InitProducerId as the session issued them. The
    /// broker refuses ids no InitProducerId issued, so without them every idempotent or
    /// transactional seed would stop at that check.
    pub fn start_seeded(log_dir: &Path) -> Self {
        let fuzz = Self::start(log_dir, SEEDED_CONFIGS);
        let topics = SEED_TOPICS
            .iter()
            .map(|&(name, partitions, compacted)| {
                let configs = compacted
                    .then(|| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_static_str("cleanup.policy"))
                            .with_value(Some(StrBytes::from_static_str("compact")))
                    })
                    .into_iter()
                    .collect();
                CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str(name)))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)
                    .with_configs(configs)
            })
            .collect();
        let created = fuzz.request(
            &CreateTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(30_000),
            7,
        );
        for topic in created.topics {
            assert_eq!(topic.error_code, 0, "creating seed topic {:?}", topic.name);
        }
        for (expected, transactional_id) in SEED_PRODUCERS.iter().enumerate() {
            let init = InitProducerIdRequest::default()
                .with_transactional_id(
                    transactional_id.map(|id| TransactionalId(StrBytes::from_static_str(id))),
                )
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            // Retried as a client does while the transaction coordinator loads.
            let give_up = std::time::Instant::now() + Duration::from_secs(30);
            let mut issued = fuzz.request(&init, 4);
            while std::time::Instant::now() < give_up {
                if ResponseError::try_from_code(issued.error_code).is_none_or(|e| !e.is_retriable())
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
                issued = fuzz.request(&init, 4);
            }
            assert_eq!(
                issued.error_code, 0,
                "InitProducerId for {transactional_id:?}"
            );
            assert_eq!(
                (issued.producer_id.0, issued.producer_epoch),
                (expected as i64, 0),
                "the seed session's producer ids are issued from 0 in order"
            );
        }
        fuzz
    }

    /// Answers one request frame (without its size prefix) as a client
    /// listener's connection would, waiting at most `deadline` for it.
    pub fn handle_frame(&self, frame: &[u8], deadline: Duration) -> Outcome {
        let broker = self.broker.clone();
        let caller = self.caller.clone();
        let frame = BytesMut::from(frame);
        self.runtime.block_on(async move {
            let handled = crate::connection::handle_frame(&broker, frame, &caller, true);
            match tokio::time::timeout(deadline, handled).await {
                Err(_) => Outcome::Waiting,
                Ok(Err(e)) => Outcome::Closed(e.to_string()),
                Ok(Ok(None)) => Outcome::Answered(None),
                Ok(Ok(Some(response))) => match response.materialise() {
                    Ok(bytes) => Outcome::Answered(Some(bytes)),
                    Err(e) => Outcome::Closed(format!("i/o: {e}")),
                },
            }
        })
    }

    /// Sends `request` as a client would and decodes the answer (set-up only: panics
    /// on anything but an answer).
    fn request<R: Request + Encodable>(&self, request: &R, version: i16) -> R::Response {
        let key = ApiKey::try_from(R::KEY).expect("a known api key");
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("strom-fuzz")))
            .encode(&mut frame, key.request_header_version(version))
            .expect("header encodes");
        request
            .encode(&mut frame, version)
            .expect("request encodes");
        let Outcome::Answered(Some(response)) = self.handle_frame(&frame, Duration::from_secs(30))
        else {
            panic!("no answer to {key:?}");
        };
        let mut response: Bytes = response.freeze();
        response.advance(4);
        ResponseHeader::decode(&mut response, key.response_header_version(version))
            .expect("response header decodes");
        R::Response::decode(&mut response, version).expect("response decodes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
    use strom_wire::batch::BatchHeader;

    /// The producer ids of a produce request's batches.
    fn producer_ids(frame: &[u8]) -> Vec<i64> {
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let mut body = Bytes::copy_from_slice(frame);
        RequestHeader::decode(&mut body, ApiKey::Produce.request_header_version(version)).unwrap();
        let request = ProduceRequest::decode(&mut body, version).unwrap();
        request
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .filter_map(|p| p.records.as_deref())
            .map(|records| BatchHeader::new(records).unwrap().producer_id())
            .collect()
    }

    /// The committed seeds of the `broker` fuzz target, smallest first as libFuzzer
    /// runs an initial corpus.
    fn broker_seeds() -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/broker");
        let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("fuzz/seeds/broker")
            .map(|entry| {
                let path = entry.expect("seed").path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).expect("seed reads"))
            })
            .collect();
        seeds.sort_by(|a, b| (a.1.len(), &a.0).cmp(&(b.1.len(), &b.0)));
        seeds
    }

    /// Every idempotent produce seed gets past the issued-producer-id check and is
    /// appended (UNKNOWN_PRODUCER_ID / INVALID_PRODUCER_ID_MAPPING would mean the fuzzer
    /// never reaches the append path from them).
    #[test]
    fn seeded_broker_appends_the_seeds_idempotent_batches() {
        let dir = tempfile::tempdir().unwrap();
        let fuzz = FuzzBroker::start_seeded(dir.path());
        let mut appended_idempotent = 0;
        let mut produce_answers = 0;
        for (name, frame) in broker_seeds() {
            let outcome = fuzz.handle_frame(&frame, Duration::from_millis(500));
            if !name.starts_with("api00-") {
                continue;
            }
            let Outcome::Answered(Some(response)) = outcome else {
                assert!(
                    matches!(outcome, Outcome::Answered(None)),
                    "{name}: {outcome:?}"
                );
                continue;
            };
            produce_answers += 1;
            let version = i16::from_be_bytes([frame[2], frame[3]]);
            let mut body = response.freeze();
            body.advance(4);
            ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(version))
                .unwrap();
            let response = ProduceResponse::decode(&mut body, version).unwrap();
            assert!(!body.has_remaining());
            let idempotent = producer_ids(&frame).iter().any(|&id| id >= 0);
            for partition in response
                .responses
                .iter()
                .flat_map(|t| &t.partition_responses)
            {
                let error = ResponseError::try_from_code(partition.error_code);
                assert!(
                    !matches!(
                        error,
                        Some(
                            ResponseError::UnknownProducerId
                                | ResponseError::InvalidProducerIdMapping
                        )
                    ),
                    "{name}: {error:?}"
                );
                if idempotent && error.is_none() {
                    appended_idempotent += 1;
                }
            }
        }
        assert_eq!(produce_answers, 10, "one produce seed is acks=0");
        assert!(
            appended_idempotent >= 8,
            "idempotent partitions appended: {appended_idempotent}"
        );
    }
}
