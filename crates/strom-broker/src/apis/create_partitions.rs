//! CreatePartitions: grows topics; validate_only stops after the checks.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::controller::create_partitions;
use strom_types::ErrorCode;
use tracing::info;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::client_quotas::{within_request_limit, MutationQuota, MutationRefusal};

/// THROTTLING_QUOTA_EXCEEDED is known from v3; older versions are throttled without it.
const STRICT_QUOTA_VERSION: i16 = 3;

pub struct CreatePartitionsHandler;

impl Handler for CreatePartitionsHandler {
    type Request = CreatePartitionsRequest;
    const KEY: ApiKey = ApiKey::CreatePartitions;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for topic in &request.topics {
            *counts.entry(topic.name.to_string()).or_default() += 1;
        }
        let mut results = Vec::with_capacity(request.topics.len());
        let mut quota = MutationQuota::new(&broker, &ctx, STRICT_QUOTA_VERSION);
        let mut request_records = 0usize;
        for topic in &request.topics {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let fail = |code: ErrorCode, message: String| {
                result
                    .clone()
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message)))
            };
            if !ctx
                .authz(&broker)
                .allows_topic(Operation::Alter, &topic.name)
            {
                results.push(fail(
                    ErrorCode::TopicAuthorizationFailed,
                    "Topic authorization failed.".into(),
                ));
                continue;
            }
            if counts[topic.name.as_str()] > 1 {
                results.push(fail(
                    ErrorCode::InvalidRequest,
                    "Duplicate topic in request.".into(),
                ));
                continue;
            }
            let assignments: Option<Vec<Vec<i32>>> = topic.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            let validate_only = request.validate_only;
            let written = broker
                .write_metadata(|image| {
                    let records =
                        create_partitions(image, &topic.name, topic.count, assignments.as_deref())?;
                    request_records = within_request_limit(request_records, records.len())?;
                    let existing = image.topic(&topic.name).map_or(0, |t| t.partitions.len());
                    quota.take((topic.count.max(0) as usize).saturating_sub(existing) as u32)?;
                    Ok::<_, MutationRefusal>((if validate_only { Vec::new() } else { records }, ()))
                })
                .await;
            match written {
                Ok(()) => {}
                Err(e) => {
                    let (code, message) = e.into_error(|e| e.error());
                    results.push(fail(code, message));
                    continue;
                }
            }
            if !validate_only {
                info!(topic = %topic.name.as_str(), partitions = topic.count, "added partitions");
            }
            results.push(result);
        }
        CreatePartitionsResponse::default()
            .with_results(results)
            .with_throttle_time_ms(quota.throttle_time_ms())
    }
}
