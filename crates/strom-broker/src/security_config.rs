//! Listener security, read with Kafka's names: `listener.security.protocol.map`,
//! the `ssl.*` settings of a TLS listener and the `sasl.*` ones of a SASL listener,
//! each first looked up under `listener.name.<listener>.` and then plain.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strom_security::sasl::oauthbearer::jwt::{JwtSettings, JwtValidator};
use strom_security::sasl::oauthbearer::unsecured::UnsecuredValidator;
use strom_security::sasl::oauthbearer::TokenValidator;
use strom_security::sasl::plain::PlainUsers;
use strom_security::sasl::Mechanism;
use strom_security::ssl_principal::SslPrincipalMapper;

use crate::config::ConfigError;

pub use strom_types::SecurityProtocol;

/// Everything a listener needs to know who its clients are.
#[derive(Debug, Clone)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<Arc<SaslSettings>>,
}

impl ListenerSecurity {
    pub fn plaintext() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// Where PEM text comes from: a file (reloaded when it changes) or the config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `ssl.keystore.location` (key and chain in one PEM file), or
    /// `ssl.keystore.key` and `ssl.keystore.certificate.chain`.
    pub keystore: Keystore,
    /// `ssl.truststore.location` or `ssl.truststore.certificates`: the CAs client
    /// certificates must chain to.
    pub truststore: Option<PemSource>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols` (TLSv1.2,TLSv1.3).
    pub protocols: Vec<String>,
    /// `ssl.cipher.suites` (empty: all that rustls offers).
    pub cipher_suites: Vec<String>,
    pub principal_mapper: Arc<SslPrincipalMapper>,
    /// `strom.ssl.reload.check.interval.ms` (10000): how often the PEM files are looked at.
    pub reload_check_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    File(PathBuf),
    Inline { chain: String, key: String },
}

#[derive(Debug, Clone)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in the order configured.
    pub mechanisms: Vec<Mechanism>,
    pub plain_users: Option<Arc<PlainUsers>>,
    /// `connections.max.reauth.ms` (0: sessions never expire).
    pub max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms` (100): a failed authentication is
    /// answered, and the connection closed, only after this long.
    pub failed_authentication_delay_ms: u64,
    /// OAUTHBEARER's token validator, when the mechanism is enabled.
    pub oauthbearer: Option<OAuthBearerSettings>,
}

/// How an OAUTHBEARER listener checks tokens: `sasl.server.callback.handler.class` names
/// Kafka's JWT validator (with its JWKS) or, for development only, the unsecured one.
#[derive(Clone)]
pub struct OAuthBearerSettings {
    pub validator: Arc<dyn TokenValidator>,
    /// The JWKS the JWT validator reads; `server.rs` loads it and keeps it current.
    pub jwks: Option<Arc<crate::oauth_jwks::Jwks>>,
}

impl std::fmt::Debug for OAuthBearerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthBearerSettings")
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

/// Kafka's OAUTHBEARER validator classes.
const JWT_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
const JWT_VALIDATOR_OLD: &str =
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler";
const UNSECURED_VALIDATOR: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
/// Kafka 4's allow-list of OAuth URLs (a JVM system property there; a config here).
/// Empty by default: every JWKS URL must be listed.
pub const ALLOWED_OAUTH_URLS: &str = "org.apache.kafka.sasl.oauthbearer.allowed.urls";

const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// The security configs this module and the authorizer read, by their base names.
const SECURITY_CONFIGS: &[&str] = &[
    "allow.everyone.if.no.acl.found",
    "authorizer.class.name",
    "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
    "listener.security.protocol.map",
    ALLOWED_OAUTH_URLS,
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.server.callback.handler.class",
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.principal.mapping.rules",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "strom.ssl.reload.check.interval.ms",
    "super.users",
];

