//! Unsigned (`alg: none`) tokens, as Kafka's OAuthBearerUnsecuredValidatorCallbackHandler
//! reads them: for development only, never a default. Its JAAS options:
//! `unsecuredValidatorPrincipalClaimName` (sub), `unsecuredValidatorScopeClaimName`
//! (scope), `unsecuredValidatorRequiredScope` (space-separated) and
//! `unsecuredValidatorAllowableClockSkewMs` (0).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{base64url, json_type, numeric_date, TokenRefused, TokenValidator, ValidToken};

/// Kafka's unsecured tokens round a NumericDate to the millisecond.
fn numeric_date_ms(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    Ok(numeric_date(claims, name)?.map(|seconds| (seconds * 1000.0).round() as i64))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredValidator {
    principal_claim_name: String,
    scope_claim_name: String,
    required_scope: Vec<String>,
    allowable_clock_skew_ms: i64,
}

impl UnsecuredValidator {
    /// From the OAuthBearerLoginModule's JAAS options.
    pub fn from_jaas_options(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let option = |name: &str| {
            options
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let required_scope = match option("unsecuredValidatorRequiredScope") {
            None => Vec::new(),
            Some(text) => {
                let scope: Vec<String> = text
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                // RFC 6749's scope-token: %x21 / %x23-5B / %x5D-7E.
                if let Some(bad) = scope.iter().find(|s| {
                    !s.bytes().all(|b| {
                        b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
                    })
                }) {
                    return Err(format!("Invalid scope value: {bad}"));
                }
                scope
            }
        };
        let allowable_clock_skew_ms = match option("unsecuredValidatorAllowableClockSkewMs") {
            None => 0,
            Some(v) => {
                let ms: i32 = v
                    .parse()
                    .map_err(|e| format!("For input string: \"{v}\" ({e})"))?;
                if ms < 0 {
                    return Err(format!(
                        "Allowable clock skew millis must not be negative: {v}"
                    ));
                }
                i64::from(ms)
            }
        };
        Ok(Self {
            principal_claim_name: option("unsecuredValidatorPrincipalClaimName")
                .unwrap_or("sub")
                .to_string(),
            scope_claim_name: option("unsecuredValidatorScopeClaimName")
                .unwrap_or("scope")
                .to_string(),
            required_scope,
            allowable_clock_skew_ms,
        })
    }

    fn check(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenRefused> {
        if token.contains("..") {
            return Err(TokenRefused::invalid(
                "Malformed compact serialization contains '..'",
            ));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err(TokenRefused::invalid(format!(
                "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values, not {}",
                parts.len()
            )));
        };
        let header = json_object(header).map_err(TokenRefused::invalid)?;
        let claims = json_object(payload).map_err(TokenRefused::invalid)?;
        if header.get("alg").and_then(Value::as_str) != Some("none") {
            return Err(TokenRefused::invalid(
                "Unsecured JWS must have 'none' for an algorithm",
            ));
        }
        if !signature.is_empty() {
            return Err(TokenRefused::invalid(
                "Unsecured JWS must not contain a digital signature",
            ));
        }
        let scope = self.scope(&claims).map_err(TokenRefused::invalid)?;
        let exp = numeric_date_ms(&claims, "exp")
            .map_err(TokenRefused::invalid)?
            .ok_or_else(|| TokenRefused::invalid("No expiration time in JWT"))?;
        let principal = match claims.get(&self.principal_claim_name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(TokenRefused::invalid(format!(
                    "The '{}' claim was not of type String: {}",
                    self.principal_claim_name,
                    json_type(other)
                )))
            }
        };
        let principal = principal.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
            TokenRefused::invalid(format!(
                "No principal name in JWT claim: {}",
                self.principal_claim_name
            ))
        })?;
        let skew = self.allowable_clock_skew_ms;
        let iat = numeric_date_ms(&claims, "iat").map_err(TokenRefused::invalid)?;
        if let Some(iat) = iat {
            if iat > now_ms + skew {
                return Err(TokenRefused::invalid(format!(
                    "The Issued At value ({} seconds) was after the indicated time ({now_ms} ms) plus allowable clock skew ({skew} ms)",
                    iat as f64 / 1000.0
                )));
            }
        }
        if now_ms - skew >= exp {
            return Err(TokenRefused::invalid(format!(
                "The indicated time ({now_ms} ms) minus allowable clock skew ({skew} ms) was on or after the Expiration Time value ({} seconds)",
                exp as f64 / 1000.0
            )));
        }
        if let Some(iat) = iat {
            if exp <= iat {
                return Err(TokenRefused::invalid(format!(
                    "The Expiration Time time ({} seconds) was not after the Issued At time ({} seconds)",
                    exp as f64 / 1000.0,
                    iat as f64 / 1000.0
                )));
            }
        }
        if let Some(missing) = self.required_scope.iter().find(|s| !scope.contains(s)) {
            let required = format!("[{}]", self.required_scope.join(", "));
            return Err(TokenRefused {
                status: "insufficient_scope",
                scope: Some(required.clone()),
                reason: format!(
                    "The provided scope ([{}]) was missing a required scope ({missing}).  All required scope elements: {required}",
                    scope.join(", ")
                ),
            });
        }
        Ok(ValidToken {
            principal,
            expires_at_ms: exp,
            scope,
        })
    }

    /// As Kafka reads it: a string claim is one scope (trimmed), a list one per item.
    fn scope(&self, claims: &Map<String, Value>) -> Result<Vec<String>, String> {
        Ok(match claims.get(&self.scope_claim_name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if s.trim().is_empty() => Vec::new(),
            Some(Value::String(s)) => vec![s.trim().to_string()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_string)
                })
                .collect(),
            Some(other) => {
                return Err(format!(
                    "The '{}' claim was not of type List: {}",
                    self.scope_claim_name,
                    json_type(other)
                ))
            }
        })
    }
}

