//! Prometheus metrics: requests and latency per API, bytes in and out,
//! connections, and log size per partition (read at scrape time).

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchKindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaRoleLabels {
    replica: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<ApiLabels, Counter>,
    latency: Family<ApiLabels, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    connections: Gauge<i64, AtomicI64>,
    pub(crate) partition_log_size: Family<PartitionLabels, Gauge<i64, AtomicI64>>,
    fetches: Family<FetchKindLabels, Counter>,
    fetch_sessions: Gauge<i64, AtomicI64>,
    fetch_session_partitions: Gauge<i64, AtomicI64>,
    fetch_session_evictions: Gauge<i64, AtomicI64>,
    fetch_wakeups: Counter,
    fetch_bytes_zero_copy: Counter,
    consumer_fetch_bytes: Family<ReplicaRoleLabels, Counter>,
    preferred_read_replica_answers: Counter,
    queued_request_bytes: Gauge<i64, AtomicI64>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "strom_requests",
            "Requests handled, by Kafka API",
            requests.clone(),
        );
        let latency = Family::<ApiLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        registry.register(
            "strom_request_latency_seconds",
            "Time from a request's arrival to its response, by Kafka API",
            latency.clone(),
        );
        let bytes_in = Counter::default();
        registry.register(
            "strom_bytes_in",
            "Bytes received from clients",
            bytes_in.clone(),
        );
        let bytes_out = Counter::default();
        registry.register(
            "strom_bytes_out",
            "Bytes sent to clients",
            bytes_out.clone(),
        );
        let connections = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "strom_connections",
            "Open client connections",
            connections.clone(),
        );
        let partition_log_size = Family::<PartitionLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "strom_partition_log_size_bytes",
            "Size of each partition's log on disk",
            partition_log_size.clone(),
        );
        let fetches = Family::<FetchKindLabels, Counter>::default();
        registry.register(
            "strom_fetch_requests",
            "Fetch requests by fetch session kind: full (a session may be created), incremental, sessionless, session_error",
            fetches.clone(),
        );
        let fetch_sessions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "strom_fetch_sessions",
            "Incremental fetch sessions cached (Kafka's NumIncrementalFetchSessions)",
            fetch_sessions.clone(),
        );
        let fetch_session_partitions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "strom_fetch_session_partitions",
            "Partitions cached over all fetch sessions (Kafka's NumIncrementalFetchPartitionsCached)",
            fetch_session_partitions.clone(),
        );
        let fetch_session_evictions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "strom_fetch_session_evictions",
            "Fetch sessions evicted to make room for new ones since start",
            fetch_session_evictions.clone(),
        );
        let fetch_wakeups = Counter::default();
        registry.register(
            "strom_fetch_wakeups",
            "Parked fetches woken by an append to (or the deletion of) a partition they read",
            fetch_wakeups.clone(),
        );
        let fetch_bytes_zero_copy = Counter::default();
        registry.register(
            "strom_fetch_bytes_sent_zero_copy",
            "Fetched record bytes sent from the log files to sockets without passing through memory (sendfile)",
            fetch_bytes_zero_copy.clone(),
        );
        let consumer_fetch_bytes = Family::<ReplicaRoleLabels, Counter>::default();
        registry.register(
            "strom_fetch_consumer_record_bytes",
            "Record bytes read for consumers' fetches, by this broker's role for the partition (leader, or follower: KIP-392 fetch from the closest replica)",
            consumer_fetch_bytes.clone(),
        );
        let preferred_read_replica_answers = Counter::default();
        registry.register(
            "strom_fetch_preferred_read_replica",
            "Partitions of consumers' fetches this leader answered with a preferred read replica instead of records (replica.selector.class, KIP-392)",
            preferred_read_replica_answers.clone(),
        );
        let queued_request_bytes = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "strom_queued_request_bytes",
            "Bytes held by requests read and not yet answered, as queued.max.request.bytes counts them",
            queued_request_bytes.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            bytes_in,
            bytes_out,
            connections,
            partition_log_size,
            fetches,
            fetch_sessions,
            fetch_session_partitions,
            fetch_session_evictions,
            fetch_wakeups,
            fetch_bytes_zero_copy,
            consumer_fetch_bytes,
            preferred_read_replica_answers,
            queued_request_bytes,
        }
    }

    /// Counts a fetch by how its session treated it.
    pub fn fetch_served(&self, kind: &'static str) {
        self.fetches.get_or_create(&FetchKindLabels { kind }).inc();
    }

    /// Record bytes a consumer's fetch read here, as the partition's `leader` or `follower`.
    pub fn consumer_fetch_bytes(&self, replica: &'static str, bytes: usize) {
        if bytes > 0 {
            self.consumer_fetch_bytes
                .get_or_create(&ReplicaRoleLabels { replica })
                .inc_by(bytes as u64);
        }
    }

    pub fn preferred_read_replica_answered(&self) {
        self.preferred_read_replica_answers.inc();
    }

    pub fn fetch_woken(&self) {
        self.fetch_wakeups.inc();
    }

    pub fn fetch_session_cache(&self, sessions: usize, partitions: usize, evictions: u64) {
        self.fetch_sessions.set(sessions as i64);
        self.fetch_session_partitions.set(partitions as i64);
        self.fetch_session_evictions.set(evictions as i64);
    }

    pub fn request_done(&self, api: ApiKey, elapsed: Duration) {
        let labels = ApiLabels {
            api: format!("{api:?}"),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.inc_by(n as u64);
    }

    pub fn fetch_bytes_sent_zero_copy(&self, n: u64) {
        self.fetch_bytes_zero_copy.inc_by(n);
    }

    /// Bytes reserved (`delta` > 0) or given back by requests in flight.
    pub fn queued_request_bytes(&self, delta: i64) {
        self.queued_request_bytes.inc_by(delta);
    }

    pub fn bytes_out(&self, n: usize) {
        self.bytes_out.inc_by(n as u64);
    }

    pub fn connections_opened(&self) {
        self.connections.inc();
    }

    pub fn connections_closed(&self) {
        self.connections.dec();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `GET /metrics` until the task is dropped.
pub async fn serve(broker: Arc<crate::broker::Broker>, listener: tokio::net::TcpListener) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let broker = broker.clone();
            async move {
                broker.refresh_partition_metrics();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    broker.metrics.encode(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}