/// Whether `name` is a security config read here: a base name, or one scoped to a listener
/// (`listener.name.<listener>.`) and to a SASL mechanism (`plain.`, `scram-sha-256.`,
/// `scram-sha-512.`, `oauthbearer.`), as Kafka names them.
pub fn is_security_config(name: &str) -> bool {
    let base = name
        .strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(name, |(_, rest)| rest);
    let base = ["plain.", "scram-sha-256.", "scram-sha-512.", "oauthbearer."]
        .iter()
        .find_map(|mechanism| base.strip_prefix(mechanism))
        .unwrap_or(base);
    SECURITY_CONFIGS.contains(&base)
}

/// A listener-scoped config: `listener.name.<listener lowercased>.<name>`, else `<name>`.
pub fn listener_value<'a>(
    map: &'a BTreeMap<String, String>,
    listener: &str,
    name: &str,
) -> Option<&'a String> {
    map.get(&format!(
        "listener.name.{}.{name}",
        listener.to_ascii_lowercase()
    ))
    .or_else(|| map.get(name))
}

fn invalid(name: &str, value: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.into(),
        value: value.into(),
        why: why.into(),
    }
}

/// The protocol of each listener name: `listener.security.protocol.map`, where
/// controller listeners left out of Kafka's default map are PLAINTEXT (as KRaft does).
pub fn protocol_map(
    map: &BTreeMap<String, String>,
    controller_listener_names: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let name = "listener.security.protocol.map";
    let explicit = map.get(name);
    let value = explicit.map_or(DEFAULT_PROTOCOL_MAP, String::as_str);
    let mut protocols = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (listener, protocol) = item
            .split_once(':')
            .ok_or_else(|| invalid(name, value, "expected LISTENER:PROTOCOL pairs"))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                name,
                value,
                format!("unknown security protocol {protocol:?}"),
            )
        })?;
        protocols.insert(listener.trim().to_string(), protocol);
    }
    if explicit.is_none() {
        for controller in controller_listener_names {
            protocols
                .entry(controller.clone())
                .or_insert(SecurityProtocol::Plaintext);
        }
    }
    Ok(protocols)
}

/// The security of one listener.
pub fn listener_security(
    map: &BTreeMap<String, String>,
    listener: &str,
    protocol: SecurityProtocol,
) -> Result<ListenerSecurity, ConfigError> {
    let tls = if protocol.uses_tls() {
        Some(tls_settings(map, listener)?)
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        Some(Arc::new(sasl_settings(map, listener)?))
    } else {
        None
    };
    Ok(ListenerSecurity {
        protocol,
        tls,
        sasl,
    })
}

fn tls_settings(
    map: &BTreeMap<String, String>,
    listener: &str,
) -> Result<TlsSettings, ConfigError> {
    let override_prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let get = |name: &str| listener_value(map, listener, name).map(|v| v.trim().to_string());
    tls_settings_from(&get, &format!("listener {listener}"), &override_prefix)
}

/// The TLS settings of a service's https listeners (the schema registry's, the REST
/// proxy's): `<prefix>ssl.*` where set, else the broker's own `ssl.*`.
pub fn service_tls_settings(
    map: &BTreeMap<String, String>,
    prefix: &str,
) -> Result<TlsSettings, ConfigError> {
    let get = |name: &str| {
        map.get(&format!("{prefix}{name}"))
            .or_else(|| map.get(name))
            .map(|v| v.trim().to_string())
    };
    let service = prefix.trim_end_matches('.');
    tls_settings_from(&get, &format!("https on {service}.listeners"), prefix)
}