impl TokenValidator for UnsecuredValidator {
    fn validate(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenRefused> {
        self.check(token, now_ms)
    }
}

fn json_object(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = base64url(part).ok_or("malformed Base64 URL encoded value")?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err("malformed JSON".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn token(claims: Value) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn validator(options: &[(&str, &str)]) -> UnsecuredValidator {
        let options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        UnsecuredValidator::from_jaas_options(&options).unwrap()
    }

    #[test]
    fn unsigned_tokens_name_their_principal_until_they_expire() {
        let v = validator(&[]);
        let t = token(serde_json::json!({"sub": "dev", "iat": 100, "exp": 200, "scope": " a b "}));
        let valid = v.validate(&t, 150_000).unwrap();
        assert_eq!(valid.principal, "dev");
        assert_eq!(valid.expires_at_ms, 200_000);
        assert_eq!(valid.scope, vec!["a b".to_string()]);
        assert_eq!(
            v.validate(&t, 200_000).unwrap_err().reason,
            "The indicated time (200000 ms) minus allowable clock skew (0 ms) was on or after the Expiration Time value (200 seconds)"
        );
        let skewed = validator(&[("unsecuredValidatorAllowableClockSkewMs", "1000")]);
        assert!(skewed.validate(&t, 200_999).is_ok());
        let named = validator(&[("unsecuredValidatorPrincipalClaimName", "user")]);
        let t2 = token(serde_json::json!({"user": "bob", "exp": 200}));
        assert_eq!(named.validate(&t2, 0).unwrap().principal, "bob");
        assert_eq!(
            v.validate(&t2, 0).unwrap_err().reason,
            "No principal name in JWT claim: sub"
        );
    }

    #[test]
    fn signed_malformed_and_unscoped_tokens_are_refused() {
        let v = validator(&[("unsecuredValidatorRequiredScope", "write read")]);
        let signed = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x","exp":9}"#)
        );
        assert_eq!(
            v.validate(&signed, 0).unwrap_err().reason,
            "Unsecured JWS must not contain a digital signature"
        );
        let hs = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x","exp":9}"#)
        );
        assert_eq!(
            v.validate(&hs, 0).unwrap_err().reason,
            "Unsecured JWS must have 'none' for an algorithm"
        );
        assert_eq!(
            v.validate("a..b", 0).unwrap_err().reason,
            "Malformed compact serialization contains '..'"
        );
        assert_eq!(
            v.validate("!!.e30.", 0).unwrap_err().reason,
            "malformed Base64 URL encoded value"
        );
        let no_exp = token(serde_json::json!({"sub": "x"}));
        assert_eq!(
            v.validate(&no_exp, 0).unwrap_err().reason,
            "No expiration time in JWT"
        );
        let t = token(serde_json::json!({"sub": "x", "exp": 9, "scope": ["read"]}));
        let refused = v.validate(&t, 0).unwrap_err();
        assert_eq!(refused.status, "insufficient_scope");
        assert_eq!(
            refused.challenge(),
            r#"{"status":"insufficient_scope", "scope":"[write, read]"}"#
        );
        let bad = UnsecuredValidator::from_jaas_options(&BTreeMap::from([(
            "unsecuredValidatorAllowableClockSkewMs".to_string(),
            "-1".to_string(),
        )]));
        assert_eq!(
            bad.unwrap_err(),
            "Allowable clock skew millis must not be negative: -1"
        );
    }
}
