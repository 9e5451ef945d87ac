//! A broker's way to the active controller, as Kafka's NodeToControllerChannelManager:
//! requests brokers send the controller (registration, heartbeats, AlterPartition,
//! AllocateProducerIds) go to the quorum leader's CONTROLLER listener, this node's own
//! included; client requests that change metadata (CreateTopics and the like) are
//! forwarded there whole, as Kafka's Envelope does, and answered once this node's image
//! has caught up with the change, so a client's next Metadata here sees it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tracing::debug;

use strom_metadata::MetadataImage;
use strom_security::KafkaPrincipal;

use crate::broker::Broker;
use crate::node_rpc::NodeRpcError;

/// The node request version that carries a forwarded client request.
pub const FORWARD_VERSION: i16 = 1;
/// The node request version that asks a voter which leader it knows (empty body; the
/// answer is the leader's id as an i64, -1 for none).
pub const LEADER_QUERY_VERSION: i16 = 2;
/// How long a broker-only node waits for one voter to say whom it knows as the leader.
const LEADER_QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a broker waits for a quorum leader before giving up on a call.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// How long a forwarded change's answer waits for this node's image to catch up.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);
/// One call's time limit (Kafka's request.timeout.ms for the controller channel).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Client requests a broker forwards to the active controller (Kafka's forwarded APIs).
const FORWARDED: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterClientQuotas,
    ApiKey::AlterUserScramCredentials,
    ApiKey::UpdateFeatures,
    ApiKey::UnregisterBroker,
    ApiKey::DescribeQuorum,
];

#[derive(Debug, thiserror::Error)]
pub enum ControllerCallError {
    #[error("no active controller is known")]
    NoController,
    #[error(transparent)]
    Rpc(#[from] NodeRpcError),
    #[error("malformed answer from the controller: {0}")]
    Malformed(String),
}

impl Broker {
    /// Where this broker reaches broker `node` (its `inter.broker.listener.name`
    /// endpoint in the image).
    pub fn inter_broker_address(&self, image: &MetadataImage, node: i32) -> Option<String> {
        let listener = &self.config.cluster.inter_broker_listener_name;
        image
            .broker(node)?
            .endpoints
            .iter()
            .find(|e| &e.listener == listener)
            .map(|e| format!("{}:{}", e.host, e.port))
    }

    /// The controller id Metadata and DescribeCluster report: the active controller when
    /// it is a live broker (every voter is one here), else this broker, as Kafka's
    /// KRaft brokers point clients at any live broker (which forwards).
    pub fn controller_id_for_clients(&self) -> i32 {
        let leader = self.metadata_quorum().and_then(|q| q.leader());
        leader
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| self.image().broker(*id).is_some_and(|b| !b.fenced))
            .unwrap_or(self.config.node_id)
    }

