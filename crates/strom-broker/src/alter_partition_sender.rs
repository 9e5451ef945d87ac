//! ISR changes a leader proposes (Kafka's AlterPartitionManager): one AlterPartition
//! (key 56) per proposal to the active controller, retried while the proposal is still
//! the one pending; the answer goes back to the partition's `LeaderState`.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use strom_replication::{
    AlterPartitionError, AlterPartitionProposal, AlterPartitionRetry, CommittedIsr,
};
use strom_types::ErrorCode;
use tracing::{debug, warn};

use crate::broker::{now_ms, Broker};
use crate::partition::Partition;
use crate::replica_manager::{complete_acks, local_broker_epoch, Role};

/// Between resends of a proposal the controller did not take (Kafka retries after 50 ms
/// with backoff; once a second keeps an unreachable controller from being flooded).
const RESEND_BACKOFF: Duration = Duration::from_millis(500);

/// Sends `proposal` for `partition` in the background.
pub fn send(broker: Arc<Broker>, partition: Arc<Partition>, proposal: AlterPartitionProposal) {
    tokio::spawn(async move {
        let mut proposal = proposal;
        loop {
            let result = call_controller(&broker, &partition, &proposal).await;
            match settle(&broker, &partition, &proposal, result) {
                Some(again) => {
                    proposal = again;
                    tokio::time::sleep(RESEND_BACKOFF).await;
                }
                None => return,
            }
        }
    });
}

fn request(
    broker: &Broker,
    partition: &Partition,
    proposal: &AlterPartitionProposal,
) -> AlterPartitionRequest {
    let image = broker.image();
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_broker_epoch(local_broker_epoch(broker, &image))
        .with_topics(vec![TopicData::default()
            .with_topic_id(partition.topic_id)
            .with_partitions(vec![PartitionData::default()
                .with_partition_index(partition.index)
                .with_leader_epoch(proposal.leader_epoch)
                .with_partition_epoch(proposal.partition_epoch)
                .with_new_isr_with_epochs(
                    proposal
                        .new_isr
                        .iter()
                        .map(|m| {
                            BrokerState::default()
                                .with_broker_id(BrokerId(m.replica_id))
                                .with_broker_epoch(m.broker_epoch)
                        })
                        .collect(),
                )])])
}

/// The one call to the active controller: over its CONTROLLER listener in a cluster of
/// several voters, carried out here on a one-voter node (which is its own controller).
async fn call_controller(
    broker: &Broker,
    partition: &Partition,
    proposal: &AlterPartitionProposal,
) -> Result<AlterPartitionResponse, AlterPartitionError> {
    let request = request(broker, partition, proposal);
    debug!(topic = %partition.topic, partition = partition.index, isr = ?proposal.isr(), "sending AlterPartition");
    if !broker.config.cluster.is_single_voter() {
        return broker
            .call_controller(&request, ALTER_PARTITION_VERSION)
            .await
            .map_err(|e| match e {
                crate::controller_channel::ControllerCallError::NoController => {
                    AlterPartitionError::NotController
                }
                e => AlterPartitionError::NetworkException(e.to_string()),
            });
    }
    Ok(crate::apis::alter_partition::alter_partition_on_controller(
        broker,
        ALTER_PARTITION_VERSION,
        &request,
    )
    .await)
}

/// The version sent: ISR members with their broker epochs (KIP-903).
const ALTER_PARTITION_VERSION: i16 = 3;

/// Hands the answer to the leader state; returns a proposal to send again.
fn settle(
    broker: &Broker,
    partition: &Partition,
    sent: &AlterPartitionProposal,
    result: Result<AlterPartitionResponse, AlterPartitionError>,
) -> Option<AlterPartitionProposal> {
    let answer = result.and_then(|response| committed_of(&response, partition));
    let replica = partition.replica();
    let Role::Leader(state) = &replica.role else {
        return None;
    };
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    match answer {
        Ok(committed) => {
            let hw = state.on_isr_committed(sent, &committed, &partition.replica_log(), now_ms());
            drop(state);
            drop(replica);
            if let Some(hw) = hw {
                if partition.raise_high_watermark(hw) {
                    partition.notify_appended();
                }
            }
            complete_acks(&broker.replicas, partition);
            None
        }
        Err(error) => match state.on_isr_change_failed(sent, &error) {
            AlterPartitionRetry::Resend(again) => Some(again),
            AlterPartitionRetry::Ignored
            | AlterPartitionRetry::Reverted
            | AlterPartitionRetry::AwaitMetadata => {
                warn!(topic = %partition.topic, partition = partition.index, %error, "ISR change refused");
                None
            }
        },
    }
}

/// The partition's result in an AlterPartition response.
fn committed_of(
    response: &AlterPartitionResponse,
    partition: &Partition,
) -> Result<CommittedIsr, AlterPartitionError> {
    if response.error_code != 0 {
        return Err(crate::errors::alter_partition_error(
            ErrorCode::try_from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError),
            -1,
        ));
    }
    let data = response
        .topics
        .iter()
        .filter(|t| t.topic_id == partition.topic_id)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition.index)
        .ok_or(AlterPartitionError::UnknownTopicOrPartition)?;
    if data.error_code != 0 {
        return Err(crate::errors::alter_partition_error(
            ErrorCode::try_from_code(data.error_code).unwrap_or(ErrorCode::UnknownServerError),
            -1,
        ));
    }
    Ok(CommittedIsr {
        leader_epoch: data.leader_epoch,
        partition_epoch: data.partition_epoch,
        isr: data.isr.iter().map(|b| b.0).collect(),
    })
}
