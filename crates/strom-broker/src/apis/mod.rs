//! The table of Kafka APIs this broker serves. Each API lives in its own
//! module as a [`Handler`]; the table says which keys and versions exist,
//! and ApiVersions advertises that table (as Kafka lists it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, VersionRange};

use strom_security::acl::Decision;
pub use strom_security::acl::{Operation, ResourceType, CLUSTER_NAME};

use crate::broker::Broker;
use crate::response_frame::{encode_frame, ResponseFrame};

mod acls;
mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod allocate_producer_ids;
mod alter_configs;
pub(crate) mod alter_partition;
mod alter_partition_reassignments;
mod alter_user_scram_credentials;
mod api_versions;
mod assign_replicas_to_dirs;
mod broker_heartbeat;
mod broker_registration;
mod client_quotas;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_quorum;
mod describe_transactions;
mod describe_user_scram_credentials;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod group_common;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_config_resources;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod produce_verification;
mod sasl_authenticate;
mod sasl_handshake;
mod sync_group;
mod txn_common;
mod txn_offset_commit;
mod unregister_broker;
pub(crate) mod write_txn_markers;

/// Which kind of listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerRole {
    /// A broker listener: clients, and other brokers (replica fetches).
    Client,
    /// A CONTROLLER listener: other nodes' requests to the controller, and Raft.
    Controller,
}

/// Who sent a request, and where it came in.
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: std::net::SocketAddr,
    pub role: ListenerRole,
    pub listener_name: Arc<str>,
    pub protocol: crate::security_config::SecurityProtocol,
    /// `User:ANONYMOUS` until TLS or SASL says otherwise.
    pub principal: Arc<strom_security::KafkaPrincipal>,
    /// A request a broker of this cluster makes on its own account (an auto-created
    /// topic): never checked against ACLs.
    pub trusted: bool,
    /// The connection's mute, which a throttled response extends (None: a request
    /// forwarded from another broker, muted there).
    pub mute: Option<Arc<crate::client_quotas::Mute>>,
}

impl Caller {
    /// A client request another broker forwarded to this controller, for `principal`
    /// connected from `peer` (None: the broker's own request).
    pub fn forwarded(
        peer: std::net::SocketAddr,
        principal: Option<strom_security::KafkaPrincipal>,
    ) -> Self {
        Self {
            peer,
            role: ListenerRole::Client,
            listener_name: Arc::from("PLAINTEXT"),
            protocol: crate::security_config::SecurityProtocol::Plaintext,
            trusted: principal.is_none(),
            principal: Arc::new(
                principal.unwrap_or_else(strom_security::KafkaPrincipal::anonymous),
            ),
            mute: None,
        }
    }
}

/// What a handler knows about the request beyond its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_version: i16,
    pub client_id: Option<String>,
    pub peer: std::net::SocketAddr,
    pub listener: ListenerRole,
    pub listener_name: Arc<str>,
    pub protocol: crate::security_config::SecurityProtocol,
    pub principal: Arc<strom_security::KafkaPrincipal>,
    pub trusted: bool,
    /// The request's size on the wire, header included (what producer_byte_rate counts).
    pub request_bytes: usize,
    /// Time the handler spends on blocking threads, for request_percentage.
    pub work: Arc<WorkClock>,
}

/// Time spent on a request off the async workers (its reads and writes).
#[derive(Debug, Default)]
pub struct WorkClock {
    nanos: std::sync::atomic::AtomicU64,
}

impl WorkClock {
    /// Runs `f`, counting its time.
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let result = f();
        self.nanos.fetch_add(
            started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        result
    }

    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl RequestContext {
    /// Who client quotas count this request for.
    pub fn quota_client(&self) -> crate::client_quotas::QuotaClient<'_> {
        crate::client_quotas::QuotaClient {
            principal: &self.principal,
            client_id: self.client_id.as_deref().unwrap_or(""),
        }
    }

    /// The caller's rights, as `authorizer.class.name` and the ACLs in force say.
    pub fn authz<'a>(&'a self, broker: &'a Broker) -> Authz<'a> {
        Authz::of(broker, &self.principal, self.peer, self.trusted)
    }
}

