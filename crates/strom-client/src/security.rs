//! Client security settings with Kafka's and librdkafka's config names:
//! `security.protocol`, `sasl.*` and `ssl.*`, read from a Java properties
//! text (`--command-config`) and `key=value` overrides.
//!
//! [`SecurityConfig::from_properties`] only parses; [`SecurityConfig::load`]
//! reads the PEM files and builds what connections use ([`Security`]).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::oauth::{OAuthBearer, TokenSource};
use crate::scram::ScramMechanism;

pub use strom_types::SecurityProtocol;

/// The SASL mechanisms the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// A SASL mechanism with the user's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    /// For OAUTHBEARER, who the token speaks for (logs only).
    pub username: String,
    pub password: String,
    /// OAUTHBEARER's token source.
    pub oauth: Option<TokenSource>,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .field("oauth", &self.oauth.as_ref().map(|_| "[token source]"))
            .finish()
    }
}

/// TLS settings before their files are read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM CA certificates; `None`: the system's roots.
    pub ca_location: Option<PathBuf>,
    /// PEM certificate chain of the client (mTLS).
    pub certificate_location: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_location: Option<PathBuf>,
    /// One PEM file with the private key and the certificate chain (Kafka's PEM keystore).
    pub keystore_location: Option<PathBuf>,
    /// `ssl.endpoint.identification.algorithm=https` (the default): check
    /// that the broker's certificate names the host connected to.
    pub verify_hostname: bool,
}

/// The client security settings, parsed but not loaded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityConfig {
    pub protocol: SecurityProtocol,
    pub tls: TlsConfig,
    /// Set when the protocol uses SASL.
    pub sasl: Option<SaslCredentials>,
    /// Keys given that are not security settings (the caller may use or
    /// warn about them).
    pub other: Vec<(String, String)>,
}

/// A client security setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecurityError(pub String);

fn invalid(message: impl Into<String>) -> SecurityError {
    SecurityError(message.into())
}

impl SecurityConfig {
    /// Builds the settings from config pairs (later pairs win), checking
    /// that they fit together.
    pub fn from_properties<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SecurityError> {
        let mut settings = std::collections::BTreeMap::new();
        for (key, value) in pairs {
            settings.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        let get = |key: &str| settings.get(key).map(String::as_str);
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(name) => match SecurityProtocol::parse(name) {
                Some(protocol) => protocol,
                None => {
                    return Err(invalid(format!(
                        "security.protocol={name} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
                    )))
                }
            },
        };
        let tls = tls_config(&get)?;
        let sasl = if protocol.uses_sasl() {
            Some(sasl_credentials(&get)?)
        } else {
            None
        };
        let other = settings
            .iter()
            .filter(|(k, _)| !is_security_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(SecurityConfig {
            protocol,
            tls,
            sasl,
            other,
        })
    }

    /// Reads the PEM files and builds the TLS configuration (blocking file
    /// reads: call it once at start-up).
    pub fn load(&self) -> Result<Security, SecurityError> {
        let tls = if self.protocol.uses_tls() {
            Some(Arc::new(crate::tls::client_config(&self.tls)?))
        } else {
            None
        };
        // An https token endpoint is trusted through ssl.ca.location, or the system's roots.
        let oauth = match self.sasl.as_ref().and_then(|s| s.oauth.clone()) {
            Some(source) => {
                let endpoint_tls = match &source {
                    TokenSource::ClientCredentials { endpoint, .. }
                        if endpoint.starts_with("https:") =>
                    {
                        let trust = TlsConfig {
                            ca_location: self.tls.ca_location.clone(),
                            verify_hostname: true,
                            ..TlsConfig::default()
                        };
                        Some(Arc::new(crate::tls::client_config(&trust)?))
                    }
                    _ => None,
                };
                Some(Arc::new(OAuthBearer::new(source, endpoint_tls)))
            }
            None => None,
        };
        Ok(Security {
            protocol: self.protocol,
            tls,
            sasl: self.sasl.clone(),
            oauth,
        })
    }
}

const SECURITY_KEYS: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "ssl.ca.location",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "ssl.endpoint.identification.algorithm",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.login.callback.handler.class",
];

