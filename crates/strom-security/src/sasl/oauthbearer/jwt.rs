//! Signed JWTs checked against a JWKS, as Kafka's OAuthBearerValidatorCallbackHandler
//! (KIP-768) checks them: a signature by a key of the set (never `alg: none`), `exp` and
//! `iat` required, `nbf` honoured, the expected audience and issuer when configured,
//! all within the allowed clock skew; the subject claim names the principal. The
//! signature is checked by `jsonwebtoken` (ring); the claims here, with the time
//! passed in. The caller keeps the key set current (`VerificationKeys`).

use std::collections::VecDeque;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{json_type, numeric_date, TokenRefused, TokenValidator, ValidToken};

/// jose4j reads a NumericDate as whole seconds.
fn numeric_date_ms(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    Ok(numeric_date(claims, name)?.map(|seconds| (seconds.trunc() as i64).saturating_mul(1000)))
}

/// The keys of a JWKS that can verify signatures; keys strom cannot use (an unknown
/// algorithm, an encryption key) are left out rather than failing the whole set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    /// How many entries of the document were left out.
    pub skipped: usize,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let document: Value =
            serde_json::from_slice(json).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut set = KeySet::default();
        for entry in entries {
            match serde_json::from_value::<Jwk>(entry.clone()) {
                Ok(jwk) if usable(&jwk) => set.keys.push(jwk),
                _ => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// The key ids, for logs.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap_or_default())
            .collect()
    }
}

/// Only public signature keys: a symmetric key in a JWKS would let anyone who can read
/// the set sign tokens.
fn usable(jwk: &Jwk) -> bool {
    jwk.common.public_key_use != Some(PublicKeyUse::Encryption)
        && !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
}

/// Where the validator gets its keys from: the broker keeps them current.
pub trait VerificationKeys: Send + Sync {
    fn current(&self) -> Arc<KeySet>;
    /// No key of the set verifies a token with this key id: the holder may refresh early.
    fn key_missing(&self, key_id: &str, now_ms: i64);
}

