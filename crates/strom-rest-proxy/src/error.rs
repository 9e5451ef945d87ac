//! The proxy's errors, as Confluent's REST Proxy reports them: an HTTP status and a body
//! `{"error_code": N, "message": "..."}`. Kafka errors are mapped to codes here, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strom_client::Error as ClientError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error_code}: {message}")]
pub struct RestError {
    pub status: StatusCode,
    pub error_code: u32,
    pub message: String,
}

pub type RestResult<T> = Result<T, RestError>;

// Confluent's codes (kafka-rest's Errors and rest-utils' KafkaExceptionMapper).
pub const KAFKA_BAD_REQUEST: u32 = 40002;
pub const KAFKA_AUTHENTICATION: u32 = 40101;
pub const KAFKA_AUTHORIZATION: u32 = 40301;
pub const TOPIC_NOT_FOUND: u32 = 40401;
pub const PARTITION_NOT_FOUND: u32 = 40402;
pub const CONSUMER_INSTANCE_NOT_FOUND: u32 = 40403;
pub const UNKNOWN_TOPIC_OR_PARTITION: u32 = 40403;
pub const CONSUMER_FORMAT_MISMATCH: u32 = 40601;
/// v3's code for a Kafka UNKNOWN_TOPIC_OR_PARTITION, with Kafka's own message.
pub const UNKNOWN_TOPIC_OR_PARTITION_MESSAGE: &str =
    "This server does not host this topic-partition.";
pub const CONSUMER_ALREADY_SUBSCRIBED: u32 = 40901;
pub const CONSUMER_ALREADY_EXISTS: u32 = 40902;
pub const ILLEGAL_STATE: u32 = 40903;
pub const KEY_SCHEMA_MISSING: u32 = 42201;
pub const VALUE_SCHEMA_MISSING: u32 = 42202;
pub const JSON_CONVERSION: u32 = 42203;
pub const INVALID_CONSUMER_CONFIG: u32 = 42204;
pub const INVALID_SCHEMA: u32 = 42205;
pub const INVALID_PAYLOAD: u32 = 42206;
pub const SERIALIZATION: u32 = 42207;
pub const TOO_MANY_REQUESTS: u32 = 42901;
pub const KAFKA_ERROR: u32 = 50002;
pub const KAFKA_RETRIABLE_ERROR: u32 = 50003;
pub const BROKER_NOT_AVAILABLE: u32 = 50302;

