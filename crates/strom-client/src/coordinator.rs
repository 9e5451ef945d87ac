//! Finding a group's or a transactional id's coordinator (FindCoordinator,
//! key type 0 or 1) and sending it requests, retrying while the coordinator
//! loads or moves.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::time::Instant;

use crate::client::{BrokerInfo, Client};
use crate::error::{check, Error, Result};

pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const NOT_COORDINATOR: i16 = 16;

/// FindCoordinator v4 replaced the single key with a batch of keys.
const FIRST_BATCHED_VERSION: i16 = 4;
/// FindCoordinator v1 added the key type (v0 knows only groups).
const FIRST_KEY_TYPE_VERSION: i16 = 1;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What a coordinator is looked up for: FindCoordinator's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorType {
    /// A consumer group (key type 0).
    Group,
    /// A transactional id (key type 1).
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            Self::Group => 0,
            Self::Transaction => 1,
        }
    }

    /// How errors name a key of this type, e.g. "group g".
    pub(crate) fn describe(self, key: &str) -> String {
        match self {
            Self::Group => format!("group {key}"),
            Self::Transaction => format!("transactional id {key}"),
        }
    }
}

/// Whether a code means "ask again, perhaps elsewhere" for a coordinator request.
pub(crate) fn is_coordinator_error(code: i16) -> bool {
    matches!(
        code,
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR
    )
}

/// What FindCoordinator said about each key, in the order asked.
fn coordinators_from(
    response: FindCoordinatorResponse,
    kind: CoordinatorType,
    keys: &[String],
    version: i16,
) -> Vec<(String, Result<BrokerInfo>)> {
    let found = |code: i16, message: Option<&str>, key: &str, id: i32, host: &str, port: i32| {
        check(
            code,
            message,
            format!("coordinator of {}", kind.describe(key)),
        )
        .map(|()| BrokerInfo {
            id,
            host: host.to_owned(),
            port,
            rack: None,
        })
    };
    if version < FIRST_BATCHED_VERSION {
        let Some(key) = keys.first() else {
            return Vec::new();
        };
        let result = found(
            response.error_code,
            response.error_message.as_deref(),
            key,
            response.node_id.0,
            &response.host,
            response.port,
        );
        return vec![(key.clone(), result)];
    }
    keys.iter()
        .map(|key| {
            let result = match response.coordinators.iter().find(|c| c.key.as_str() == key) {
                Some(c) => found(
                    c.error_code,
                    c.error_message.as_deref(),
                    key,
                    c.node_id.0,
                    &c.host,
                    c.port,
                ),
                None => Err(Error::Protocol(format!(
                    "FindCoordinator response does not mention {}",
                    kind.describe(key)
                ))),
            };
            (key.clone(), result)
        })
        .collect()
}

impl Client {
    /// Asks any broker for the coordinators of `groups` (one request on v4+,
    /// one per group before). Results are per group, in the order given.
    pub async fn find_coordinators(
        &mut self,
        groups: &[String],
    ) -> Result<Vec<(String, Result<BrokerInfo>)>> {
        self.find_coordinators_of(CoordinatorType::Group, groups)
            .await
    }