impl Caller {
    /// The rights of whoever sent the request on this connection.
    pub fn authz<'a>(&'a self, broker: &'a Broker) -> Authz<'a> {
        Authz::of(broker, &self.principal, self.peer, self.trusted)
    }
}

/// What one caller may do, as Kafka's AuthHelper answers it: everything when no
/// authorizer is configured.
pub struct Authz<'a> {
    authorizer: Option<&'a strom_security::acl::Authorizer>,
    acls: Arc<strom_security::acl::AclSet>,
    principal: &'a strom_security::KafkaPrincipal,
    host: String,
}

impl<'a> Authz<'a> {
    fn of(
        broker: &'a Broker,
        principal: &'a strom_security::KafkaPrincipal,
        peer: std::net::SocketAddr,
        trusted: bool,
    ) -> Self {
        Authz {
            authorizer: broker.config.authorizer.as_ref().filter(|_| !trusted),
            acls: broker.image().acls().clone(),
            principal,
            host: peer.ip().to_string(),
        }
    }

    pub fn allows(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer.is_none_or(|a| {
            a.authorize(
                &self.acls,
                self.principal,
                &self.host,
                operation,
                resource_type,
                name,
            ) == Decision::Allowed
        })
    }

    pub fn allows_topic(&self, operation: Operation, topic: &str) -> bool {
        self.allows(operation, ResourceType::Topic, topic)
    }

    pub fn allows_group(&self, operation: Operation, group: &str) -> bool {
        self.allows(operation, ResourceType::Group, group)
    }

    pub fn allows_transactional_id(&self, operation: Operation, id: &str) -> bool {
        self.allows(operation, ResourceType::TransactionalId, id)
    }

    pub fn allows_cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Kafka's check of a config resource (DescribeConfigs, AlterConfigs and
    /// IncrementalAlterConfigs): a topic or group on itself, a broker or its loggers on
    /// the cluster. The error to answer with, if refused.
    pub fn config_refusal(
        &self,
        resource_type: i8,
        name: &str,
        operation: Operation,
    ) -> Option<(strom_types::ErrorCode, String)> {
        use strom_types::ErrorCode;
        let (allowed, code, message) = match resource_type {
            2 => (
                self.allows_topic(operation, name),
                ErrorCode::TopicAuthorizationFailed,
                "Topic authorization failed.",
            ),
            32 => (
                self.allows_group(operation, name),
                ErrorCode::GroupAuthorizationFailed,
                "Group authorization failed.",
            ),
            4 | 8 | 16 => (
                self.allows_cluster(operation),
                ErrorCode::ClusterAuthorizationFailed,
                "Cluster authorization failed.",
            ),
            _ => return None,
        };
        (!allowed).then(|| (code, message.to_string()))
    }

    /// Kafka's authorizeByResourceType: `operation` on at least one resource of the type.
    pub fn allows_any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        self.authorizer.is_none_or(|a| {
            a.authorize_any(
                &self.acls,
                self.principal,
                &self.host,
                operation,
                resource_type,
            ) == Decision::Allowed
        })
    }

    /// The `authorized_operations` bit field of a resource: a bit for each operation
    /// Kafka supports on its type that the caller may do.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|op| self.allows(**op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << (*op as i32)))
    }
}

/// Kafka's AclEntry.supportedOperations.
fn supported_operations(resource_type: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
    }
}

/// What `authorized_operations` holds when the client did not ask for it.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// One Kafka API.
pub trait Handler: Send + Sync + 'static {
    type Request: Request + Send + 'static;
    const KEY: ApiKey;
    /// The versions served and advertised: those this handler treats right,
    /// within what Apache Kafka 4.1 serves and the codec decodes.
    const VERSIONS: VersionRange;
    /// What ApiVersions lists: the served versions, unless Kafka lists more.
    const ADVERTISED: VersionRange = Self::VERSIONS;

    fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: Self::Request,
    ) -> impl Future<Output = <Self::Request as Request>::Response> + Send;

    /// The response with the log regions its records stand for (see
    /// `response_frame`); only Fetch leaves record bytes in the files.
    fn handle_reply(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: Self::Request,
    ) -> impl Future<Output = Reply<<Self::Request as Request>::Response>> + Send {
        async move {
            Reply {
                response: Self::handle(broker, ctx, request).await,
                file_regions: Vec::new(),
            }
        }
    }

    /// Whether a response goes back at all (false only for acks=0 produce).
    fn expects_response(_request: &Self::Request) -> bool {
        true
    }

    /// Whether the request is exempt from `request_percentage` quotas: cluster actions
    /// and replica fetches, as in Kafka.
    fn quota_exempt(_request: &Self::Request) -> bool {
        false
    }
}