/// `who` names the listener in messages; `override_prefix` is where its own keys live.
fn tls_settings_from(
    get: &impl Fn(&str) -> Option<String>,
    who: &str,
    override_prefix: &str,
) -> Result<TlsSettings, ConfigError> {
    let pem_type = |name: &str| -> Result<(), ConfigError> {
        match get(name) {
            None => Ok(()),
            Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(()),
            Some(t) => Err(invalid(
                name,
                &t,
                "only PEM key and trust stores are read (convert JKS or PKCS12 with keytool/openssl)",
            )),
        }
    };
    pem_type("ssl.keystore.type")?;
    pem_type("ssl.truststore.type")?;
    // `ssl.key.password`: encrypted PEM keys are not read, so one is refused.
    if get("ssl.key.password").is_some_and(|p| !p.is_empty()) {
        return Err(invalid(
            "ssl.key.password",
            "[hidden]",
            "encrypted private keys are not read; give an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key",
        ));
    }
    let keystore = match (
        get("ssl.keystore.location").filter(|v| !v.is_empty()),
        get("ssl.keystore.certificate.chain").filter(|v| !v.is_empty()),
        get("ssl.keystore.key").filter(|v| !v.is_empty()),
    ) {
        (Some(path), None, None) => Keystore::File(path.into()),
        (None, Some(chain), Some(key)) => Keystore::Inline { chain, key },
        (None, None, None) => {
            return Err(invalid(
                &format!("{override_prefix}ssl.keystore.location"),
                "",
                format!("{who} uses TLS and needs ssl.keystore.location (one PEM file with the key and the certificate chain) or ssl.keystore.key with ssl.keystore.certificate.chain"),
            ))
        }
        _ => {
            return Err(invalid(
                "ssl.keystore.location",
                "",
                "give either ssl.keystore.location or both ssl.keystore.key and ssl.keystore.certificate.chain",
            ))
        }
    };
    let truststore = match (
        get("ssl.truststore.location").filter(|v| !v.is_empty()),
        get("ssl.truststore.certificates").filter(|v| !v.is_empty()),
    ) {
        (Some(path), None) => Some(PemSource::File(path.into())),
        (None, Some(pem)) => Some(PemSource::Inline(pem)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(invalid(
                "ssl.truststore.location",
                "",
                "give either ssl.truststore.location or ssl.truststore.certificates",
            ))
        }
    };
    let client_auth = match get("ssl.client.auth")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(invalid(
                "ssl.client.auth",
                other,
                "must be one of required, requested, none",
            ))
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            "ssl.client.auth",
            "",
            format!("{who} checks client certificates and needs ssl.truststore.location"),
        ));
    }
    let list = |name: &str, default: &str| -> Vec<String> {
        get(name)
            .unwrap_or_else(|| default.to_string())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let protocols = list("ssl.enabled.protocols", "TLSv1.2,TLSv1.3");
    let cipher_suites = list("ssl.cipher.suites", "");
    let rules = get("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".into());
    let principal_mapper = SslPrincipalMapper::parse(&rules)
        .map_err(|e| invalid("ssl.principal.mapping.rules", &rules, e.to_string()))?;
    let reload_ms: u64 = match get("strom.ssl.reload.check.interval.ms") {
        None => 10_000,
        Some(v) => v.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
            invalid(
                "strom.ssl.reload.check.interval.ms",
                &v,
                "must be a positive number of ms",
            )
        })?,
    };
    Ok(TlsSettings {
        keystore,
        truststore,
        client_auth,
        protocols,
        cipher_suites,
        principal_mapper: Arc::new(principal_mapper),
        reload_check_interval: Duration::from_millis(reload_ms),
    })
}