fn is_security_key(key: &str) -> bool {
    SECURITY_KEYS.contains(&key)
}

fn tls_config<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<TlsConfig, SecurityError> {
    let path = |key: &str| get(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    let pem_only = |type_key: &str| match get(type_key) {
        Some(t) if !t.eq_ignore_ascii_case("PEM") => Err(invalid(format!(
            "{type_key}={t} is not supported: only PEM files can be read"
        ))),
        _ => Ok(()),
    };
    let truststore = path("ssl.truststore.location");
    if truststore.is_some() {
        pem_only("ssl.truststore.type")?;
    }
    let keystore = path("ssl.keystore.location");
    if keystore.is_some() {
        pem_only("ssl.keystore.type")?;
    }
    if get("ssl.key.password").is_some_and(|p| !p.is_empty()) {
        return Err(invalid(
            "ssl.key.password is not supported: the private key must not be encrypted",
        ));
    }
    let ca_location = match (path("ssl.ca.location"), truststore) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either ssl.ca.location or ssl.truststore.location, not both",
            ))
        }
        (ca, truststore) => ca.or(truststore),
    };
    let certificate_location = path("ssl.certificate.location");
    let key_location = path("ssl.key.location");
    if certificate_location.is_some() != key_location.is_some() {
        return Err(invalid(
            "ssl.certificate.location and ssl.key.location must be given together",
        ));
    }
    if keystore.is_some() && certificate_location.is_some() {
        return Err(invalid(
            "give either ssl.keystore.location or ssl.certificate.location with ssl.key.location, not both",
        ));
    }
    let verify_hostname = match get("ssl.endpoint.identification.algorithm") {
        None => true,
        Some(a) if a.eq_ignore_ascii_case("https") => true,
        Some(a) if a.is_empty() || a.eq_ignore_ascii_case("none") => false,
        Some(a) => {
            return Err(invalid(format!(
                "ssl.endpoint.identification.algorithm={a} is not one of https, none or empty"
            )))
        }
    };
    Ok(TlsConfig {
        ca_location,
        certificate_location,
        key_location,
        keystore_location: keystore,
        verify_hostname,
    })
}

fn sasl_credentials<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<SaslCredentials, SecurityError> {
    let name = get("sasl.mechanism")
        .or_else(|| get("sasl.mechanisms"))
        .ok_or_else(|| {
            invalid("sasl.mechanism is required: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (GSSAPI, Kafka's default, is not supported)")
        })?;
    let mechanism = match name.to_ascii_uppercase().as_str() {
        "PLAIN" => SaslMechanism::Plain,
        "SCRAM-SHA-256" => SaslMechanism::Scram(ScramMechanism::Sha256),
        "SCRAM-SHA-512" => SaslMechanism::Scram(ScramMechanism::Sha512),
        "OAUTHBEARER" => {
            let jaas = match get("sasl.jaas.config") {
                Some(text) => jaas_options(text)?,
                None => Vec::new(),
            };
            let source = crate::oauth::token_source(get, &jaas)?;
            let username = match &source {
                TokenSource::Unsecured { principal, .. } => principal.clone(),
                TokenSource::ClientCredentials { client_id, .. } => client_id.clone(),
            };
            return Ok(SaslCredentials {
                mechanism: SaslMechanism::OAuthBearer,
                username,
                password: String::new(),
                oauth: Some(source),
            });
        }
        _ => {
            return Err(invalid(format!(
                "sasl.mechanism={name} is not supported: use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
            )))
        }
    };
    let jaas = match get("sasl.jaas.config") {
        Some(text) => jaas_credentials(text)?,
        None => (None, None),
    };
    let username = get("sasl.username").map(str::to_owned).or(jaas.0);
    let password = get("sasl.password").map(str::to_owned).or(jaas.1);
    match (username, password) {
        (Some(username), Some(password)) => Ok(SaslCredentials {
            mechanism,
            username,
            password,
            oauth: None,
        }),
        _ => Err(invalid(format!(
            "SASL needs a user name and password: sasl.username and sasl.password, or sasl.jaas.config with username=\"...\" password=\"...\" (mechanism {})",
            mechanism.name()
        ))),
    }
}

