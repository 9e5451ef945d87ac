//! Every served API: each input is one request frame (without its size
//! prefix), answered by a real one-node broker in this process through the
//! path a connection takes (header peek, API table, decode, handler, encode).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use strom_broker::fuzzing::{FuzzBroker, Outcome};

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

/// Long polls and rebalances are left waiting after this.
const DEADLINE: Duration = Duration::from_millis(50);

fn broker() -> &'static FuzzBroker {
    static BROKER: OnceLock<FuzzBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        // Under the TMPDIR scripts/fuzz gives each run (and removes after it). The seed
        // session's topics exist and its producer ids are issued, so idempotent and
        // transactional seeds reach the append path.
        let dir = std::env::temp_dir().join(format!("strom-fuzz-broker-{}", std::process::id()));
        FuzzBroker::start_seeded(&dir)
    })
}

fuzz_target!(init: alloc_limit::init(), |frame: &[u8]| {
    let Outcome::Answered(Some(response)) = broker().handle_frame(frame, DEADLINE) else {
        return;
    };
    // A whole frame: its size prefix, then the request's correlation id.
    let size = i32::from_be_bytes(response[..4].try_into().unwrap());
    assert_eq!(size as usize, response.len() - 4, "size prefix");
    assert_eq!(&response[4..8], &frame[4..8], "correlation id");
    // The response decodes as the request's api and version, to its last byte (ApiVersions
    // answers an unsupported version in v0, KIP-511).
    let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
    let mut version = i16::from_be_bytes([frame[2], frame[3]]);
    if key == ApiKey::ApiVersions && !(0..=4).contains(&version) {
        version = 0;
    }
    let mut body = response.freeze().slice(4..);
    ResponseHeader::decode(&mut body, key.response_header_version(version))
        .expect("the response header decodes");
    if let Err(e) = decode_response(key, &mut body, version) {
        panic!("the {key:?} v{version} response does not decode: {e:#}");
    }
    assert!(
        body.is_empty(),
        "{} bytes after the {key:?} v{version} response",
        body.len()
    );
});

fn check<T: Decodable>(body: &mut Bytes, version: i16) -> anyhow::Result<()> {
    T::decode(body, version).map(|_| ())
}

