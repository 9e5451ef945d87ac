//! The one error type of the crate; its Display is the message users see.

/// What went wrong while fetching a schema, or encoding or decoding a value.
#[derive(Debug, thiserror::Error)]
pub enum SerdeError {
    /// The registry answered with an error: Confluent's `error_code` and `message`, and the
    /// HTTP status (the REST proxy forwards them).
    #[error("error_code {error_code}: {message}")]
    Registry {
        status: u16,
        error_code: i64,
        message: String,
    },
    /// No usable answer from the registry.
    #[error("schema registry at {url}: {why}")]
    Transport { url: String, why: String },
    /// A registry URL this client cannot use.
    #[error("{0}")]
    Url(String),
    /// A schema (or the registry's record of one) that cannot be used.
    #[error("{0}")]
    Schema(String),
    /// A value that does not fit its schema.
    #[error("{0}")]
    Value(String),
    /// Bytes that are not an encoding under their writer schema.
    #[error("{0}")]
    Payload(String),
    /// `inner` with what was being done. Not a `source`: the text already includes it.
    #[error("{context}: {inner}")]
    Context {
        context: String,
        inner: Box<SerdeError>,
    },
}

pub type Result<T, E = SerdeError> = std::result::Result<T, E>;

impl SerdeError {
    pub fn context(self, context: impl Into<String>) -> SerdeError {
        SerdeError::Context {
            context: context.into(),
            inner: Box::new(self),
        }
    }

    /// The error under its contexts.
    pub fn root(&self) -> &SerdeError {
        match self {
            SerdeError::Context { inner, .. } => inner.root(),
            other => other,
        }
    }

    /// The registry's own error (HTTP status, `error_code`, `message`), if that is the cause.
    pub fn registry_error(&self) -> Option<(u16, i64, &str)> {
        match self.root() {
            SerdeError::Registry {
                status,
                error_code,
                message,
            } => Some((*status, *error_code, message)),
            _ => None,
        }
    }
}

/// An error with its sources, as one line ("outer: inner").
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `.with_context(..)` on results, for this crate's errors.
pub(crate) trait ResultExt<T> {
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_read_outer_to_inner_and_keep_the_registry_error() {
        let e = SerdeError::Registry {
            status: 404,
            error_code: 40403,
            message: "Schema 7 not found".into(),
        }
        .context("fetching schema 7")
        .context("the value of partition 0 offset 3");
        assert_eq!(
            e.to_string(),
            "the value of partition 0 offset 3: fetching schema 7: error_code 40403: Schema 7 not found"
        );
        assert_eq!(e.registry_error(), Some((404, 40403, "Schema 7 not found")));
        assert!(std::error::Error::source(&e).is_none());
        assert_eq!(SerdeError::Value("x".into()).registry_error(), None);
    }
}
