//! The client's error type.

use kafka_protocol::ResponseError;

/// Everything a strom-client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be made.
    // The io error is part of the message (not a `source`), so printing
    // the error chain does not repeat it.
    #[error("cannot connect to {addr}: {error}")]
    Connect { addr: String, error: std::io::Error },
    /// The TLS handshake failed (an untrusted or mismatched certificate,
    /// a broker that does not speak TLS on that port, ...).
    #[error("TLS handshake with {addr} failed: {error}")]
    Tls { addr: String, error: std::io::Error },
    /// The client side of a SASL exchange failed (the broker's refusals
    /// are [`Error::Kafka`] with SASL_AUTHENTICATION_FAILED).
    #[error("{0}")]
    Sasl(String),
    /// Client security settings that cannot be used.
    #[error("invalid client security settings: {0}")]
    Security(#[from] crate::security::SecurityError),
    /// Reading or writing an established connection failed.
    #[error("connection to {addr} failed: {error}")]
    Io { addr: String, error: std::io::Error },
    /// The broker did not answer in time.
    #[error("{what} timed out after {ms} ms")]
    Timeout { what: String, ms: u64 },
    /// The broker answered with a Kafka error code.
    #[error("{}", kafka_display(name, message.as_deref(), context))]
    Kafka {
        code: i16,
        /// The code's protocol name, e.g. `TOPIC_ALREADY_EXISTS`.
        name: String,
        /// The broker's error message, when it sent one.
        message: Option<String>,
        /// What the error is about (a topic, `topic-partition`, a request).
        context: String,
    },
    /// A response frame announced a size the client refuses to read.
    #[error("response frame of {size} bytes from {addr} exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        addr: String,
        size: i64,
        limit: usize,
    },
    /// The broker does not support any version of an API that we can speak.
    #[error("broker {addr} does not support a usable version of {api}")]
    UnsupportedVersion { addr: String, api: String },
    /// A message could not be encoded (a bug or an argument out of range).
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
    /// The broker sent bytes that do not decode.
    #[error("cannot decode {what}: {reason}")]
    Decode { what: String, reason: String },
    /// The broker broke the protocol in another way.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The caller asked for something that cannot be done.
    #[error("{0}")]
    InvalidArgument(String),
}

fn kafka_display(name: &str, message: Option<&str>, context: &str) -> String {
    let mut out = String::new();
    if !context.is_empty() {
        out.push_str(context);
        out.push_str(": ");
    }
    out.push_str(name);
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        out.push_str(": ");
        out.push_str(message);
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Kafka error code, if the broker sent one.
    pub fn code(&self) -> Option<i16> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again (after refreshing metadata) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            // A node that is down or restarting: another try, after a metadata
            // refresh, may reach its successor (Kafka's clients retry a disconnect too).
            Error::Connect { .. } | Error::Io { .. } | Error::Timeout { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn kafka(code: i16, message: Option<String>, context: impl Into<String>) -> Self {
        Error::Kafka {
            code,
            name: error_name(code),
            message,
            context: context.into(),
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Decode {
            what: what.into(),
            reason: format!("{reason:#}"),
        }
    }

    pub(crate) fn encode(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Encode {
            what: what.into(),
            reason: format!("{reason:#}"),
        }
    }
}

/// Turns a response's error code into `Err` (code 0 is success).
pub fn check(code: i16, message: Option<&str>, context: impl Into<String>) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(Error::kafka(code, message.map(str::to_owned), context))
}

/// The protocol name of a Kafka error code, e.g. 36 -> `TOPIC_ALREADY_EXISTS`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        // kafka-protocol names variants in CamelCase after Kafka's SCREAMING_SNAKE names.
        Some(known) => screaming_snake(&format!("{known:?}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_follow_kafka() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }

    #[test]
    fn check_builds_a_kafka_error() {
        assert!(check(0, None, "t").is_ok());
        let err = check(36, Some("Topic 't' already exists."), "topic t").unwrap_err();
        assert_eq!(err.code(), Some(36));
        assert!(!err.is_retriable());
        assert_eq!(
            err.to_string(),
            "topic t: TOPIC_ALREADY_EXISTS: Topic 't' already exists."
        );
        let err = check(6, None, "").unwrap_err();
        assert!(err.is_retriable());
        assert_eq!(err.to_string(), "NOT_LEADER_OR_FOLLOWER");
    }
}