    /// Asks any broker for the coordinators of `keys` of one type (one
    /// request on v4+, one per key before). Results are per key, in the
    /// order given.
    pub async fn find_coordinators_of(
        &mut self,
        kind: CoordinatorType,
        keys: &[String],
    ) -> Result<Vec<(String, Result<BrokerInfo>)>> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        if kind != CoordinatorType::Group && version < FIRST_KEY_TYPE_VERSION {
            return Err(Error::UnsupportedVersion {
                addr: conn.addr().to_owned(),
                api: "FindCoordinator with a key type".to_owned(),
            });
        }
        let mut results = Vec::with_capacity(keys.len());
        if version >= FIRST_BATCHED_VERSION {
            let request = FindCoordinatorRequest::default()
                .with_key_type(kind.key_type())
                .with_coordinator_keys(keys.iter().map(|k| s(k)).collect());
            let response = conn.send(&request).await?;
            results = coordinators_from(response, kind, keys, version);
        } else {
            for key in keys {
                let request = FindCoordinatorRequest::default()
                    .with_key(s(key))
                    .with_key_type(kind.key_type());
                let response = conn.send(&request).await?;
                results.extend(coordinators_from(
                    response,
                    kind,
                    std::slice::from_ref(key),
                    version,
                ));
            }
        }
        for (key, result) in &results {
            if let Ok(broker) = result {
                self.coordinators
                    .insert((kind, key.clone()), broker.clone());
            }
        }
        Ok(results)
    }

    /// The coordinator of `group`, cached; waits (up to the request timeout)
    /// while the broker answers COORDINATOR_NOT_AVAILABLE, e.g. while the
    /// offsets topic is being created.
    pub async fn coordinator(&mut self, group: &str) -> Result<BrokerInfo> {
        self.coordinator_of(CoordinatorType::Group, group).await
    }

    /// The coordinator of a key of one type, cached; waits (up to the
    /// request timeout) while the broker answers COORDINATOR_NOT_AVAILABLE,
    /// e.g. while the internal topic is being created.
    pub async fn coordinator_of(&mut self, kind: CoordinatorType, key: &str) -> Result<BrokerInfo> {
        if let Some(broker) = self.coordinators.get(&(kind, key.to_owned())) {
            return Ok(broker.clone());
        }
        let deadline = Instant::now() + self.config().request_timeout;
        loop {
            let result = self
                .find_coordinators_of(kind, &[key.to_owned()])
                .await?
                .pop()
                .map(|(_, r)| r)
                .unwrap_or_else(|| Err(Error::Protocol("empty FindCoordinator answer".into())));
            match result {
                Err(e)
                    if e.code().is_some_and(is_coordinator_error) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    /// Forgets a group's coordinator so the next request looks it up again.
    pub fn invalidate_coordinator(&mut self, group: &str) {
        self.invalidate_coordinator_of(CoordinatorType::Group, group);
    }

    /// Forgets a key's coordinator so the next request looks it up again.
    pub fn invalidate_coordinator_of(&mut self, kind: CoordinatorType, key: &str) {
        self.coordinators.remove(&(kind, key.to_owned()));
    }

    /// [`Client::send_to_coordinator_of`] for a group.
    pub async fn send_to_coordinator<R: Request>(
        &mut self,
        group: &str,
        api_key: ApiKey,
        max_version: i16,
        timeout: Duration,
        build: impl Fn(i16) -> R,
        coordinator_error: impl Fn(&R::Response) -> Option<i16>,
    ) -> Result<(R::Response, i16)> {
        self.send_to_coordinator_of(
            CoordinatorType::Group,
            group,
            api_key,
            max_version,
            timeout,
            build,
            coordinator_error,
        )
        .await
    }

    /// Sends a request to the coordinator of `key` at the highest version
    /// both sides (and our codec, `max_version`) support. `build` makes the
    /// request for that version; `coordinator_error` picks a coordinator
    /// error code out of the response, if any. Moved, unavailable or loading
    /// coordinators and broken connections are retried with a fresh lookup
    /// until the request timeout has passed. Returns the response and the
    /// version it was decoded at.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_to_coordinator_of<R: Request>(
        &mut self,
        kind: CoordinatorType,
        key: &str,
        api_key: ApiKey,
        max_version: i16,
        timeout: Duration,
        build: impl Fn(i16) -> R,
        coordinator_error: impl Fn(&R::Response) -> Option<i16>,
    ) -> Result<(R::Response, i16)> {
        let deadline = Instant::now() + self.config().request_timeout;
        loop {
            let attempt = async {
                let broker = self.coordinator_of(kind, key).await?;
                self.remember_broker(&broker);
                let conn = self.broker_connection(broker.id).await.map_err(|e| {
                    // An unreachable coordinator may have moved: look again.
                    match e {
                        Error::Connect { .. } => Error::kafka(
                            COORDINATOR_NOT_AVAILABLE,
                            Some(e.to_string()),
                            kind.describe(key),
                        ),
                        e => e,
                    }
                })?;
                let version = conn.version_at_most(api_key, max_version)?;
                let response = conn.send_version(&build(version), version, timeout).await?;
                Ok::<_, Error>((response, version))
            }
            .await;
            let retry = match &attempt {
                Ok((response, _)) => {
                    coordinator_error(response).filter(|c| is_coordinator_error(*c))
                }
                Err(e) => match e.code() {
                    Some(code) if is_coordinator_error(code) => Some(code),
                    Some(_) => None,
                    None if e.is_retriable() => Some(NOT_COORDINATOR),
                    None => None,
                },
            };
            match retry {
                Some(code) if Instant::now() < deadline => {
                    tracing::debug!(key, ?kind, code, "retrying a coordinator request");
                    if code != COORDINATOR_LOAD_IN_PROGRESS {
                        self.invalidate_coordinator_of(kind, key);
                    }
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                _ => return attempt,
            }
        }
    }
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::find_coordinator_response::Coordinator;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn summary(results: Vec<(String, Result<BrokerInfo>)>) -> Vec<(String, String)> {
        results
            .into_iter()
            .map(|(k, r)| {
                let text = match r {
                    Ok(b) => format!("{} {}", b.id, b.addr()),
                    Err(e) => e.to_string(),
                };
                (k, text)
            })
            .collect()
    }

    #[test]
    fn batched_answers_are_matched_by_key() {
        let response = FindCoordinatorResponse::default().with_coordinators(vec![
            Coordinator::default()
                .with_key(s("b"))
                .with_error_code(COORDINATOR_NOT_AVAILABLE),
            Coordinator::default()
                .with_key(s("a"))
                .with_node_id(3.into())
                .with_host(s("h"))
                .with_port(9092),
        ]);
        assert_eq!(
            summary(coordinators_from(
                response,
                CoordinatorType::Group,
                &keys(&["a", "b", "c"]),
                4
            )),
            vec![
                ("a".to_owned(), "3 h:9092".to_owned()),
                (
                    "b".to_owned(),
                    "coordinator of group b: COORDINATOR_NOT_AVAILABLE".to_owned()
                ),
                (
                    "c".to_owned(),
                    "protocol error: FindCoordinator response does not mention group c".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn single_key_answers_use_the_top_level_fields() {
        let response = FindCoordinatorResponse::default()
            .with_node_id(1.into())
            .with_host(s("::1"))
            .with_port(19092);
        assert_eq!(
            summary(coordinators_from(
                response,
                CoordinatorType::Group,
                &keys(&["g"]),
                3
            )),
            vec![("g".to_owned(), "1 [::1]:19092".to_owned())]
        );
        let response = FindCoordinatorResponse::default()
            .with_error_code(NOT_COORDINATOR)
            .with_error_message(Some(s("moved")));
        assert_eq!(
            summary(coordinators_from(
                response,
                CoordinatorType::Transaction,
                &keys(&["g"]),
                2
            )),
            vec![(
                "g".to_owned(),
                "coordinator of transactional id g: NOT_COORDINATOR: moved".to_owned()
            )]
        );
    }

    /// A one-connection fake coordinator: FindCoordinator first answers
    /// COORDINATOR_NOT_AVAILABLE, DescribeGroups first answers
    /// COORDINATOR_LOAD_IN_PROGRESS, then NOT_COORDINATOR, then the group.
    /// Returns the api keys it saw, in order.
    async fn flaky_coordinator() -> (String, tokio::task::JoinHandle<Vec<ApiKey>>) {
        use bytes::{BufMut, BytesMut};
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::describe_groups_response::DescribedGroup;
        use kafka_protocol::messages::{
            ApiVersionsResponse, DescribeGroupsResponse, GroupId, ResponseHeader,
        };
        use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
        use tokio::io::AsyncWriteExt;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (mut finds, mut describes, mut seen) = (0, 0, Vec::new());
            while let Ok(mut frame) =
                crate::connection::read_frame(&mut socket, 1 << 20, "client").await
            {
                let header = decode_request_header_from_buffer(&mut frame).unwrap();
                let key = ApiKey::try_from(header.request_api_key).unwrap();
                let version = header.request_api_version;
                seen.push(key);
                let mut out = BytesMut::new();
                out.put_i32(0);
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id)
                    .encode(&mut out, key.response_header_version(version))
                    .unwrap();
                match key {
                    ApiKey::ApiVersions => {
                        let api = |key: ApiKey| {
                            let range = key.valid_versions();
                            ApiVersion::default()
                                .with_api_key(key as i16)
                                .with_min_version(range.min)
                                .with_max_version(range.max)
                        };
                        let keys = [
                            ApiKey::ApiVersions,
                            ApiKey::FindCoordinator,
                            ApiKey::DescribeGroups,
                        ];
                        ApiVersionsResponse::default()
                            .with_api_keys(keys.into_iter().map(api).collect())
                            .encode(&mut out, version)
                            .unwrap();
                    }
                    ApiKey::FindCoordinator => {
                        finds += 1;
                        let code = if finds == 1 {
                            COORDINATOR_NOT_AVAILABLE
                        } else {
                            0
                        };
                        FindCoordinatorResponse::default()
                            .with_coordinators(vec![Coordinator::default()
                                .with_key(s("g"))
                                .with_error_code(code)
                                .with_node_id(1.into())
                                .with_host(s(&addr.ip().to_string()))
                                .with_port(i32::from(addr.port()))])
                            .encode(&mut out, version)
                            .unwrap();
                    }
                    _ => {
                        describes += 1;
                        let code = match describes {
                            1 => COORDINATOR_LOAD_IN_PROGRESS,
                            2 => NOT_COORDINATOR,
                            _ => 0,
                        };
                        DescribeGroupsResponse::default()
                            .with_groups(vec![DescribedGroup::default()
                                .with_error_code(code)
                                .with_group_id(GroupId(s("g")))
                                .with_group_state(s("Empty"))])
                            .encode(&mut out, version)
                            .unwrap();
                    }
                }
                let size = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&size.to_be_bytes());
                socket.write_all(&out).await.unwrap();
            }
            seen
        });
        (addr.to_string(), task)
    }

    #[tokio::test]
    async fn moved_and_loading_coordinators_are_retried() {
        let (addr, broker) = flaky_coordinator().await;
        let client = Client::new(&addr, crate::ConnectionConfig::default()).unwrap();
        let mut admin = crate::Admin::new(client);
        let group = admin.describe_group("g").await.unwrap();
        assert_eq!(group.state, "Empty");
        assert_eq!(group.coordinator.addr(), addr);
        drop(admin);
        use ApiKey::*;
        // Loading: same coordinator again; moved: look it up again.
        assert_eq!(
            broker.await.unwrap(),
            vec![
                ApiVersions,
                FindCoordinator,
                FindCoordinator,
                DescribeGroups,
                DescribeGroups,
                FindCoordinator,
                DescribeGroups
            ]
        );
    }

    #[test]
    fn coordinator_errors_are_the_three_retriable_ones() {
        assert!(is_coordinator_error(14));
        assert!(is_coordinator_error(15));
        assert!(is_coordinator_error(16));
        assert!(!is_coordinator_error(0));
        assert!(!is_coordinator_error(68)); // NON_EMPTY_GROUP
    }
}