/// The `throttle_time_ms` of a response, where its type has one.
pub trait ThrottleTime {
    fn throttle_time_ms(&self) -> i32;
    fn set_throttle_time_ms(&mut self, ms: i32);
}

macro_rules! throttled_responses {
    ($($response:ident),* $(,)?) => {$(
        impl ThrottleTime for kafka_protocol::messages::$response {
            fn throttle_time_ms(&self) -> i32 {
                self.throttle_time_ms
            }
            fn set_throttle_time_ms(&mut self, ms: i32) {
                self.throttle_time_ms = ms;
            }
        }
    )*};
}

macro_rules! unthrottled_responses {
    ($($response:ident),* $(,)?) => {$(
        impl ThrottleTime for kafka_protocol::messages::$response {
            fn throttle_time_ms(&self) -> i32 {
                0
            }
            fn set_throttle_time_ms(&mut self, _ms: i32) {}
        }
    )*};
}

throttled_responses!(
    ProduceResponse,
    FetchResponse,
    ListOffsetsResponse,
    MetadataResponse,
    ApiVersionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DeleteRecordsResponse,
    DescribeConfigsResponse,
    AlterConfigsResponse,
    DescribeLogDirsResponse,
    CreatePartitionsResponse,
    IncrementalAlterConfigsResponse,
    DescribeClusterResponse,
    OffsetForLeaderEpochResponse,
    InitProducerIdResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    OffsetDeleteResponse,
    ListGroupsResponse,
    DescribeGroupsResponse,
    DeleteGroupsResponse,
    ElectLeadersResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
    ListConfigResourcesResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    DescribeTransactionsResponse,
    ListTransactionsResponse,
    TxnOffsetCommitResponse,
    DescribeProducersResponse,
    UnregisterBrokerResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeAclsResponse,
    CreateAclsResponse,
    DeleteAclsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
    BrokerRegistrationResponse,
    BrokerHeartbeatResponse,
    AlterPartitionResponse,
    AllocateProducerIdsResponse,
    AssignReplicasToDirsResponse,
);

unthrottled_responses!(
    SaslHandshakeResponse,
    DescribeQuorumResponse,
    SaslAuthenticateResponse,
    WriteTxnMarkersResponse,
);

/// A response and, in the order its codec writes them, the log regions its
/// records placeholders stand for.
pub struct Reply<R> {
    pub response: R,
    pub file_regions: Vec<strom_log::LogSlices>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("unsupported version {version} of {key:?}")]
    UnsupportedVersion { key: ApiKey, version: i16 },
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("failed to encode the response: {0}")]
    Encode(String),
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Option<ResponseFrame>, DispatchError>> + Send>>;

/// A handler with its types erased, so that the table can hold them all.
pub trait Api: Send + Sync {
    fn key(&self) -> ApiKey;
    /// The versions served; any other closes the connection.
    fn versions(&self) -> VersionRange;
    fn advertised(&self) -> VersionRange;
    /// Decodes the body, runs the handler and encodes the whole response
    /// frame (size prefix, header, body).
    fn call(
        &self,
        broker: Arc<Broker>,
        header: RequestHeader,
        body: Bytes,
        caller: Caller,
        request_bytes: usize,
    ) -> ResponseFuture;
    /// The `throttle_time_ms` of an encoded response of this API (header and body, no size
    /// prefix), as another node answered it: what a forwarding broker mutes the client for.
    fn response_throttle_ms(&self, version: i16, response: Bytes) -> Option<i32>;
}

struct Erased<H>(std::marker::PhantomData<H>);

