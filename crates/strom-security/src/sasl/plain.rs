//! SASL/PLAIN (RFC 4616) against the users of a JAAS config's `user_<name>="<password>"`
//! options, as Kafka's PlainServerCallbackHandler reads them.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::{Authenticated, AuthenticationFailed, Mechanism, SaslServer, Step};

/// The users PLAIN accepts, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainUsers {
    passwords: BTreeMap<String, String>,
}

impl PlainUsers {
    /// From a PlainLoginModule's options: every `user_NAME=PASSWORD`.
    pub fn from_jaas_options(options: &BTreeMap<String, String>) -> Self {
        let passwords = options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .collect();
        Self { passwords }
    }

    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }

    fn verify(&self, user: &str, password: &str) -> bool {
        // A missing user costs the same comparison as a wrong password.
        let expected = self.passwords.get(user);
        let candidate = expected.map_or("\u{0}missing", String::as_str);
        let same: bool = candidate.as_bytes().ct_eq(password.as_bytes()).into();
        same && expected.is_some()
    }
}

pub struct PlainServer {
    users: std::sync::Arc<PlainUsers>,
}

impl PlainServer {
    pub fn new(users: std::sync::Arc<PlainUsers>) -> Self {
        Self { users }
    }
}

impl SaslServer for PlainServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthenticationFailed> {
        let text = std::str::from_utf8(token)
            .map_err(|_| AuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8".into()))?;
        let parts: Vec<&str> = text.split('\u{0}').collect();
        let [authorization_id, user, password] = parts.as_slice() else {
            return Err(AuthenticationFailed(format!(
                "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
                parts.len()
            )));
        };
        if user.is_empty() {
            return Err(AuthenticationFailed(
                "Authentication failed: username not specified".into(),
            ));
        }
        if password.is_empty() {
            return Err(AuthenticationFailed(
                "Authentication failed: password not specified".into(),
            ));
        }
        if !self.users.verify(user, password) {
            return Err(AuthenticationFailed(
                "Authentication failed: Invalid username or password".into(),
            ));
        }
        if !authorization_id.is_empty() && authorization_id != user {
            return Err(AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username".into(),
            ));
        }
        Ok(Step::Done(Authenticated {
            user: user.to_string(),
            response: Vec::new(),
            credential_expires_at_ms: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn server() -> PlainServer {
        let options = BTreeMap::from([
            ("username".to_string(), "admin".to_string()),
            ("password".to_string(), "admin-secret".to_string()),
            ("user_admin".to_string(), "admin-secret".to_string()),
            ("user_alice".to_string(), "alice-secret".to_string()),
        ]);
        let users = PlainUsers::from_jaas_options(&options);
        assert_eq!(users.len(), 2);
        PlainServer::new(Arc::new(users))
    }

    fn failure(token: &[u8]) -> String {
        server().evaluate(token).unwrap_err().0
    }

    #[test]
    fn a_known_user_with_its_password_is_authenticated() {
        let step = server().evaluate(b"\0alice\0alice-secret").unwrap();
        let Step::Done(done) = step else {
            panic!("{step:?}")
        };
        assert_eq!(done.user, "alice");
        let Step::Done(done) = server().evaluate(b"alice\0alice\0alice-secret").unwrap() else {
            panic!()
        };
        assert_eq!(done.user, "alice");
    }

    #[test]
    fn wrong_credentials_fail_with_kafkas_messages() {
        let invalid = "Authentication failed: Invalid username or password";
        assert_eq!(failure(b"\0alice\0wrong"), invalid);
        assert_eq!(failure(b"\0mallory\0alice-secret"), invalid);
        // `username`/`password` configure the broker's own client, not a user.
        assert_eq!(failure(b"\0username\0admin"), invalid);
        assert_eq!(
            failure(b"\0\0x"),
            "Authentication failed: username not specified"
        );
        assert_eq!(
            failure(b"\0alice\0"),
            "Authentication failed: password not specified"
        );
        assert_eq!(
            failure(b"bob\0alice\0alice-secret"),
            "Authentication failed: Client requested an authorization id that is different from username"
        );
        assert_eq!(
            failure(b"alice\0alice-secret"),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 2"
        );
    }
}
