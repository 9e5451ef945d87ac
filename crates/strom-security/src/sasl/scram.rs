//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka serves them: no
//! channel binding (`n,,`), an optional authorization id equal to the user, credentials
//! stored as salt, StoredKey, ServerKey and iterations (never the password), and
//! Kafka's generic failure message so a client cannot tell a wrong password from an
//! unknown user.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{Authenticated, AuthenticationFailed, Mechanism, SaslServer, Step};

/// Kafka's bounds on a credential's iterations (ScramMechanism.minIterations, and
/// ScramControlManager's MAX_ITERATIONS).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// A stored SCRAM credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// Finds a user's credential for a mechanism.
pub type CredentialLookup = Arc<dyn Fn(&str, Mechanism) -> Option<ScramCredential> + Send + Sync>;

/// Kafka's numbering of the SCRAM mechanisms in its admin API and records.
pub fn mechanism_type(mechanism: Mechanism) -> Option<i8> {
    match mechanism {
        Mechanism::ScramSha256 => Some(1),
        Mechanism::ScramSha512 => Some(2),
        _ => None,
    }
}

pub fn mechanism_of_type(mechanism_type: i8) -> Option<Mechanism> {
    match mechanism_type {
        1 => Some(Mechanism::ScramSha256),
        2 => Some(Mechanism::ScramSha512),
        _ => None,
    }
}