impl<H: Handler> Api for Erased<H>
where
    <H::Request as Request>::Response: ThrottleTime,
{
    fn key(&self) -> ApiKey {
        H::KEY
    }

    fn versions(&self) -> VersionRange {
        H::VERSIONS
    }

    fn advertised(&self) -> VersionRange {
        H::ADVERTISED
    }

    fn response_throttle_ms(&self, version: i16, mut response: Bytes) -> Option<i32> {
        type Response<H> = <<H as Handler>::Request as Request>::Response;
        let header_version = <Response<H> as HeaderVersion>::header_version(version);
        kafka_protocol::messages::ResponseHeader::decode(&mut response, header_version).ok()?;
        let decoded = decode_guarded::<Response<H>>(&mut response, version).ok()?;
        Some(decoded.throttle_time_ms())
    }

    fn call(
        &self,
        broker: Arc<Broker>,
        header: RequestHeader,
        mut body: Bytes,
        caller: Caller,
        request_bytes: usize,
    ) -> ResponseFuture {
        Box::pin(async move {
            let version = header.request_api_version;
            let request = decode_guarded::<H::Request>(&mut body, version)?;
            let wants_response = H::expects_response(&request);
            let exempt = H::quota_exempt(&request)
                || caller.trusted
                || caller.role == ListenerRole::Controller;
            let mute = caller.mute.clone();
            let ctx = RequestContext {
                api_version: version,
                client_id: header.client_id.as_ref().map(|c| c.to_string()),
                peer: caller.peer,
                listener: caller.role,
                listener_name: caller.listener_name,
                protocol: caller.protocol,
                principal: caller.principal,
                trusted: caller.trusted,
                request_bytes,
                work: Arc::default(),
            };
            let quota_ctx = (!exempt).then(|| ctx.clone());
            // The time spent running the handler (not waiting): what request_percentage
            // measures, as Kafka measures its request threads' time.
            let mut handler = std::pin::pin!(H::handle_reply(broker.clone(), ctx, request));
            let mut busy = std::time::Duration::ZERO;
            let mut reply = std::future::poll_fn(|cx| {
                let started = std::time::Instant::now();
                let polled = handler.as_mut().poll(cx);
                busy += started.elapsed();
                polled
            })
            .await;
            let mut throttle_ms = i64::from(reply.response.throttle_time_ms().max(0));
            if let Some(ctx) = quota_ctx {
                let quotas = broker.image().client_quotas().clone();
                if !quotas.is_empty() {
                    // Percent of one thread's second: nanoseconds * 100 / 1e9.
                    let used = (busy + ctx.work.elapsed()).as_nanos() as f64 * 1e-7;
                    let request_throttle = broker.quotas.record(
                        &quotas,
                        strom_security::quota::QuotaKind::Request,
                        &ctx.quota_client(),
                        used,
                    );
                    throttle_ms = throttle_ms.max(request_throttle as i64);
                }
            }
            if throttle_ms > 0 {
                let throttle_ms = throttle_ms.min(i64::from(i32::MAX)) as i32;
                reply.response.set_throttle_time_ms(throttle_ms);
                if let Some(mute) = mute {
                    mute.extend(std::time::Duration::from_millis(throttle_ms as u64));
                }
            }
            if !wants_response {
                return Ok(None);
            }
            encode_frame(
                header.correlation_id,
                version,
                &reply.response,
                reply.file_regions,
            )
            .map(Some)
        })
    }
}

/// Decodes untrusted bytes. The codec is not ours, so a panic inside it is
/// caught and treated as a malformed request rather than a dead connection task.
fn decode_guarded<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, DispatchError> {
    let mut input = body.clone();
    let result = std::panic::catch_unwind(move || T::decode(&mut input, version));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(DispatchError::Malformed(format!("{e:#}"))),
        Err(_) => Err(DispatchError::Malformed("the decoder panicked".into())),
    }
}

pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Result<BytesMut, DispatchError> {
    // The frame's size prefix is written first and patched once the size is known.
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Sized up front: a large Fetch response is copied once, never regrown.
    let capacity = header
        .compute_size(R::header_version(version))
        .and_then(|h| response.compute_size(version).map(|b| 4 + h + b))
        .unwrap_or(64);
    let mut buf = BytesMut::with_capacity(capacity);
    buf.extend_from_slice(&[0u8; 4]);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| DispatchError::Encode(e.to_string()))?;
    response
        .encode(&mut buf, version)
        .map_err(|e| DispatchError::Encode(e.to_string()))?;
    let size = i32::try_from(buf.len() - 4)
        .map_err(|_| DispatchError::Encode("response larger than 2 GiB".into()))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

