//! The registry's errors and, in one place, their HTTP status and Confluent error code.

use thiserror::Error;

/// A `_schemas` record that cannot be read.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error("not JSON: {0}")]
    Json(serde_json::Error),
    #[error("no {0} field")]
    Missing(&'static str),
    #[error("unknown key type {0}")]
    UnknownKeyType(String),
}

/// An error answered to a REST call, with Confluent's codes and messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// By id: `Schema 7 not found`; by lookup: `Schema not found` (an empty id).
    #[error("Schema {}not found", if .0.is_empty() { String::new() } else { format!("{} ", .0) })]
    SchemaNotFound(String),
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error("Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{subject}' Version {version} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured(String),
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotConfigured(String),
    /// The new schema is incompatible with an earlier one; the messages say why.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", details.join(", "))]
    Incompatible {
        subject: String,
        details: Vec<String>,
    },
    /// The whole message: `Invalid schema of type AVRO, details: ...`, `Empty schema`, ...
    #[error("{0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel,
    #[error("Invalid mode. Valid values are READWRITE, READONLY, IMPORT and FORWARD.")]
    InvalidMode,
    #[error("The specified subject '{0}' is not a valid.")]
    InvalidSubject(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("The specified context '{0}' is not empty.")]
    ContextNotEmpty(String),
    #[error("{0}")]
    ReferenceExists(String),
    /// A body or parameter that cannot be used.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Register schema operation failed while writing to the Kafka store: {0}")]
    Store(String),
    #[error("Register operation timed out")]
    Timeout,
    /// A write reached a follower and could not be sent on to the leader.
    #[error("Error while forwarding the request to the leader: {0}")]
    ForwardingFailed(String),
    #[error("Leader not known.")]
    UnknownLeader,
    #[error("HTTP 404 Not Found")]
    NotFound,
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    #[error("HTTP 415 Unsupported Media Type")]
    UnsupportedMediaType,
    #[error("HTTP 406 Not Acceptable")]
    NotAcceptable,
}

impl RegistryError {
    /// The HTTP status and the `error_code` of the response body.
    pub fn codes(&self) -> (u16, u32) {
        use RegistryError::*;
        match self {
            SubjectNotFound(_) => (404, 40401),
            VersionNotFound(_) => (404, 40402),
            SchemaNotFound(_) => (404, 40403),
            SubjectSoftDeleted(_) => (404, 40404),
            SubjectNotSoftDeleted(_) => (404, 40405),
            VersionSoftDeleted { .. } => (404, 40406),
            VersionNotSoftDeleted { .. } => (404, 40407),
            SubjectCompatibilityNotConfigured(_) => (404, 40408),
            SubjectModeNotConfigured(_) => (404, 40409),
            Incompatible { .. } => (409, 40901),
            InvalidSchema(_) => (422, 42201),
            InvalidVersion(_) => (422, 42202),
            InvalidCompatibilityLevel => (422, 42203),
            InvalidMode => (422, 42204),
            InvalidSubject(_) => (422, 42208),
            OperationNotPermitted(_) => (422, 42205),
            ContextNotEmpty(_) => (422, 42211),
            ReferenceExists(_) => (422, 42206),
            Unprocessable(_) => (422, 422),
            BadRequest(_) => (400, 400),
            Store(_) => (500, 50001),
            Timeout => (500, 50002),
            ForwardingFailed(_) => (500, 50003),
            UnknownLeader => (500, 50004),
            NotFound => (404, 404),
            MethodNotAllowed => (405, 405),
            UnsupportedMediaType => (415, 415),
            NotAcceptable => (406, 406),
        }
    }
}