/// The response type of each api key (kafka-protocol's `ResponseKind::decode` without
/// its `messages_enums` feature).
fn decode_response(key: ApiKey, body: &mut Bytes, version: i16) -> anyhow::Result<()> {
    match key {
        ApiKey::Produce => check::<ProduceResponse>(body, version),
        ApiKey::Fetch => check::<FetchResponse>(body, version),
        ApiKey::ListOffsets => check::<ListOffsetsResponse>(body, version),
        ApiKey::Metadata => check::<MetadataResponse>(body, version),
        ApiKey::OffsetCommit => check::<OffsetCommitResponse>(body, version),
        ApiKey::OffsetFetch => check::<OffsetFetchResponse>(body, version),
        ApiKey::FindCoordinator => check::<FindCoordinatorResponse>(body, version),
        ApiKey::JoinGroup => check::<JoinGroupResponse>(body, version),
        ApiKey::Heartbeat => check::<HeartbeatResponse>(body, version),
        ApiKey::LeaveGroup => check::<LeaveGroupResponse>(body, version),
        ApiKey::SyncGroup => check::<SyncGroupResponse>(body, version),
        ApiKey::DescribeGroups => check::<DescribeGroupsResponse>(body, version),
        ApiKey::ListGroups => check::<ListGroupsResponse>(body, version),
        ApiKey::SaslHandshake => check::<SaslHandshakeResponse>(body, version),
        ApiKey::ApiVersions => check::<ApiVersionsResponse>(body, version),
        ApiKey::CreateTopics => check::<CreateTopicsResponse>(body, version),
        ApiKey::DeleteTopics => check::<DeleteTopicsResponse>(body, version),
        ApiKey::DeleteRecords => check::<DeleteRecordsResponse>(body, version),
        ApiKey::InitProducerId => check::<InitProducerIdResponse>(body, version),
        ApiKey::OffsetForLeaderEpoch => check::<OffsetForLeaderEpochResponse>(body, version),
        ApiKey::AddPartitionsToTxn => check::<AddPartitionsToTxnResponse>(body, version),
        ApiKey::AddOffsetsToTxn => check::<AddOffsetsToTxnResponse>(body, version),
        ApiKey::EndTxn => check::<EndTxnResponse>(body, version),
        ApiKey::WriteTxnMarkers => check::<WriteTxnMarkersResponse>(body, version),
        ApiKey::TxnOffsetCommit => check::<TxnOffsetCommitResponse>(body, version),
        ApiKey::DescribeAcls => check::<DescribeAclsResponse>(body, version),
        ApiKey::CreateAcls => check::<CreateAclsResponse>(body, version),
        ApiKey::DeleteAcls => check::<DeleteAclsResponse>(body, version),
        ApiKey::DescribeConfigs => check::<DescribeConfigsResponse>(body, version),
        ApiKey::AlterConfigs => check::<AlterConfigsResponse>(body, version),
        ApiKey::AlterReplicaLogDirs => check::<AlterReplicaLogDirsResponse>(body, version),
        ApiKey::DescribeLogDirs => check::<DescribeLogDirsResponse>(body, version),
        ApiKey::SaslAuthenticate => check::<SaslAuthenticateResponse>(body, version),
        ApiKey::CreatePartitions => check::<CreatePartitionsResponse>(body, version),
        ApiKey::CreateDelegationToken => check::<CreateDelegationTokenResponse>(body, version),
        ApiKey::RenewDelegationToken => check::<RenewDelegationTokenResponse>(body, version),
        ApiKey::ExpireDelegationToken => check::<ExpireDelegationTokenResponse>(body, version),
        ApiKey::DescribeDelegationToken => check::<DescribeDelegationTokenResponse>(body, version),
        ApiKey::DeleteGroups => check::<DeleteGroupsResponse>(body, version),
        ApiKey::ElectLeaders => check::<ElectLeadersResponse>(body, version),
        ApiKey::IncrementalAlterConfigs => check::<IncrementalAlterConfigsResponse>(body, version),
        ApiKey::AlterPartitionReassignments => {
            check::<AlterPartitionReassignmentsResponse>(body, version)
        }
        ApiKey::ListPartitionReassignments => {
            check::<ListPartitionReassignmentsResponse>(body, version)
        }
        ApiKey::OffsetDelete => check::<OffsetDeleteResponse>(body, version),
        ApiKey::DescribeClientQuotas => check::<DescribeClientQuotasResponse>(body, version),
        ApiKey::AlterClientQuotas => check::<AlterClientQuotasResponse>(body, version),
        ApiKey::DescribeUserScramCredentials => {
            check::<DescribeUserScramCredentialsResponse>(body, version)
        }
        ApiKey::AlterUserScramCredentials => {
            check::<AlterUserScramCredentialsResponse>(body, version)
        }
        ApiKey::Vote => check::<VoteResponse>(body, version),
        ApiKey::BeginQuorumEpoch => check::<BeginQuorumEpochResponse>(body, version),
        ApiKey::EndQuorumEpoch => check::<EndQuorumEpochResponse>(body, version),
        ApiKey::DescribeQuorum => check::<DescribeQuorumResponse>(body, version),
        ApiKey::AlterPartition => check::<AlterPartitionResponse>(body, version),
        ApiKey::UpdateFeatures => check::<UpdateFeaturesResponse>(body, version),
        ApiKey::Envelope => check::<EnvelopeResponse>(body, version),
        ApiKey::FetchSnapshot => check::<FetchSnapshotResponse>(body, version),
        ApiKey::DescribeCluster => check::<DescribeClusterResponse>(body, version),
        ApiKey::DescribeProducers => check::<DescribeProducersResponse>(body, version),
        ApiKey::BrokerRegistration => check::<BrokerRegistrationResponse>(body, version),
        ApiKey::BrokerHeartbeat => check::<BrokerHeartbeatResponse>(body, version),
        ApiKey::UnregisterBroker => check::<UnregisterBrokerResponse>(body, version),
        ApiKey::DescribeTransactions => check::<DescribeTransactionsResponse>(body, version),
        ApiKey::ListTransactions => check::<ListTransactionsResponse>(body, version),
        ApiKey::AllocateProducerIds => check::<AllocateProducerIdsResponse>(body, version),
        ApiKey::ConsumerGroupHeartbeat => check::<ConsumerGroupHeartbeatResponse>(body, version),
        ApiKey::ConsumerGroupDescribe => check::<ConsumerGroupDescribeResponse>(body, version),
        ApiKey::ControllerRegistration => check::<ControllerRegistrationResponse>(body, version),
        ApiKey::GetTelemetrySubscriptions => {
            check::<GetTelemetrySubscriptionsResponse>(body, version)
        }
        ApiKey::PushTelemetry => check::<PushTelemetryResponse>(body, version),
        ApiKey::AssignReplicasToDirs => check::<AssignReplicasToDirsResponse>(body, version),
        ApiKey::ListConfigResources => check::<ListConfigResourcesResponse>(body, version),
        ApiKey::DescribeTopicPartitions => check::<DescribeTopicPartitionsResponse>(body, version),
        ApiKey::ShareGroupHeartbeat => check::<ShareGroupHeartbeatResponse>(body, version),
        ApiKey::ShareGroupDescribe => check::<ShareGroupDescribeResponse>(body, version),
        ApiKey::ShareFetch => check::<ShareFetchResponse>(body, version),
        ApiKey::ShareAcknowledge => check::<ShareAcknowledgeResponse>(body, version),
        ApiKey::AddRaftVoter => check::<AddRaftVoterResponse>(body, version),
        ApiKey::RemoveRaftVoter => check::<RemoveRaftVoterResponse>(body, version),
        ApiKey::UpdateRaftVoter => check::<UpdateRaftVoterResponse>(body, version),
        ApiKey::InitializeShareGroupState => {
            check::<InitializeShareGroupStateResponse>(body, version)
        }
        ApiKey::ReadShareGroupState => check::<ReadShareGroupStateResponse>(body, version),
        ApiKey::WriteShareGroupState => check::<WriteShareGroupStateResponse>(body, version),
        ApiKey::DeleteShareGroupState => check::<DeleteShareGroupStateResponse>(body, version),
        ApiKey::ReadShareGroupStateSummary => {
            check::<ReadShareGroupStateSummaryResponse>(body, version)
        }
        ApiKey::DescribeShareGroupOffsets => {
            check::<DescribeShareGroupOffsetsResponse>(body, version)
        }
        ApiKey::AlterShareGroupOffsets => check::<AlterShareGroupOffsetsResponse>(body, version),
        ApiKey::DeleteShareGroupOffsets => check::<DeleteShareGroupOffsetsResponse>(body, version),
    }
}