fn hmac(mechanism: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        Mechanism::ScramSha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: Mechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        Mechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

/// RFC 5802's SaltedPassword := Hi(password, salt, i), PBKDF2 with the mechanism's HMAC.
pub fn salted_password(
    mechanism: Mechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    match mechanism {
        Mechanism::ScramSha512 => {
            let mut out = vec![0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
            out
        }
        _ => {
            let mut out = vec![0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
            out
        }
    }
}

/// The stored credential of a salted password (what AlterUserScramCredentials sends).
pub fn credential(
    mechanism: Mechanism,
    salted_password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> ScramCredential {
    let client_key = hmac(mechanism, salted_password, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        stored_key: hash(mechanism, &client_key),
        server_key: hmac(mechanism, salted_password, b"Server Key"),
        iterations,
    }
}

enum State {
    ClientFirst,
    ClientFinal {
        client_first_bare: String,
        server_first: String,
        gs2_header: String,
        nonce: String,
        user: String,
        credential: ScramCredential,
    },
    Finished,
}

pub struct ScramServer {
    mechanism: Mechanism,
    lookup: CredentialLookup,
    server_nonce: String,
    state: State,
}

impl ScramServer {
    /// `server_nonce`: fresh random printable characters (no comma), from the caller.
    pub fn new(mechanism: Mechanism, lookup: CredentialLookup, server_nonce: String) -> Self {
        Self {
            mechanism,
            lookup,
            server_nonce,
            state: State::ClientFirst,
        }
    }

    fn failed(&self) -> AuthenticationFailed {
        AuthenticationFailed(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            self.mechanism
        ))
    }

    fn client_first(&mut self, message: &str) -> Result<Step, AuthenticationFailed> {
        // gs2-header: no channel binding, then an optional authorization id.
        let rest = message.strip_prefix("n,").ok_or_else(|| self.failed())?;
        let (authzid, bare) = rest.split_once(',').ok_or_else(|| self.failed())?;
        let authzid = match authzid {
            "" => None,
            a => Some(
                decode_saslname(a.strip_prefix("a=").ok_or_else(|| self.failed())?)
                    .ok_or_else(|| self.failed())?,
            ),
        };
        let gs2_header = format!(
            "n,{},",
            authzid
                .as_deref()
                .map_or(String::new(), |a| format!("a={}", encode_saslname(a)))
        );
        let mut fields = bare.split(',');
        let user = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .and_then(decode_saslname)
            .ok_or_else(|| self.failed())?;
        let client_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.failed())?;
        // Extensions: only Kafka's delegation-token one exists, and tokens are not served.
        if fields.any(|f| f.starts_with("tokenauth=") && f != "tokenauth=false") {
            return Err(self.failed());
        }
        let credential = (self.lookup)(&user, self.mechanism).ok_or_else(|| self.failed())?;
        if let Some(a) = &authzid {
            if *a != user {
                return Err(AuthenticationFailed(
                    "Authentication failed: Client requested an authorization id that is different from username".into(),
                ));
            }
        }
        if credential.iterations < MIN_ITERATIONS {
            return Err(self.failed());
        }
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::ClientFinal {
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            gs2_header,
            nonce,
            user,
            credential,
        };
        Ok(Step::Challenge(server_first.into_bytes()))
    }

    fn client_final(&mut self, message: &str) -> Result<Step, AuthenticationFailed> {
        let State::ClientFinal {
            client_first_bare,
            server_first,
            gs2_header,
            nonce,
            user,
            credential,
        } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(self.failed());
        };
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or_else(|| self.failed())?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or_else(|| self.failed())?;
        if BASE64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
            return Err(self.failed());
        }
        let final_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or_else(|| self.failed())?;
        // librdkafka before 2.6.1 repeats its own nonce in front of the combined one; Kafka
        // (3.8.1 and later) accepts a final nonce that ends with the combined one, as here.
        if !final_nonce.ends_with(&nonce) {
            return Err(self.failed());
        }
        let proof = BASE64.decode(proof).map_err(|_| self.failed())?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac(
            self.mechanism,
            &credential.stored_key,
            auth_message.as_bytes(),
        );
        if proof.len() != client_signature.len() {
            return Err(self.failed());
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let matches: bool = hash(self.mechanism, &client_key)
            .ct_eq(&credential.stored_key)
            .into();
        if !matches {
            return Err(self.failed());
        }
        let server_signature = hmac(
            self.mechanism,
            &credential.server_key,
            auth_message.as_bytes(),
        );
        Ok(Step::Done(Authenticated {
            user,
            response: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
            credential_expires_at_ms: None,
        }))
    }
}

impl SaslServer for ScramServer {
    fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthenticationFailed> {
        let message = std::str::from_utf8(token)
            .map_err(|_| self.failed())?
            .to_string();
        match self.state {
            State::ClientFirst => self.client_first(&message),
            State::ClientFinal { .. } => self.client_final(&message),
            State::Finished => Err(self.failed()),
        }
    }
}

/// RFC 5802's saslname: `=2C` is a comma and `=3D` an equals sign; any other `=` is invalid.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at + 1..at + 3) {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side of the exchange, written from RFC 5802, to drive the server: the
    /// client-final message and the server signature it expects.
    fn client_final(
        mechanism: Mechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2_header: &str,
    ) -> (String, Vec<u8>) {
        let nonce = server_first
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap();
        client_final_with_nonce(
            mechanism,
            password,
            client_first_bare,
            server_first,
            gs2_header,
            nonce,
        )
    }

    /// As [`client_final`], sending `nonce` as the final message's nonce.
    fn client_final_with_nonce(
        mechanism: Mechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2_header: &str,
        nonce: &str,
    ) -> (String, Vec<u8>) {
        let fields: Vec<&str> = server_first.split(',').collect();
        let salt = BASE64
            .decode(fields[1].strip_prefix("s=").unwrap())
            .unwrap();
        let iterations: u32 = fields[2].strip_prefix("i=").unwrap().parse().unwrap();
        let salted = salted_password(mechanism, password, &salt, iterations);
        let client_key = hmac(mechanism, &salted, b"Client Key");
        let stored_key = hash(mechanism, &client_key);
        let without_proof = format!("c={},r={nonce}", BASE64.encode(gs2_header));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(mechanism, &salted, b"Server Key");
        let expected_server = hmac(mechanism, &server_key, auth_message.as_bytes());
        (
            format!("{without_proof},p={}", BASE64.encode(proof)),
            expected_server,
        )
    }

    fn server(mechanism: Mechanism) -> ScramServer {
        let salt = b"salty-salt".to_vec();
        let stored = credential(
            mechanism,
            &salted_password(mechanism, "alice-secret", &salt, 4096),
            &salt,
            4096,
        );
        let lookup: CredentialLookup =
            Arc::new(move |user, m| (user == "alice" && m == mechanism).then(|| stored.clone()));
        ScramServer::new(mechanism, lookup, "server-nonce".into())
    }

    fn exchange(
        mechanism: Mechanism,
        password: &str,
        authzid: &str,
    ) -> Result<Step, AuthenticationFailed> {
        let mut s = server(mechanism);
        let gs2 = format!("n,{authzid},");
        let bare = "n=alice,r=client-nonce";
        let Step::Challenge(first) = s.evaluate(format!("{gs2}{bare}").as_bytes())? else {
            panic!()
        };
        let first = String::from_utf8(first).unwrap();
        assert!(
            first.starts_with("r=client-nonceserver-nonce,s="),
            "{first}"
        );
        let (final_message, expected) = client_final(mechanism, password, bare, &first, &gs2);
        let step = s.evaluate(final_message.as_bytes())?;
        if let Step::Done(done) = &step {
            assert_eq!(
                done.response,
                format!("v={}", BASE64.encode(expected)).into_bytes()
            );
        }
        Ok(step)
    }

    #[test]
    fn both_mechanisms_authenticate_the_right_password_and_prove_the_server() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let Step::Done(done) = exchange(mechanism, "alice-secret", "").unwrap() else {
                panic!()
            };
            assert_eq!(done.user, "alice");
            let Step::Done(done) = exchange(mechanism, "alice-secret", "a=alice").unwrap() else {
                panic!()
            };
            assert_eq!(done.user, "alice");
        }
    }

    #[test]
    fn a_wrong_password_or_unknown_user_fails_with_kafkas_generic_message() {
        let generic = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
        assert_eq!(
            exchange(Mechanism::ScramSha512, "wrong", "").unwrap_err().0,
            generic
        );
        let mut s = server(Mechanism::ScramSha512);
        assert_eq!(s.evaluate(b"n,,n=bob,r=x").unwrap_err().0, generic);
        let mut s = server(Mechanism::ScramSha512);
        assert_eq!(
            s.evaluate(b"p=tls-unique,,n=alice,r=x").unwrap_err().0,
            generic
        );
        let mut s = server(Mechanism::ScramSha512);
        assert_eq!(
            s.evaluate(b"n,,n=alice,r=x,tokenauth=true").unwrap_err().0,
            generic
        );
        assert!(exchange(Mechanism::ScramSha512, "alice-secret", "a=bob")
            .unwrap_err()
            .0
            .contains("different from username"));
        // A credential for the other mechanism does not do.
        let mut s = server(Mechanism::ScramSha256);
        s.mechanism = Mechanism::ScramSha512;
        assert!(s.evaluate(b"n,,n=alice,r=x").is_err());
    }

    #[test]
    fn old_librdkafkas_repeated_client_nonce_is_accepted_as_kafka_accepts_it() {
        let mechanism = Mechanism::ScramSha256;
        let mut s = server(mechanism);
        let bare = "n=alice,r=cn";
        let Step::Challenge(first) = s.evaluate(format!("n,,{bare}").as_bytes()).unwrap() else {
            panic!()
        };
        let first = String::from_utf8(first).unwrap();
        // Old librdkafka sends `r=<client nonce><combined nonce>` and proves over that.
        let (final_message, _) = client_final_with_nonce(
            mechanism,
            "alice-secret",
            bare,
            &first,
            "n,,",
            "cncnserver-nonce",
        );
        assert!(matches!(
            s.evaluate(final_message.as_bytes()).unwrap(),
            Step::Done(_)
        ));
    }

    #[test]
    fn saslnames_escape_commas_and_equals_signs() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=b"), None);
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
    }

    #[test]
    fn kafkas_mechanism_types_are_one_and_two() {
        assert_eq!(mechanism_type(Mechanism::ScramSha256), Some(1));
        assert_eq!(mechanism_of_type(2), Some(Mechanism::ScramSha512));
        assert_eq!(mechanism_of_type(0), None);
    }
}