fn sasl_settings(
    map: &BTreeMap<String, String>,
    listener: &str,
) -> Result<SaslSettings, ConfigError> {
    let name = "sasl.enabled.mechanisms";
    // Kafka's default is GSSAPI, which strom does not serve: it must be chosen.
    let value = listener_value(map, listener, name)
        .cloned()
        .unwrap_or_else(|| "GSSAPI".into());
    let mut mechanisms = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mechanism = Mechanism::from_name(&item.to_ascii_uppercase()).ok_or_else(|| {
            invalid(
                name,
                &value,
                format!(
                    "listener {listener}: mechanism {item} is not served; choose from PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"
                ),
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err(invalid(
            name,
            &value,
            format!("listener {listener} uses SASL and needs at least one mechanism"),
        ));
    }
    let oauthbearer = if mechanisms.contains(&Mechanism::OAuthBearer) {
        Some(oauthbearer_settings(map, listener)?)
    } else {
        None
    };
    let plain_users = if mechanisms.contains(&Mechanism::Plain) {
        let key = format!(
            "listener.name.{}.plain.sasl.jaas.config",
            listener.to_ascii_lowercase()
        );
        let text = map.get(&key).ok_or_else(|| {
            invalid(&key, "", format!("listener {listener} enables PLAIN and needs its JAAS config with user_<name>=\"<password>\" options"))
        })?;
        let modules = strom_security::jaas::parse(text)
            .map_err(|e| invalid(&key, "[hidden]", e.to_string()))?;
        let module = modules
            .iter()
            .find(|m| m.class.ends_with("PlainLoginModule"))
            .ok_or_else(|| {
                invalid(
                    &key,
                    "[hidden]",
                    "no org.apache.kafka.common.security.plain.PlainLoginModule in it",
                )
            })?;
        Some(Arc::new(PlainUsers::from_jaas_options(&module.options)))
    } else {
        None
    };
    let reauth_name = "connections.max.reauth.ms";
    let max_reauth_ms = match listener_value(map, listener, reauth_name) {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| invalid(reauth_name, v, "must be a number of ms, 0 or more"))?,
    };
    let delay_name = "connection.failed.authentication.delay.ms";
    let failed_authentication_delay_ms = match map.get(delay_name) {
        None => 100,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid(delay_name, v, "must be a number of ms, 0 or more"))?,
    };
    Ok(SaslSettings {
        mechanisms,
        plain_users,
        max_reauth_ms,
        failed_authentication_delay_ms,
        oauthbearer,
    })
}

/// An OAUTHBEARER setting: `listener.name.<l>.oauthbearer.<name>`, then
/// `listener.name.<l>.<name>`, then `<name>` (Kafka's mechanism and listener prefixes).
fn oauth_value<'a>(
    map: &'a BTreeMap<String, String>,
    listener: &str,
    name: &str,
) -> Option<&'a String> {
    map.get(&format!(
        "listener.name.{}.oauthbearer.{name}",
        listener.to_ascii_lowercase()
    ))
    .or_else(|| listener_value(map, listener, name))
}

fn oauthbearer_settings(
    map: &BTreeMap<String, String>,
    listener: &str,
) -> Result<OAuthBearerSettings, ConfigError> {
    let prefix = format!(
        "listener.name.{}.oauthbearer.",
        listener.to_ascii_lowercase()
    );
    let handler_name = "sasl.server.callback.handler.class";
    let jaas_key = format!("{prefix}sasl.jaas.config");
    let jaas_options = match map.get(&jaas_key) {
        None => None,
        Some(text) => {
            let modules = strom_security::jaas::parse(text)
                .map_err(|e| invalid(&jaas_key, "[hidden]", e.to_string()))?;
            let module = modules
                .into_iter()
                .find(|m| m.class.ends_with("OAuthBearerLoginModule"))
                .ok_or_else(|| {
                    invalid(
                        &jaas_key,
                        "[hidden]",
                        "no org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule in it",
                    )
                })?;
            Some(module.options)
        }
    };
    let handler = oauth_value(map, listener, handler_name).map(|v| v.trim().to_string());
    match handler.as_deref() {
        Some(JWT_VALIDATOR | JWT_VALIDATOR_OLD) => jwt_settings(map, listener, jaas_options),
        Some(UNSECURED_VALIDATOR) => {
            let options = jaas_options.ok_or_else(|| {
                invalid(
                    &jaas_key,
                    "",
                    format!("listener {listener}: the unsecured OAUTHBEARER validator reads its options from the OAuthBearerLoginModule's JAAS config"),
                )
            })?;
            let validator = UnsecuredValidator::from_jaas_options(&options)
                .map_err(|why| invalid(&jaas_key, "[hidden]", why))?;
            tracing::warn!(listener, "OAUTHBEARER accepts unsigned tokens (OAuthBearerUnsecuredValidatorCallbackHandler): for development only");
            Ok(OAuthBearerSettings {
                validator: Arc::new(validator),
                jwks: None,
            })
        }
        other => Err(invalid(
            &format!("{prefix}{handler_name}"),
            other.unwrap_or(""),
            format!(
                "listener {listener} enables OAUTHBEARER: name {JWT_VALIDATOR} (signed JWTs checked against sasl.oauthbearer.jwks.endpoint.url) or, for development only, {UNSECURED_VALIDATOR}"
            ),
        )),
    }
}

