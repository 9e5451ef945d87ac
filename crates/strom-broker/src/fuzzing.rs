//! An entry point for fuzzing (feature `fuzzing`, used by `fuzz/`): a real
//! one-node broker in this process, with no listener bound, that answers
//! request frames through the path a connection takes (header peek, API
//! table, decode, handler, encode).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::apis::ListenerRole;
use crate::broker::Broker;
use crate::config::BrokerConfig;

/// A broker and the runtime it runs on.
pub struct FuzzBroker {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
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
            broker
        });
        Self { runtime, broker }
    }

    /// Answers one request frame (without its size prefix) as a client
    /// listener's connection would, waiting at most `deadline` for it.
    pub fn handle_frame(&self, frame: &[u8], deadline: Duration) -> Outcome {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let broker = self.broker.clone();
        let frame = BytesMut::from(frame);
        self.runtime.block_on(async move {
            let handled =
                crate::connection::handle_frame(&broker, frame, peer, ListenerRole::Client, true);
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
}