/// Kafka's sasl.oauthbearer.* settings of the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// `sasl.oauthbearer.expected.audience`: one of them must be in `aud`; when empty, a
    /// token must carry no `aud` (jose4j's rule, which Kafka inherits).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name` (sub).
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.scope.claim.name` (scope).
    pub scope_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (30).
    pub clock_skew_seconds: i64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: "sub".into(),
            scope_claim_name: "scope".into(),
            clock_skew_seconds: 30,
        }
    }
}

pub struct JwtValidator {
    settings: JwtSettings,
    keys: Arc<dyn VerificationKeys>,
}

impl JwtValidator {
    pub fn new(settings: JwtSettings, keys: Arc<dyn VerificationKeys>) -> Self {
        Self { settings, keys }
    }

    fn claims(&self, token: &str, now_ms: i64) -> Result<(Map<String, Value>, String), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            format!("Could not validate the access token: the JWS header cannot be read ({e})")
        })?;
        let key_id = header.kid.clone().unwrap_or_default();
        let keys = self.keys.current();
        let candidates: Vec<&Jwk> = keys
            .keys
            .iter()
            .filter(|jwk| header.kid.is_none() || jwk.common.key_id == header.kid)
            .filter(|jwk| fits(jwk, header.alg))
            .collect();
        let header_text = format!("{{\"alg\":\"{:?}\",\"kid\":{:?}}}", header.alg, key_id);
        if candidates.is_empty() {
            self.keys.key_missing(&key_id, now_ms);
            return Err(format!(
                "Could not validate the access token: Unable to find a suitable verification key for JWS w/ header {header_text} from JWKs {:?}",
                keys.key_ids()
            ));
        }
        let mut validation = Validation::new(header.alg);
        // Claims are checked below with the time passed in, as Kafka words them.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let mut last_error = String::new();
        for jwk in candidates {
            let key = match DecodingKey::from_jwk(jwk) {
                Ok(key) => key,
                Err(e) => {
                    last_error = format!("key {:?} cannot be used: {e}", jwk.common.key_id);
                    continue;
                }
            };
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
                Ok(data) => return Ok((data.claims, key_id)),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(format!(
            "Could not validate the access token: JWS signature verification with the keys for {header_text} failed: {last_error}"
        ))
    }

    fn check_claims(&self, claims: &Map<String, Value>, now_ms: i64) -> Result<ValidToken, String> {
        let fail = |why: String| format!("Could not validate the access token: {why}");
        let skew_ms = self.settings.clock_skew_seconds.saturating_mul(1000);
        let exp = numeric_date_ms(claims, "exp")
            .map_err(fail)?
            .ok_or_else(|| fail("No Expiration Time (exp) claim present.".into()))?;
        if now_ms.saturating_sub(skew_ms) >= exp {
            return Err(fail(format!(
                "The JWT is no longer valid - the evaluation time {} is on or after the Expiration Time (exp={}) claim value (even when providing {} seconds of leeway to account for clock skew).",
                now_ms / 1000,
                exp / 1000,
                self.settings.clock_skew_seconds
            )));
        }
        let iat = numeric_date_ms(claims, "iat")
            .map_err(fail)?
            .ok_or_else(|| fail("No Issued At (iat) claim present.".into()))?;
        if let Some(nbf) = numeric_date_ms(claims, "nbf").map_err(fail)? {
            if now_ms.saturating_add(skew_ms) < nbf {
                return Err(fail(format!(
                    "The JWT is not yet valid as the evaluation time {} is before the Not Before (nbf={}) claim time (even when providing {} seconds of leeway to account for clock skew).",
                    now_ms / 1000,
                    nbf / 1000,
                    self.settings.clock_skew_seconds
                )));
            }
        }
        self.check_audience(claims).map_err(fail)?;
        if let Some(expected) = &self.settings.expected_issuer {
            match claims.get("iss") {
                None => return Err(fail("No Issuer (iss) claim present.".into())),
                Some(Value::String(iss)) if iss == expected => {}
                Some(other) => {
                    return Err(fail(format!(
                        "Issuer (iss) claim value ({}) doesn't match expected value of {expected}",
                        other
                            .as_str()
                            .map_or_else(|| other.to_string(), str::to_string)
                    )))
                }
            }
        }
        let sub_name = &self.settings.sub_claim_name;
        let sub = match claims.get(sub_name) {
            None | Some(Value::Null) => return Err(format!("{sub_name} value must be non-null")),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => {
                return Err(format!(
                    "Could not extract the '{sub_name}' claim from the access token"
                ))
            }
        };
        if sub.is_empty() {
            return Err(format!("{sub_name} value must not contain only whitespace"));
        }
        let scope = scopes(claims, &self.settings.scope_claim_name)?;
        if iat < 0 {
            return Err(format!(
                "iat value must be null or non-negative; value given was \"{iat}\""
            ));
        }
        Ok(ValidToken {
            principal: sub,
            expires_at_ms: exp,
            scope,
        })
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), String> {
        let audiences: Vec<String> = match claims.get("aud") {
            None | Some(Value::Null) => {
                return if self.settings.expected_audience.is_empty() {
                    Ok(())
                } else {
                    Err("No Audience (aud) claim present.".into())
                }
            }
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or("The value of the 'aud' claim is not an array of strings")?,
            Some(other) => {
                return Err(format!(
                    "The value of the 'aud' claim is not a string or an array: {}",
                    json_type(other)
                ))
            }
        };
        if audiences
            .iter()
            .any(|a| self.settings.expected_audience.contains(a))
        {
            return Ok(());
        }
        Err(if self.settings.expected_audience.is_empty() {
            format!("Audience (aud) claim {audiences:?} present in the JWT but no expected audience value(s) were provided to the JWT Consumer.")
        } else {
            format!(
                "Audience (aud) claim {audiences:?} doesn't contain an acceptable identifier. Expected {:?} as an aud value.",
                self.settings.expected_audience
            )
        })
    }
}

impl TokenValidator for JwtValidator {
    fn validate(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenRefused> {
        let (claims, _) = self.claims(token, now_ms).map_err(TokenRefused::invalid)?;
        self.check_claims(&claims, now_ms)
            .map_err(TokenRefused::invalid)
    }
}

/// Whether a key can check a signature made with `alg`.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(key_alg) = jwk.common.key_algorithm {
        if format!("{key_alg:?}") != format!("{alg:?}") {
            return false;
        }
    }
    use Algorithm::*;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, ES256 | ES384),
        AlgorithmParameters::OctetKeyPair(_) => alg == EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    }
}

/// The scope claim, as Kafka reads it: a string is one scope, an array of strings is
/// several; each must be non-blank and appear once.
fn scopes(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    let raw: Vec<&Value> = match claims.get(name) {
        Some(Value::String(_)) => vec![&claims[name]],
        Some(Value::Array(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let mut scope = Vec::new();
    for value in raw {
        let text = match value {
            Value::String(s) => s.trim(),
            Value::Null => return Err(format!("{name} value must be non-null")),
            _ => return Err(format!("{name} value must be a string")),
        };
        if text.is_empty() {
            return Err(format!("{name} value must not contain only whitespace"));
        }
        if scope.iter().any(|s| s == text) {
            return Err(format!(
                "{name} value must not contain duplicates - {text} already present"
            ));
        }
        scope.push(text.to_string());
    }
    Ok(scope)
}

/// Key ids that no key matched, so a flood of tokens with unknown ids asks for at most one
/// refresh per id a minute (Kafka's RefreshingHttpsJwks: 16 ids, 60 s, ids of 1000 chars at most).
#[derive(Debug, Default)]
pub struct MissingKeyIds {
    /// (key id, when it may ask again), most recently asked last.
    entries: VecDeque<(String, i64)>,
}

impl MissingKeyIds {
    pub const MAX_ENTRIES: usize = 16;
    pub const IN_FLIGHT_MS: i64 = 60_000;
    pub const MAX_KEY_ID_LENGTH: usize = 1000;

    /// Whether a token with this unknown key id should trigger a refresh now.
    pub fn should_refresh(&mut self, key_id: &str, now_ms: i64) -> bool {
        if key_id.len() > Self::MAX_KEY_ID_LENGTH {
            return false;
        }
        let position = self.entries.iter().position(|(id, _)| id == key_id);
        if let Some(i) = position {
            let (_, next_check) = self.entries[i];
            if next_check > now_ms {
                return false;
            }
            self.entries.remove(i);
        }
        self.entries
            .push_back((key_id.to_string(), now_ms + Self::IN_FLIGHT_MS));
        while self.entries.len() > Self::MAX_ENTRIES {
            self.entries.pop_front();
        }
        true
    }

    /// A refresh brought these keys: tokens naming them may ask again.
    pub fn found(&mut self, keys: &KeySet) {
        self.entries.retain(|(id, _)| {
            !keys
                .keys
                .iter()
                .any(|k| k.common.key_id.as_deref() == Some(id))
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use std::sync::Mutex;

    /// An ES256 signing key and its JWK.
    pub(crate) struct TestKey {
        pkcs8: Vec<u8>,
        pub jwk: Value,
        kid: String,
    }

    impl TestKey {
        pub(crate) fn new(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
            let point = pair.public_key().as_ref();
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            Self {
                pkcs8,
                jwk,
                kid: kid.into(),
            }
        }

        pub(crate) fn sign(&self, claims: &Value) -> String {
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(
                &header,
                claims,
                &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
            )
            .unwrap()
        }
    }

    struct Keys {
        set: Arc<KeySet>,
        missing: Mutex<Vec<String>>,
    }

    impl VerificationKeys for Keys {
        fn current(&self) -> Arc<KeySet> {
            self.set.clone()
        }
        fn key_missing(&self, key_id: &str, _now_ms: i64) {
            self.missing.lock().unwrap().push(key_id.into());
        }
    }

    fn keys(jwks: &[&Value]) -> Arc<Keys> {
        let doc = serde_json::json!({ "keys": jwks });
        Arc::new(Keys {
            set: Arc::new(KeySet::parse(doc.to_string().as_bytes()).unwrap()),
            missing: Mutex::new(Vec::new()),
        })
    }

    const NOW_MS: i64 = 1_700_000_000_000;

    fn claims(extra: Value) -> Value {
        let mut c = serde_json::json!({
            "sub": "alice", "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 300,
            "iss": "https://issuer.test", "aud": "strom", "scope": "produce consume",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    fn validator(key_set: Arc<Keys>) -> JwtValidator {
        JwtValidator::new(
            JwtSettings {
                expected_audience: vec!["strom".into()],
                expected_issuer: Some("https://issuer.test".into()),
                ..JwtSettings::default()
            },
            key_set,
        )
    }

    fn refusal(v: &JwtValidator, token: &str) -> String {
        let refused = v.validate(token, NOW_MS).unwrap_err();
        assert_eq!(refused.status, "invalid_token");
        refused.reason
    }

    #[test]
    fn a_token_signed_by_a_key_of_the_set_names_its_subject() {
        let key = TestKey::new("k1");
        let other = TestKey::new("k2");
        let v = validator(keys(&[&other.jwk, &key.jwk]));
        let token = key.sign(&claims(serde_json::json!({})));
        let valid = v.validate(&token, NOW_MS).unwrap();
        assert_eq!(valid.principal, "alice");
        assert_eq!(valid.expires_at_ms, (NOW_MS / 1000 + 300) * 1000);
        assert_eq!(valid.scope, vec!["produce consume".to_string()]);
        // A configured subject claim names the principal instead.
        let v = JwtValidator::new(
            JwtSettings {
                sub_claim_name: "client_id".into(),
                expected_audience: vec!["other".into(), "strom".into()],
                ..JwtSettings::default()
            },
            keys(&[&key.jwk]),
        );
        let token = key.sign(&claims(
            serde_json::json!({"client_id": " svc-1 ", "aud": ["x", "strom"]}),
        ));
        assert_eq!(v.validate(&token, NOW_MS).unwrap().principal, "svc-1");
    }

    #[test]
    fn expired_early_and_misaddressed_tokens_are_refused() {
        let key = TestKey::new("k1");
        let v = validator(keys(&[&key.jwk]));
        let expired = key.sign(&claims(serde_json::json!({"exp": NOW_MS / 1000 - 31})));
        assert!(refusal(&v, &expired).contains("is on or after the Expiration Time"));
        // Within the 30 s of clock skew it still passes.
        let barely = key.sign(&claims(serde_json::json!({"exp": NOW_MS / 1000 - 29})));
        assert!(v.validate(&barely, NOW_MS).is_ok());
        let early = key.sign(&claims(serde_json::json!({"nbf": NOW_MS / 1000 + 60})));
        assert!(refusal(&v, &early).contains("is before the Not Before"));
        let audience = key.sign(&claims(serde_json::json!({"aud": "someone-else"})));
        assert!(refusal(&v, &audience).contains("doesn't contain an acceptable identifier"));
        let no_audience = key.sign(&claims(serde_json::json!({"aud": null})));
        assert!(refusal(&v, &no_audience).contains("No Audience (aud) claim present."));
        let issuer = key.sign(&claims(serde_json::json!({"iss": "https://evil.test"})));
        assert!(refusal(&v, &issuer).contains("Issuer (iss) claim value (https://evil.test)"));
        let no_exp = key.sign(&claims(serde_json::json!({"exp": null})));
        assert!(refusal(&v, &no_exp).contains("No Expiration Time (exp) claim present."));
        let no_iat = key.sign(&claims(serde_json::json!({"iat": null})));
        assert!(refusal(&v, &no_iat).contains("No Issued At (iat) claim present."));
        let no_sub = key.sign(&claims(serde_json::json!({"sub": null})));
        assert_eq!(refusal(&v, &no_sub), "sub value must be non-null");
        let blank_sub = key.sign(&claims(serde_json::json!({"sub": "  "})));
        assert_eq!(
            refusal(&v, &blank_sub),
            "sub value must not contain only whitespace"
        );
        let duplicate_scope = key.sign(&claims(serde_json::json!({"scope": ["a", "a"]})));
        assert_eq!(
            refusal(&v, &duplicate_scope),
            "scope value must not contain duplicates - a already present"
        );
        // With no expected audience configured, a token that names one is refused (jose4j).
        let open = JwtValidator::new(JwtSettings::default(), keys(&[&key.jwk]));
        let token = key.sign(&claims(serde_json::json!({})));
        assert!(refusal(&open, &token).contains("no expected audience value(s) were provided"));
        let token = key.sign(&claims(serde_json::json!({"aud": null})));
        assert!(open.validate(&token, NOW_MS).is_ok());
    }

    #[test]
    fn unknown_keys_forged_signatures_and_unsigned_tokens_are_refused() {
        let key = TestKey::new("k1");
        let stranger = TestKey::new("k9");
        let set = keys(&[&key.jwk]);
        let v = validator(set.clone());
        let token = stranger.sign(&claims(serde_json::json!({})));
        assert!(refusal(&v, &token).contains("Unable to find a suitable verification key"));
        assert_eq!(*set.missing.lock().unwrap(), vec!["k9".to_string()]);
        // Same key id, another key: the signature does not verify.
        let impostor = TestKey::new("k1");
        let forged = impostor.sign(&claims(serde_json::json!({})));
        assert!(refusal(&v, &forged).contains("signature verification"));
        // A payload changed after signing.
        let genuine = key.sign(&claims(serde_json::json!({})));
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload =
            URL_SAFE_NO_PAD.encode(claims(serde_json::json!({"sub": "admin"})).to_string());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert!(refusal(&v, &tampered).contains("signature verification"));
        // alg none, with or without a signature part.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(refusal(&v, &unsigned).contains("JWS header cannot be read"));
        assert!(refusal(&v, "not-a-jwt").contains("Could not validate the access token"));
    }

    #[test]
    fn a_key_set_keeps_the_keys_it_can_use() {
        let key = TestKey::new("k1");
        let doc = serde_json::json!({"keys": [
            key.jwk,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            {"kty": "EC", "crv": "P-521", "alg": "ES512", "x": "AA", "y": "AA", "kid": "p521"},
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.key_ids(), vec!["k1".to_string()]);
        assert_eq!(set.skipped, 3);
        assert!(KeySet::parse(b"{}").is_err());
        assert!(KeySet::parse(b"nope").is_err());
    }

    #[test]
    fn unknown_key_ids_ask_for_a_refresh_once_a_minute() {
        let mut missing = MissingKeyIds::default();
        assert!(missing.should_refresh("a", 0));
        assert!(!missing.should_refresh("a", 59_999));
        assert!(missing.should_refresh("a", 60_000));
        assert!(missing.should_refresh("b", 1));
        assert!(!missing.should_refresh(&"x".repeat(1001), 0));
        for i in 0..16 {
            missing.should_refresh(&format!("k{i}"), 2);
        }
        // "a" was pushed out by sixteen newer ids.
        assert!(missing.should_refresh("a", 3));
        let key = TestKey::new("k3");
        let doc = serde_json::json!({"keys": [key.jwk]});
        missing.found(&KeySet::parse(doc.to_string().as_bytes()).unwrap());
        assert!(missing.should_refresh("k3", 4));
        assert!(!missing.should_refresh("k4", 4));
    }
}