fn jwt_settings(
    map: &BTreeMap<String, String>,
    listener: &str,
    jaas_options: Option<BTreeMap<String, String>>,
) -> Result<OAuthBearerSettings, ConfigError> {
    let get = |name: &str| {
        oauth_value(map, listener, name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let url_name = "sasl.oauthbearer.jwks.endpoint.url";
    let url = get(url_name).ok_or_else(|| {
        invalid(
            url_name,
            "",
            format!("The OAuth configuration option {url_name} value must be non-null"),
        )
    })?;
    let location = jwks_location(&url)?;
    let allowed: Vec<&str> = map
        .get(ALLOWED_OAUTH_URLS)
        .map_or("", String::as_str)
        .split(',')
        .map(str::trim)
        .collect();
    if !allowed.contains(&url.as_str()) {
        return Err(invalid(
            url_name,
            &url,
            format!("{url} is not allowed. Update system property '{ALLOWED_OAUTH_URLS}' to allow {url}"),
        ));
    }
    let millis = |name: &str, default: u64, min: u64| -> Result<Duration, ConfigError> {
        match get(name) {
            None => Ok(Duration::from_millis(default)),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms >= min)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    invalid(
                        name,
                        &v,
                        format!(
                            "The OAuth configuration option {name} value must be at least {min}"
                        ),
                    )
                }),
        }
    };
    let refresh = crate::oauth_jwks::Refresh {
        interval: millis("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000, 1)?,
        retry_backoff: millis("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100, 0)?,
        retry_backoff_max: millis(
            "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
            10_000,
            0,
        )?,
    };
    let claim_name = |name: &str, default: &str| get(name).unwrap_or_else(|| default.into());
    let skew_name = "sasl.oauthbearer.clock.skew.seconds";
    let clock_skew_seconds = match get(skew_name) {
        None => 30,
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| invalid(skew_name, &v, "must be a number of seconds, 0 or more"))?
            .into(),
    };
    let settings = JwtSettings {
        expected_audience: get("sasl.oauthbearer.expected.audience")
            .map(|v| {
                v.split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        expected_issuer: get("sasl.oauthbearer.expected.issuer"),
        sub_claim_name: claim_name("sasl.oauthbearer.sub.claim.name", "sub"),
        scope_claim_name: claim_name("sasl.oauthbearer.scope.claim.name", "scope"),
        clock_skew_seconds,
    };
    // An https endpoint is trusted through the login module's ssl.truststore.* options,
    // as Kafka's JaasOptionsUtils reads them; else through the system's CAs.
    let option = |name: &str| {
        jaas_options
            .as_ref()
            .and_then(|o| o.get(name))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let truststore = match (
        option("ssl.truststore.location"),
        option("ssl.truststore.certificates"),
    ) {
        (Some(path), _) => Some(PemSource::File(path.into())),
        (None, Some(pem)) => Some(PemSource::Inline(pem)),
        (None, None) => None,
    };
    let jwks = Arc::new(crate::oauth_jwks::Jwks::new(
        url, location, refresh, truststore,
    ));
    Ok(OAuthBearerSettings {
        validator: Arc::new(JwtValidator::new(settings, jwks.clone())),
        jwks: Some(jwks),
    })
}

/// `file:`, `http:` or `https:`, as Kafka's ConfigurationUtils.validateUrl allows.
fn jwks_location(url: &str) -> Result<crate::oauth_jwks::JwksLocation, ConfigError> {
    let name = "sasl.oauthbearer.jwks.endpoint.url";
    let malformed = |why: String| {
        invalid(
            name,
            url,
            format!("The OAuth configuration option {name} contains a URL ({url}) that is malformed: {why}"),
        )
    };
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| malformed("no protocol".into()))?;
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            // file:/path, file:///path (Java's URL takes the raw path).
            let path = rest.strip_prefix("//").map_or(rest, |r| {
                r.find('/').map_or("", |at| &r[at..])
            });
            if path.is_empty() {
                return Err(malformed("no path".into()));
            }
            Ok(crate::oauth_jwks::JwksLocation::File(PathBuf::from(path)))
        }
        "http" | "https" => {
            let uri: hyper::Uri = url.parse().map_err(|e| malformed(format!("{e}")))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(malformed("no host".into()));
            }
            Ok(crate::oauth_jwks::JwksLocation::Http(uri))
        }
        other => Err(invalid(
            name,
            url,
            format!("The OAuth configuration option {name} contains a URL ({url}) that contains an invalid protocol ({other}); only \"http\", \"https\", and \"file\" protocol are supported"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_default_map_names_the_four_protocols_and_controllers_are_plaintext() {
        let map = protocol_map(&BTreeMap::new(), &["CONTROLLER".into()]).unwrap();
        assert_eq!(map["SASL_SSL"], SecurityProtocol::SaslSsl);
        assert_eq!(map["CONTROLLER"], SecurityProtocol::Plaintext);
        let explicit = protocol_map(
            &config(&[(
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:sasl_ssl",
            )]),
            &["CONTROLLER".into()],
        )
        .unwrap();
        assert_eq!(explicit["EXTERNAL"], SecurityProtocol::SaslSsl);
        assert!(!explicit.contains_key("CONTROLLER"));
        assert!(
            protocol_map(&config(&[("listener.security.protocol.map", "A:TLS")]), &[]).is_err()
        );
    }

    #[test]
    fn listener_prefixed_settings_win_over_plain_ones() {
        let map = config(&[
            ("ssl.keystore.location", "/plain.pem"),
            (
                "listener.name.external.ssl.keystore.location",
                "/external.pem",
            ),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/ca.pem"),
            (
                "ssl.principal.mapping.rules",
                "RULE:^CN=(.*?),.*$/$1/L,DEFAULT",
            ),
        ]);
        let external = listener_security(&map, "EXTERNAL", SecurityProtocol::Ssl).unwrap();
        let tls = external.tls.unwrap();
        assert_eq!(tls.keystore, Keystore::File("/external.pem".into()));
        assert_eq!(tls.client_auth, ClientAuth::Required);
        assert_eq!(
            tls.principal_mapper.name_for("CN=Alice,O=x").unwrap(),
            "alice"
        );
        let other = listener_security(&map, "OTHER", SecurityProtocol::Ssl).unwrap();
        assert_eq!(
            other.tls.unwrap().keystore,
            Keystore::File("/plain.pem".into())
        );
    }

    #[test]
    fn tls_and_sasl_listeners_refuse_incomplete_settings() {
        let missing_keystore = listener_security(&BTreeMap::new(), "SSL", SecurityProtocol::Ssl);
        assert!(missing_keystore
            .unwrap_err()
            .to_string()
            .contains("ssl.keystore.location"));
        let no_trust = config(&[
            ("ssl.keystore.location", "/k.pem"),
            ("ssl.client.auth", "required"),
        ]);
        assert!(listener_security(&no_trust, "SSL", SecurityProtocol::Ssl).is_err());
        let gssapi = listener_security(
            &BTreeMap::new(),
            "SASL_PLAINTEXT",
            SecurityProtocol::SaslPlaintext,
        );
        assert!(gssapi.unwrap_err().to_string().contains("GSSAPI"));
        let no_jaas = config(&[("sasl.enabled.mechanisms", "PLAIN")]);
        let err = listener_security(&no_jaas, "SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("listener.name.sasl_plaintext.plain.sasl.jaas.config"),
            "{err}"
        );
    }

    #[test]
    fn oauthbearer_needs_a_named_validator_and_an_allowed_jwks_url() {
        let listener = "SASL_SSL";
        let sasl = |pairs: &[(&str, &str)]| {
            let mut map = config(&[
                ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                ("ssl.keystore.location", "/k.pem"),
            ]);
            map.extend(config(pairs));
            listener_security(&map, listener, SecurityProtocol::SaslSsl).map(|s| s.sasl.unwrap())
        };
        let handler = "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class";
        let jaas = "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config";
        // Kafka's default would be the unsecured validator: strom wants it named.
        let err = sasl(&[]).unwrap_err().to_string();
        assert!(err.contains("OAuthBearerValidatorCallbackHandler"), "{err}");
        let dev = sasl(&[
            (handler, UNSECURED_VALIDATOR),
            (jaas, r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope="kafka";"#),
        ])
        .unwrap();
        assert!(dev.oauthbearer.as_ref().unwrap().jwks.is_none());
        assert!(sasl(&[(handler, UNSECURED_VALIDATOR)]).is_err());
        let url = "https://idp.test/jwks";
        let err = sasl(&[
            (handler, JWT_VALIDATOR),
            ("sasl.oauthbearer.jwks.endpoint.url", url),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("https://idp.test/jwks is not allowed. Update system property 'org.apache.kafka.sasl.oauthbearer.allowed.urls' to allow https://idp.test/jwks"),
            "{err}"
        );
        let secured = sasl(&[
            (handler, JWT_VALIDATOR),
            (
                "sasl.oauthbearer.jwks.endpoint.url",
                "https://other.test/jwks",
            ),
            (
                "listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
                url,
            ),
            (ALLOWED_OAUTH_URLS, "https://x.test, https://idp.test/jwks"),
        ])
        .unwrap();
        let jwks = secured.oauthbearer.as_ref().unwrap().jwks.as_ref().unwrap();
        assert_eq!(jwks.url, url);
        for (url, why) in [
            ("ftp://h/jwks", "invalid protocol (ftp)"),
            ("jwks.json", "malformed"),
            ("http:///jwks", "malformed"),
        ] {
            let err = sasl(&[
                (handler, JWT_VALIDATOR),
                ("sasl.oauthbearer.jwks.endpoint.url", url),
                (ALLOWED_OAUTH_URLS, url),
            ])
            .unwrap_err()
            .to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        assert_eq!(
            jwks_location("file:///etc/jwks.json").unwrap(),
            crate::oauth_jwks::JwksLocation::File("/etc/jwks.json".into())
        );
        assert_eq!(
            jwks_location("file:/etc/jwks.json").unwrap(),
            crate::oauth_jwks::JwksLocation::File("/etc/jwks.json".into())
        );
        let err = sasl(&[
            (handler, JWT_VALIDATOR),
            ("sasl.oauthbearer.jwks.endpoint.url", url),
            (ALLOWED_OAUTH_URLS, url),
            ("sasl.oauthbearer.jwks.endpoint.refresh.ms", "0"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be at least 1"), "{err}");
    }

    #[test]
    fn plain_users_come_from_the_listeners_jaas_config() {
        let map = config(&[
            (
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                "PLAIN",
            ),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a" user_admin="a" user_alice="b";"#,
            ),
            ("connections.max.reauth.ms", "60000"),
        ]);
        let sasl = listener_security(&map, "SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext)
            .unwrap()
            .sasl
            .unwrap();
        assert_eq!(sasl.mechanisms, vec![Mechanism::Plain]);
        assert_eq!(sasl.plain_users.as_ref().unwrap().len(), 2);
        assert_eq!(sasl.max_reauth_ms, 60_000);
    }

    #[test]
    fn security_configs_are_known_with_their_listener_and_mechanism_prefixes() {
        for name in [
            "sasl.enabled.mechanisms",
            "super.users",
            "ssl.client.auth",
            "listener.name.sasl_ssl.ssl.keystore.location",
            "listener.name.plaintext.plain.sasl.jaas.config",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class",
            "listener.name.x.oauthbearer.sasl.oauthbearer.expected.audience",
            "org.apache.kafka.sasl.oauthbearer.allowed.urls",
        ] {
            assert!(is_security_config(name), "{name}");
        }
        for name in [
            "ssl.keystore.password.typo",
            "listener.name.x",
            "plain.super.users.extra",
            "log.retention.ms",
        ] {
            assert!(!is_security_config(name), "{name}");
        }
    }
}
