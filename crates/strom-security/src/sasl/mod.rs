//! SASL mechanisms on the broker's side, each a state machine: the connection
//! hands it the client's tokens (SaslAuthenticate's `auth_bytes`) and sends back
//! what it answers, until it names the authenticated user or fails.

pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::fmt;

/// The mechanisms strom serves, by their SASL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a mechanism answers to one client token.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More is needed: send this to the client.
    Challenge(Vec<u8>),
    /// The client is who it says: send `response` (possibly empty) and the exchange is over.
    Done(Authenticated),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The authorization id: the principal's name.
    pub user: String,
    pub response: Vec<u8>,
    /// When the credential stops being valid (ms since the epoch), for
    /// re-authentication (KIP-368); a token's expiry, say.
    pub credential_expires_at_ms: Option<i64>,
}

/// A failed exchange; the message goes to the client as Kafka words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthenticationFailed(pub String);

/// One exchange in progress.
pub trait SaslServer: Send {
    fn mechanism(&self) -> Mechanism;
    fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthenticationFailed>;
    /// `evaluate` at a time (ms since the epoch), for mechanisms whose credentials expire.
    fn evaluate_at(&mut self, token: &[u8], _now_ms: i64) -> Result<Step, AuthenticationFailed> {
        self.evaluate(token)
    }
    /// Why the exchange failed, for the broker's log, when the client is told less.
    fn failure_detail(&self) -> Option<String> {
        None
    }
}