fn erased<H: Handler>() -> Box<dyn Api>
where
    <H::Request as Request>::Response: ThrottleTime,
{
    Box::new(Erased::<H>(std::marker::PhantomData))
}

/// Every API served, indexed by api key.
pub struct ApiTable {
    by_key: Vec<Option<Box<dyn Api>>>,
}

impl ApiTable {
    /// What a CONTROLLER listener serves: the requests nodes send the active controller.
    pub fn controller() -> Self {
        Self::of(vec![
            erased::<api_versions::ApiVersionsHandler>(),
            erased::<create_topics::CreateTopicsHandler>(),
            erased::<delete_topics::DeleteTopicsHandler>(),
            erased::<create_partitions::CreatePartitionsHandler>(),
            erased::<alter_configs::AlterConfigsHandler>(),
            erased::<incremental_alter_configs::IncrementalAlterConfigsHandler>(),
            erased::<broker_registration::BrokerRegistrationHandler>(),
            erased::<broker_heartbeat::BrokerHeartbeatHandler>(),
            erased::<assign_replicas_to_dirs::AssignReplicasToDirsHandler>(),
            erased::<alter_partition::AlterPartitionHandler>(),
            erased::<allocate_producer_ids::AllocateProducerIdsHandler>(),
            erased::<elect_leaders::ElectLeadersHandler>(),
            erased::<alter_partition_reassignments::AlterPartitionReassignmentsHandler>(),
            erased::<list_partition_reassignments::ListPartitionReassignmentsHandler>(),
            erased::<describe_quorum::DescribeQuorumHandler>(),
            erased::<unregister_broker::UnregisterBrokerHandler>(),
            erased::<alter_user_scram_credentials::AlterUserScramCredentialsHandler>(),
            erased::<acls::CreateAclsHandler>(),
            erased::<acls::DeleteAclsHandler>(),
            erased::<client_quotas::AlterClientQuotasHandler>(),
        ])
    }

    pub fn new() -> Self {
        let apis = vec![
            erased::<produce::ProduceHandler>(),
            erased::<fetch::FetchHandler>(),
            erased::<list_offsets::ListOffsetsHandler>(),
            erased::<metadata::MetadataHandler>(),
            erased::<api_versions::ApiVersionsHandler>(),
            erased::<create_topics::CreateTopicsHandler>(),
            erased::<delete_topics::DeleteTopicsHandler>(),
            erased::<delete_records::DeleteRecordsHandler>(),
            erased::<describe_configs::DescribeConfigsHandler>(),
            erased::<alter_configs::AlterConfigsHandler>(),
            erased::<describe_log_dirs::DescribeLogDirsHandler>(),
            erased::<create_partitions::CreatePartitionsHandler>(),
            erased::<incremental_alter_configs::IncrementalAlterConfigsHandler>(),
            erased::<describe_quorum::DescribeQuorumHandler>(),
            erased::<describe_cluster::DescribeClusterHandler>(),
            erased::<offset_for_leader_epoch::OffsetForLeaderEpochHandler>(),
            erased::<init_producer_id::InitProducerIdHandler>(),
            erased::<find_coordinator::FindCoordinatorHandler>(),
            erased::<join_group::JoinGroupHandler>(),
            erased::<sync_group::SyncGroupHandler>(),
            erased::<heartbeat::HeartbeatHandler>(),
            erased::<leave_group::LeaveGroupHandler>(),
            erased::<offset_commit::OffsetCommitHandler>(),
            erased::<offset_fetch::OffsetFetchHandler>(),
            erased::<offset_delete::OffsetDeleteHandler>(),
            erased::<list_groups::ListGroupsHandler>(),
            erased::<describe_groups::DescribeGroupsHandler>(),
            erased::<delete_groups::DeleteGroupsHandler>(),
            erased::<elect_leaders::ElectLeadersHandler>(),
            erased::<alter_partition_reassignments::AlterPartitionReassignmentsHandler>(),
            erased::<list_partition_reassignments::ListPartitionReassignmentsHandler>(),
            erased::<consumer_group_heartbeat::ConsumerGroupHeartbeatHandler>(),
            erased::<consumer_group_describe::ConsumerGroupDescribeHandler>(),
            erased::<list_config_resources::ListConfigResourcesHandler>(),
            erased::<add_partitions_to_txn::AddPartitionsToTxnHandler>(),
            erased::<add_offsets_to_txn::AddOffsetsToTxnHandler>(),
            erased::<end_txn::EndTxnHandler>(),
            erased::<write_txn_markers::WriteTxnMarkersHandler>(),
            erased::<describe_transactions::DescribeTransactionsHandler>(),
            erased::<list_transactions::ListTransactionsHandler>(),
            erased::<txn_offset_commit::TxnOffsetCommitHandler>(),
            erased::<describe_producers::DescribeProducersHandler>(),
            erased::<unregister_broker::UnregisterBrokerHandler>(),
            erased::<sasl_handshake::SaslHandshakeHandler>(),
            erased::<sasl_authenticate::SaslAuthenticateHandler>(),
            erased::<describe_user_scram_credentials::DescribeUserScramCredentialsHandler>(),
            erased::<alter_user_scram_credentials::AlterUserScramCredentialsHandler>(),
            erased::<acls::DescribeAclsHandler>(),
            erased::<acls::CreateAclsHandler>(),
            erased::<acls::DeleteAclsHandler>(),
            erased::<client_quotas::DescribeClientQuotasHandler>(),
            erased::<client_quotas::AlterClientQuotasHandler>(),
        ];
        Self::of(apis)
    }