/// The `username` and `password` options of a JAAS config's first login
/// module (`<class> <flag> key="value" ...;`).
pub fn jaas_credentials(text: &str) -> Result<(Option<String>, Option<String>), SecurityError> {
    let options = jaas_options(text)?;
    let find = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    Ok((find("username"), find("password")))
}

/// Parses `<class> <flag> key=value ... ;` into its options. Values are
/// double-quoted (with `\` escapes) or bare words.
pub fn jaas_options(text: &str) -> Result<Vec<(String, String)>, SecurityError> {
    let bad = |why: &str| invalid(format!("sasl.jaas.config: {why}"));
    fn word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut out = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != ';' && *c != '=') {
            out.push(c);
        }
        out
    }
    let mut chars = text.chars().peekable();
    let class = word(&mut chars);
    if class.is_empty() {
        return Err(bad("expected a login module class"));
    }
    let flag = word(&mut chars);
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err(bad(&format!(
            "expected a control flag (required, requisite, sufficient, optional) after {class}"
        )));
    }
    let mut options = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None => return Err(bad("missing ';' at the end of the login module")),
            Some(';') => break,
            Some(_) => {}
        }
        let key = word(&mut chars);
        if key.is_empty() || chars.next() != Some('=') {
            return Err(bad("expected key=value options"));
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err(bad(&format!("unterminated quoted value of {key}"))),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad(&format!("unterminated quoted value of {key}"))),
                    },
                    Some(c) => value.push(c),
                }
            }
            value
        } else {
            let value = word(&mut chars);
            if value.is_empty() {
                return Err(bad(&format!("option {key} has no value")));
            }
            value
        };
        options.push((key, value));
    }
    Ok(options)
}

/// Parses Java properties text (as `java.util.Properties.load`): `#` and
/// `!` comments, `key=value`, `key: value` or `key value`, lines continued
/// by a trailing backslash, and backslash escapes (`\t`, `\n`, `\uXXXX`, ...).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, SecurityError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let mut logical = line.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        while logical.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1 {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_property(&logical);
        let key = unescape(key).map_err(|e| invalid(format!("line {}: {e}", number + 1)))?;
        let value = unescape(value).map_err(|e| invalid(format!("line {}: {e}", number + 1)))?;
        out.push((key, value));
    }
    Ok(out)
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace.
fn split_property(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], line[i + 1..].trim_start()),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).map_or(rest, str::trim_start);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\u escape '\\u{hex}'"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// Loaded security settings, shared by every connection a client opens.
#[derive(Clone, Default)]
pub struct Security {
    pub protocol: SecurityProtocol,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslCredentials>,
    /// OAUTHBEARER's token in use, shared by every connection.
    pub(crate) oauth: Option<Arc<OAuthBearer>>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<SecurityConfig, SecurityError> {
        SecurityConfig::from_properties(pairs.iter().copied())
    }

    #[test]
    fn properties_follow_java_syntax() {
        let text = "# a comment\n\
                    ! another\n\
                    \n\
                    security.protocol=SASL_SSL\n\
                    sasl.mechanism : SCRAM-SHA-512\n\
                    ssl.ca.location /etc/ca.pem\n\
                    sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n\
                    \x20   username=\"alice\" password=\"a=b:c\";\n\
                    spaced\\ key = tab\\there\\u0021\n\
                    empty=\n\
                    lonely\n";
        assert_eq!(
            parse_properties(text).unwrap(),
            vec![
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
                ("ssl.ca.location".into(), "/etc/ca.pem".into()),
                (
                    "sasl.jaas.config".into(),
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"a=b:c\";".into()
                ),
                ("spaced key".into(), "tab\there!".into()),
                ("empty".into(), "".into()),
                ("lonely".into(), "".into()),
            ]
        );
        assert_eq!(
            parse_properties("k=\\u12").unwrap_err().to_string(),
            "line 1: malformed \\u escape '\\u12'"
        );
    }