impl RestError {
    pub fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// An error whose code is its HTTP status, as rest-utils reports framework errors.
    pub fn http(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, u32::from(status.as_u16()), message)
    }

    pub fn not_found() -> Self {
        Self::http(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
    }

    pub fn method_not_allowed() -> Self {
        Self::http(
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP 405 Method Not Allowed",
        )
    }

    pub fn not_acceptable() -> Self {
        Self::http(StatusCode::NOT_ACCEPTABLE, "HTTP 406 Not Acceptable")
    }

    pub fn unsupported_media_type() -> Self {
        Self::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "HTTP 415 Unsupported Media Type",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::http(StatusCode::BAD_REQUEST, message)
    }

    pub fn unprocessable(error_code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error_code, message)
    }

    pub fn topic_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, TOPIC_NOT_FOUND, "Topic not found.")
    }

    pub fn partition_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            PARTITION_NOT_FOUND,
            "Partition not found.",
        )
    }

    pub fn consumer_instance_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            CONSUMER_INSTANCE_NOT_FOUND,
            "Consumer instance not found.",
        )
    }

    pub fn illegal_state(why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            ILLEGAL_STATE,
            format!("Illegal state: {why}"),
        )
    }

    pub fn serialization(why: impl std::fmt::Display) -> Self {
        Self::unprocessable(SERIALIZATION, format!("Error serializing message. {why}"))
    }

    /// v3: a cluster id that is not this cluster's (kafka-rest's `checkEntityExists`).
    pub fn cluster_not_found(cluster_id: &str) -> Self {
        Self::http(
            StatusCode::NOT_FOUND,
            format!("Cluster {cluster_id} cannot be found."),
        )
    }

    /// v3: a topic or partition Kafka does not know.
    pub fn unknown_topic_or_partition() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            UNKNOWN_TOPIC_OR_PARTITION,
            UNKNOWN_TOPIC_OR_PARTITION_MESSAGE,
        )
    }

    /// v3's BadRequestException: the code is the status, the message titled.
    pub fn v3_bad_request(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Bad Request: {detail}"))
    }

    /// A request body that parsed but says something impossible (kafka-rest's
    /// invalidPayloadException).
    pub fn invalid_payload(detail: impl std::fmt::Display) -> Self {
        Self::unprocessable(INVALID_PAYLOAD, format!("Payload error. {detail}"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::http(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The status and code of a Kafka error, as rest-utils' KafkaExceptionMapper maps
    /// Kafka's exception classes; the code for everything else that failed in Kafka.
    pub fn from_kafka_code(code: i16, message: String) -> Self {
        let (status, error_code) = match code {
            // SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE, UNSUPPORTED_SASL_MECHANISM
            58 | 34 | 33 => (StatusCode::UNAUTHORIZED, KAFKA_AUTHENTICATION),
            // TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN authorization failed
            29 | 30 | 31 | 53 | 65 => (StatusCode::FORBIDDEN, KAFKA_AUTHORIZATION),
            // UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID
            3 | 100 => (StatusCode::NOT_FOUND, UNKNOWN_TOPIC_OR_PARTITION),
            // BROKER_NOT_AVAILABLE
            8 => (StatusCode::SERVICE_UNAVAILABLE, BROKER_NOT_AVAILABLE),
            // MESSAGE_TOO_LARGE
            10 => (StatusCode::PAYLOAD_TOO_LARGE, 413),
            // THROTTLING_QUOTA_EXCEEDED
            89 => (StatusCode::TOO_MANY_REQUESTS, TOO_MANY_REQUESTS),
            // INVALID_TOPIC_EXCEPTION, UNSUPPORTED_VERSION, TOPIC_ALREADY_EXISTS,
            // INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REQUEST,
            // INVALID_CONFIG, POLICY_VIOLATION, SECURITY_DISABLED, TOPIC_DELETION_DISABLED,
            // UNKNOWN_SERVER_ERROR, INVALID_REPLICA_ASSIGNMENT
            17 | 35 | 36 | 37 | 38 | 42 | 40 | 44 | 54 | 73 | -1 | 39 => {
                (StatusCode::BAD_REQUEST, KAFKA_BAD_REQUEST)
            }
            code if is_retriable(code) => {
                (StatusCode::INTERNAL_SERVER_ERROR, KAFKA_RETRIABLE_ERROR)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, KAFKA_ERROR),
        };
        Self::new(status, error_code, message)
    }
}

fn is_retriable(code: i16) -> bool {
    kafka_protocol::ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

impl From<ClientError> for RestError {
    fn from(error: ClientError) -> Self {
        match &error {
            ClientError::Kafka { code, .. } => Self::from_kafka_code(*code, error.to_string()),
            // Kafka's own client reports these as timeouts: retriable.
            ClientError::Connect { .. } | ClientError::Io { .. } | ClientError::Timeout { .. } => {
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    KAFKA_RETRIABLE_ERROR,
                    error.to_string(),
                )
            }
            ClientError::Tls { .. } | ClientError::Sasl(_) => Self::new(
                StatusCode::UNAUTHORIZED,
                KAFKA_AUTHENTICATION,
                error.to_string(),
            ),
            ClientError::InvalidArgument(_) => Self::new(
                StatusCode::BAD_REQUEST,
                KAFKA_BAD_REQUEST,
                error.to_string(),
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                KAFKA_ERROR,
                error.to_string(),
            ),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.error_code, "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_map_as_confluent_maps_them() {
        let cases = [
            (3, StatusCode::NOT_FOUND, 40403),
            (29, StatusCode::FORBIDDEN, 40301),
            (36, StatusCode::BAD_REQUEST, 40002),
            (6, StatusCode::INTERNAL_SERVER_ERROR, 50003),
            (87, StatusCode::INTERNAL_SERVER_ERROR, 50002),
            (10, StatusCode::PAYLOAD_TOO_LARGE, 413),
        ];
        for (code, status, error_code) in cases {
            let e = RestError::from_kafka_code(code, "m".into());
            assert_eq!(
                (e.status, e.error_code),
                (status, error_code),
                "code {code}"
            );
        }
    }
}