    fn of(apis: Vec<Box<dyn Api>>) -> Self {
        let max_key = apis.iter().map(|a| a.key() as usize).max().unwrap_or(0);
        let mut by_key: Vec<Option<Box<dyn Api>>> = (0..=max_key).map(|_| None).collect();
        for api in apis {
            let key = api.key() as usize;
            by_key[key] = Some(api);
        }
        Self { by_key }
    }

    pub fn get(&self, key: i16) -> Option<&dyn Api> {
        usize::try_from(key)
            .ok()
            .and_then(|k| self.by_key.get(k))
            .and_then(|a| a.as_deref())
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Api> {
        self.by_key.iter().filter_map(|a| a.as_deref())
    }
}

impl Default for ApiTable {
    fn default() -> Self {
        Self::new()
    }
}

pub use api_versions::unsupported_api_versions_response;

#[cfg(test)]
mod tests {
    use super::*;

    /// What ApiVersions advertises: (key, min, max). Kafka 4.1's ranges (KIP-896
    /// dropped the oldest versions), cut to what strom serves.
    const ADVERTISED: &[(i16, i16, i16)] = &[
        (0, 0, 13), // Produce: v0-2 listed, not served (KAFKA-18659)
        (1, 4, 18), // Fetch
        (2, 1, 10), // ListOffsets
        (3, 0, 13), // Metadata
        (8, 2, 9),  // OffsetCommit
        (9, 1, 9),  // OffsetFetch
        (10, 0, 6), // FindCoordinator
        (11, 0, 9), // JoinGroup
        (12, 0, 4), // Heartbeat
        (13, 0, 5), // LeaveGroup
        (14, 0, 5), // SyncGroup
        (15, 0, 6), // DescribeGroups
        (16, 0, 5), // ListGroups
        (17, 0, 1), // SaslHandshake
        (18, 0, 4), // ApiVersions
        (19, 2, 7), // CreateTopics
        (20, 1, 6), // DeleteTopics
        (21, 0, 2), // DeleteRecords
        (22, 0, 5), // InitProducerId
        (23, 2, 4), // OffsetForLeaderEpoch
        (24, 0, 5), // AddPartitionsToTxn
        (25, 0, 4), // AddOffsetsToTxn
        (26, 0, 5), // EndTxn
        (27, 1, 1), // WriteTxnMarkers
        (28, 0, 5), // TxnOffsetCommit
        (29, 1, 3), // DescribeAcls
        (30, 1, 3), // CreateAcls
        (31, 1, 3), // DeleteAcls
        (32, 1, 4), // DescribeConfigs
        (33, 0, 2), // AlterConfigs
        (35, 1, 4), // DescribeLogDirs
        (36, 0, 2), // SaslAuthenticate
        (37, 0, 3), // CreatePartitions
        (42, 0, 2), // DeleteGroups
        (43, 0, 2), // ElectLeaders
        (44, 0, 1), // IncrementalAlterConfigs
        (45, 0, 0), // AlterPartitionReassignments
        (46, 0, 0), // ListPartitionReassignments
        (47, 0, 0), // OffsetDelete
        (48, 0, 1), // DescribeClientQuotas
        (49, 0, 1), // AlterClientQuotas
        (50, 0, 0), // DescribeUserScramCredentials
        (51, 0, 0), // AlterUserScramCredentials
        (55, 0, 2), // DescribeQuorum
        (60, 0, 2), // DescribeCluster
        (61, 0, 0), // DescribeProducers
        (64, 0, 0), // UnregisterBroker
        (65, 0, 0), // DescribeTransactions
        (66, 0, 2), // ListTransactions
        (68, 0, 1), // ConsumerGroupHeartbeat
        (69, 0, 1), // ConsumerGroupDescribe
        (74, 0, 1), // ListConfigResources
    ];