    #[test]
    fn jaas_options_are_parsed_as_kafka_reads_them() {
        let text = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="p\"w;d" extra=bare;"#;
        assert_eq!(
            jaas_options(text).unwrap(),
            vec![
                ("username".into(), "alice".into()),
                ("password".into(), "p\"w;d".into()),
                ("extra".into(), "bare".into()),
            ]
        );
        assert_eq!(
            jaas_credentials(text).unwrap(),
            (Some("alice".into()), Some("p\"w;d".into()))
        );
        for (bad, why) in [
            ("", "expected a login module class"),
            (
                "Module maybe a=b;",
                "expected a control flag (required, requisite, sufficient, optional) after Module",
            ),
            (
                "Module required a=b",
                "missing ';' at the end of the login module",
            ),
            ("Module required a=\"b;", "unterminated quoted value of a"),
            ("Module required a;", "expected key=value options"),
            ("Module required a= ;", "option a has no value"),
        ] {
            assert_eq!(
                jaas_options(bad).unwrap_err().to_string(),
                format!("sasl.jaas.config: {why}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sasl_credentials_come_from_librdkafka_or_java_names() {
        let c = config(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "bob"),
            ("sasl.password", "pw"),
            ("ssl.ca.location", "/ca.pem"),
            ("client.id", "tool"),
        ])
        .unwrap();
        assert_eq!(c.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            c.sasl,
            Some(SaslCredentials {
                mechanism: SaslMechanism::Scram(ScramMechanism::Sha256),
                username: "bob".into(),
                password: "pw".into(),
                oauth: None,
            })
        );
        assert_eq!(c.tls.ca_location, Some(PathBuf::from("/ca.pem")));
        assert!(c.tls.verify_hostname);
        assert_eq!(c.other, vec![("client.id".into(), "tool".into())]);
        let c = config(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="secret";"#,
            ),
        ])
        .unwrap();
        let sasl = c.sasl.unwrap();
        assert_eq!(
            (
                sasl.mechanism,
                sasl.username.as_str(),
                sasl.password.as_str()
            ),
            (SaslMechanism::Plain, "alice", "secret")
        );
        // The password never shows in debug output.
        assert!(!format!("{sasl:?}").contains("secret"));
    }

    #[test]
    fn bad_combinations_are_refused_with_the_key_named() {
        let err = |pairs: &[(&str, &str)]| config(pairs).unwrap_err().to_string();
        assert_eq!(
            err(&[("security.protocol", "TLS")]),
            "security.protocol=TLS is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
        );
        assert!(err(&[("security.protocol", "SASL_SSL")]).starts_with("sasl.mechanism is required"));
        assert_eq!(
            err(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "GSSAPI")
            ]),
            "sasl.mechanism=GSSAPI is not supported: use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
        );
        assert!(err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "a")
        ])
        .starts_with("SASL needs a user name and password"));
        assert_eq!(
            err(&[
                ("ssl.truststore.location", "/t.jks"),
                ("ssl.truststore.type", "JKS")
            ]),
            "ssl.truststore.type=JKS is not supported: only PEM files can be read"
        );
        assert_eq!(
            err(&[("ssl.certificate.location", "/c.pem")]),
            "ssl.certificate.location and ssl.key.location must be given together"
        );
        assert_eq!(
            err(&[("ssl.endpoint.identification.algorithm", "dns")]),
            "ssl.endpoint.identification.algorithm=dns is not one of https, none or empty"
        );
    }

    #[test]
    fn pem_stores_and_hostname_checks_use_kafka_names() {
        let c = config(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/trust.pem"),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/keystore.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        assert_eq!(
            c.tls,
            TlsConfig {
                ca_location: Some("/trust.pem".into()),
                certificate_location: None,
                key_location: None,
                keystore_location: Some("/keystore.pem".into()),
                verify_hostname: false,
            }
        );
        assert_eq!(c.sasl, None);
        // Later pairs win, as -X overrides do over the properties file.
        let c = config(&[
            ("security.protocol", "SSL"),
            ("security.protocol", "PLAINTEXT"),
        ])
        .unwrap();
        assert_eq!(c.protocol, SecurityProtocol::Plaintext);
    }
}