    /// The CONTROLLER listener of the quorum leader (this node's own when it leads),
    /// waiting a while for an election; `None` on a one-voter node, which has none. A
    /// broker-only node knows the leader once it sends it the log; before that (its
    /// first registration) it asks the voters whom they know.
    pub async fn controller_address(&self) -> Option<String> {
        let quorum = self.metadata_quorum()?;
        if self.config.cluster.is_single_voter() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = match quorum.leader() {
                Some(leader) => Some(leader),
                None if !self.config.cluster.roles.controller => self.ask_voters_for_leader().await,
                None => None,
            };
            if let Some(leader) = leader {
                return self.voter_address(leader);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The CONTROLLER listener address of voter `id`, from `controller.quorum.voters`.
    pub fn voter_address(&self, id: u64) -> Option<String> {
        self.config
            .cluster
            .voters
            .iter()
            .find(|v| v.id as u64 == id)
            .map(|v| format!("{}:{}", v.host, v.port))
    }

    /// The first leader a voter names (a node request of [`LEADER_QUERY_VERSION`]).
    async fn ask_voters_for_leader(&self) -> Option<u64> {
        for voter in &self.config.cluster.voters {
            let addr = format!("{}:{}", voter.host, voter.port);
            let Ok(mut answer) = self
                .node_rpc
                .call_versioned(&addr, LEADER_QUERY_VERSION, &[], LEADER_QUERY_TIMEOUT)
                .await
            else {
                continue;
            };
            if answer.len() == 8 {
                if let Ok(leader) = u64::try_from(answer.get_i64()) {
                    return Some(leader);
                }
            }
        }
        None
    }

    async fn active_controller(&self) -> Result<String, ControllerCallError> {
        self.controller_address()
            .await
            .ok_or(ControllerCallError::NoController)
    }

    /// Sends a broker-to-controller request (served on CONTROLLER listeners).
    pub async fn call_controller<R>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ControllerCallError>
    where
        R: Request + Encodable,
    {
        let addr = self.active_controller().await?;
        Ok(self
            .node_rpc
            .call_kafka(&addr, request, version, CALL_TIMEOUT)
            .await?)
    }

    /// Whether a client request with `api_key` goes to the active controller instead of
    /// being answered here.
    pub fn forwards(&self, api_key: i16) -> bool {
        !self.config.cluster.is_single_voter()
            && !self.is_active_controller()
            && ApiKey::try_from(api_key).is_ok_and(|key| FORWARDED.contains(&key))
    }

    /// Forwards a client request frame (header and body, no size prefix) to the active
    /// controller and returns its response frame (size prefix included) once this
    /// node's image has the change. `on_behalf` names the client's principal and
    /// address, which the controller authorizes as Kafka does an Envelope's; None
    /// is this broker's own request.
    pub async fn forward_frame(
        &self,
        frame: &[u8],
        on_behalf: Option<(&KafkaPrincipal, SocketAddr)>,
    ) -> Result<BytesMut, ControllerCallError> {
        let addr = self.active_controller().await?;
        let payload = forwarded_payload(frame, on_behalf);
        let mut answer = self
            .node_rpc
            .call_versioned(&addr, FORWARD_VERSION, &payload, CALL_TIMEOUT)
            .await?;
        if answer.len() < 8 {
            return Err(ControllerCallError::Malformed(format!(
                "{} bytes",
                answer.len()
            )));
        }
        let offset = answer.get_i64();
        self.wait_for_image_offset(offset, CATCH_UP_WAIT).await;
        let mut response = BytesMut::with_capacity(4 + answer.len());
        response.put_i32(answer.len() as i32);
        response.extend_from_slice(&answer);
        Ok(response)
    }

    /// Forwards a request this broker makes itself (an auto-created topic) as a client's
    /// would be, and decodes the answer.
    pub async fn forward<R>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ControllerCallError>
    where
        R: Request + Encodable,
    {
        let malformed = |e: String| ControllerCallError::Malformed(e);
        let key = ApiKey::try_from(R::KEY).map_err(|_| malformed(format!("api key {}", R::KEY)))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(0)
            .with_client_id(Some(StrBytes::from_static_str("strom-broker")));
        let mut frame = BytesMut::with_capacity(256);
        header
            .encode(&mut frame, key.request_header_version(version))
            .map_err(|e| malformed(e.to_string()))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| malformed(e.to_string()))?;
        let mut response: Bytes = self.forward_frame(&frame, None).await?.freeze();
        response.advance(4);
        ResponseHeader::decode(&mut response, key.response_header_version(version))
            .map_err(|e| malformed(e.to_string()))?;
        R::Response::decode(&mut response, version).map_err(|e| malformed(e.to_string()))
    }

    /// Waits (bounded) until this node has applied the metadata log up to `offset`.
    pub async fn wait_for_image_offset(&self, offset: i64, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while self.image_offset() < offset {
            if tokio::time::Instant::now() >= deadline {
                debug!(offset, "a forwarded change is not applied here yet");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A voter's answer to [`LEADER_QUERY_VERSION`]: the leader it knows, -1 for none.
pub fn encode_known_leader(broker: &Broker) -> Vec<u8> {
    let leader = broker
        .metadata_quorum()
        .and_then(|q| q.leader())
        .and_then(|l| i64::try_from(l).ok())
        .unwrap_or(-1);
    leader.to_be_bytes().to_vec()
}

/// Whether a forwarded request's api key may be forwarded at all.
pub fn is_forwarded_api(api_key: i16) -> bool {
    ApiKey::try_from(api_key).is_ok_and(|key| FORWARDED.contains(&key))
}

/// The active controller's answer to a forwarded request: the metadata offset this node
/// had applied after handling it, then the response frame without its size prefix.
pub fn encode_forwarded_answer(applied_offset: i64, response: &[u8]) -> Vec<u8> {
    let mut answer = Vec::with_capacity(8 + response.len());
    answer.put_i64(applied_offset);
    answer.extend_from_slice(response.get(4..).unwrap_or_default());
    answer
}

impl Broker {
    /// Creates a topic through the active controller, as a CreateTopics a client sent
    /// (Kafka's brokers auto-create topics so). An existing topic is no error.
    pub async fn create_topic_on_controller(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: &[(String, Option<String>)],
    ) -> Result<(), strom_types::ErrorCode> {
        use kafka_protocol::messages::create_topics_request::{
            CreatableTopic, CreatableTopicConfig,
        };
        use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
        use strom_types::ErrorCode;
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(num_partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(key.clone()))
                            .with_value(value.clone().map(StrBytes::from_string))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(CALL_TIMEOUT.as_millis() as i32);
        let response = self
            .forward(&request, CREATE_TOPICS_VERSION)
            .await
            .map_err(|e| {
                debug!(topic = name, error = %e, "creating a topic through the controller failed");
                ErrorCode::NotController
            })?;
        let code = response
            .topics
            .first()
            .map_or(ErrorCode::UnknownServerError.code(), |t| t.error_code);
        match ErrorCode::try_from_code(code) {
            None | Some(ErrorCode::TopicAlreadyExists) => Ok(()),
            Some(code) => Err(code),
        }
    }
}

/// CreateTopics as a broker sends it to the controller.
const CREATE_TOPICS_VERSION: i16 = 7;

/// A forwarded request: the principal and the client's address (each a 16-bit length
/// and UTF-8; an empty principal is the forwarding broker's own request), then the frame.
fn forwarded_payload(frame: &[u8], on_behalf: Option<(&KafkaPrincipal, SocketAddr)>) -> Vec<u8> {
    let (principal, client) = on_behalf
        .map(|(p, a)| (p.to_string(), a.to_string()))
        .unwrap_or_default();
    let mut payload = Vec::with_capacity(4 + principal.len() + client.len() + frame.len());
    for text in [&principal, &client] {
        let text = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
        payload.extend_from_slice(&(text.len() as u16).to_be_bytes());
        payload.extend_from_slice(text);
    }
    payload.extend_from_slice(frame);
    payload
}

/// The client a forwarded request is for: its principal and address.
pub type OnBehalf = (KafkaPrincipal, SocketAddr);

/// Splits what [`forwarded_payload`] made: the client's principal and address (None for
/// the broker's own request) and the frame; None if it is cut short or unreadable.
pub fn split_forwarded(payload: &[u8]) -> Option<(Option<OnBehalf>, &[u8])> {
    fn text(input: &[u8]) -> Option<(&str, &[u8])> {
        let len = u16::from_be_bytes(input.get(..2)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(input.get(2..2 + len)?).ok()?;
        Some((text, &input[2 + len..]))
    }
    let (principal, rest) = text(payload)?;
    let (client, frame) = text(rest)?;
    if principal.is_empty() {
        return Some((None, frame));
    }
    Some((
        Some((KafkaPrincipal::parse(principal)?, client.parse().ok()?)),
        frame,
    ))
}

#[cfg(test)]
mod forwarding_tests {
    use super::*;

    #[test]
    fn a_forwarded_request_carries_its_client_or_none() {
        let alice = KafkaPrincipal::user("alice");
        let client: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let payload = forwarded_payload(b"frame", Some((&alice, client)));
        let (on_behalf, frame) = split_forwarded(&payload).unwrap();
        assert_eq!(on_behalf, Some((alice, client)));
        assert_eq!(frame, b"frame");
        let own = forwarded_payload(b"x", None);
        assert_eq!(split_forwarded(&own), Some((None, &b"x"[..])));
        // Cut short, or a principal without a type: refused.
        assert_eq!(split_forwarded(&payload[..3]), None);
        let mut untyped = vec![0, 5];
        untyped.extend_from_slice(b"alice");
        untyped.extend_from_slice(&[0, 12]);
        untyped.extend_from_slice(b"10.1.2.3:456");
        untyped.extend_from_slice(b"frame");
        assert_eq!(split_forwarded(&untyped), None);
    }
}