    #[test]
    fn the_table_advertises_exactly_the_pinned_versions() {
        let table: Vec<(i16, i16, i16)> = ApiTable::new()
            .iter()
            .map(|api| (api.key() as i16, api.advertised().min, api.advertised().max))
            .collect();
        assert_eq!(table, ADVERTISED);
    }

    #[test]
    fn every_served_version_can_be_decoded_and_only_produce_lists_more() {
        for api in ApiTable::new().iter() {
            let codec = api.key().valid_versions();
            let served = api.versions();
            assert!(
                codec.min <= served.min && served.min <= served.max && served.max <= codec.max,
                "{:?}: served {served:?}, codec {codec:?}",
                api.key()
            );
            let listed = api.advertised();
            if api.key() == ApiKey::Produce {
                assert_eq!((served.min, listed.min), (3, 0));
                assert_eq!(listed.max, served.max);
            } else {
                assert_eq!(listed, served, "{:?}", api.key());
            }
        }
    }

    /// The vendored codec's bounds (vendor/README.md): counts are checked against the
    /// bytes left and Kafka 4.4's caps before anything is reserved.
    #[test]
    fn the_codec_refuses_counts_over_the_bytes_left_or_kafkas_caps() {
        use kafka_protocol::messages::MetadataRequest;
        fn metadata_v4(count: i32, filler: usize) -> Bytes {
            let mut body = count.to_be_bytes().to_vec();
            body.resize(4 + filler, 0);
            body.push(1);
            Bytes::from(body)
        }
        let error = |body: Bytes| {
            decode_guarded::<MetadataRequest>(&mut body.clone(), 4)
                .unwrap_err()
                .to_string()
        };
        assert!(error(metadata_v4(1_000, 3)).contains("Length 1000 is over the 4 bytes left"));
        assert!(error(metadata_v4(i32::MAX, 3)).contains("over the limit of 1000000"));
        assert!(error(metadata_v4(1_000_001, 1_000_001))
            .contains("Array of 1000001 elements is over the limit of 1000000"));
        // 1,000,000 empty names with the bytes for them decode.
        let ok = decode_guarded::<MetadataRequest>(&mut metadata_v4(1_000_000, 2_000_000), 4);
        assert_eq!(ok.unwrap().topics.map(|t| t.len()), Some(1_000_000));

        fn put_uvarint(mut n: u32, out: &mut Vec<u8>) {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        fn header_v2(tags: u32) -> Bytes {
            let mut header = vec![0, 18, 0, 3, 0, 0, 0, 7, 0, 1, b'c'];
            put_uvarint(tags, &mut header);
            for tag in 0..tags {
                put_uvarint(tag, &mut header);
                header.push(0);
            }
            Bytes::from(header)
        }
        let header = |tags| RequestHeader::decode(&mut header_v2(tags), 2);
        assert_eq!(header(10_000).unwrap().unknown_tagged_fields.len(), 10_000);
        let refused = format!("{:#}", header(10_001).unwrap_err());
        assert!(
            refused.contains("10001 tagged fields are over the limit of 10000"),
            "{refused}"
        );
    }
}
