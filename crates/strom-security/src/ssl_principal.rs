//! The principal of a TLS client: its certificate's subject printed as Java's
//! `X500Principal.getName()` prints it (RFC 2253), then Kafka's
//! `ssl.principal.mapping.rules` (`DEFAULT`, `RULE:pattern/replacement/[LU]`).

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SslPrincipalError {
    #[error("invalid rule: {0}")]
    InvalidRule(String),
    #[error("no rules apply to {0}")]
    NoMatchingRule(String),
    #[error("the client certificate cannot be parsed: {0}")]
    BadCertificate(String),
}

/// The subject of a DER certificate as RFC 2253 text, the last RDN first, with
/// RFC 2253's keywords and every other attribute as `OID=#hex` of its DER value.
pub fn subject_distinguished_name(cert_der: &[u8]) -> Result<String, SslPrincipalError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| SslPrincipalError::BadCertificate(e.to_string()))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    match (keyword(&oid), atv.as_str()) {
                        (Some(name), Ok(text)) => format!("{name}={}", escape_value(text)),
                        _ => format!("{oid}=#{}", hex(&der_of(atv.attr_value()))),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The value's whole DER encoding (tag, length, content), as RFC 2253's `#hex` form wants.
fn der_of(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let content = value.data;
    let tag = value.header.tag().0;
    let class = value.header.class() as u8;
    let constructed = if value.header.is_constructed() {
        0x20
    } else {
        0
    };
    let mut out = Vec::with_capacity(content.len() + 6);
    // Attribute values use low tag numbers (strings, at most 30).
    out.push((class << 6) | constructed | (tag as u8 & 0x1f));
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn escape_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `ssl.principal.mapping.rules`, applied in order; the first rule that matches names
/// the principal.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        anchored: Regex,
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl SslPrincipalMapper {
    pub fn parse(rules: &str) -> Result<Self, SslPrincipalError> {
        let mut parsed = Vec::new();
        for text in split_rules(rules.trim())? {
            if text.is_empty() {
                continue;
            }
            if text == "DEFAULT" {
                parsed.push(Rule::Default);
                continue;
            }
            let body = text
                .strip_prefix("RULE:")
                .ok_or_else(|| SslPrincipalError::InvalidRule(text.clone()))?;
            let (pattern, rest) = split_unescaped_slash(body)
                .ok_or_else(|| SslPrincipalError::InvalidRule(text.clone()))?;
            let (replacement, flags) = split_unescaped_slash(rest)
                .ok_or_else(|| SslPrincipalError::InvalidRule(text.clone()))?;
            let case = match flags {
                "" => Case::Keep,
                "L" => Case::Lower,
                "U" => Case::Upper,
                _ => return Err(SslPrincipalError::InvalidRule(text.clone())),
            };
            let invalid = |e: regex::Error| SslPrincipalError::InvalidRule(format!("{text}: {e}"));
            let pattern_re = Regex::new(pattern).map_err(invalid)?;
            let anchored = Regex::new(&format!("^(?:{pattern})$")).map_err(invalid)?;
            let groups = pattern_re.captures_len() - 1;
            parsed.push(Rule::Replace {
                anchored,
                pattern: pattern_re,
                replacement: java_replacement(replacement, groups),
                case,
            });
        }
        Ok(Self { rules: parsed })
    }

    /// The principal name for a subject distinguished name.
    pub fn name_for(&self, distinguished_name: &str) -> Result<String, SslPrincipalError> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(distinguished_name.to_string()),
                Rule::Replace {
                    anchored,
                    pattern,
                    replacement,
                    case,
                } => {
                    if !anchored.is_match(distinguished_name) {
                        continue;
                    }
                    let name = pattern
                        .replace_all(distinguished_name, replacement.as_str())
                        .into_owned();
                    return Ok(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
        Err(SslPrincipalError::NoMatchingRule(distinguished_name.into()))
    }
}

/// Rules are separated by commas outside of a rule's pattern and replacement.
fn split_rules(text: &str) -> Result<Vec<String>, SslPrincipalError> {
    let mut rules = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("RULE:") {
            let (_, after_pattern) = split_unescaped_slash(after)
                .ok_or_else(|| SslPrincipalError::InvalidRule(rest.into()))?;
            let (_, after_replacement) = split_unescaped_slash(after_pattern)
                .ok_or_else(|| SslPrincipalError::InvalidRule(rest.into()))?;
            let flags_len = after_replacement
                .find(',')
                .unwrap_or(after_replacement.len());
            let rule_len = rest.len() - after_replacement.len() + flags_len;
            rules.push(rest[..rule_len].trim_end().to_string());
            rest = rest[rule_len..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            rules.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(rules)
}

/// Splits at the first `/` not escaped by a backslash.
fn split_unescaped_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&text[..i], &text[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// A Java replacement string (`$1`, `\$`) in the regex crate's syntax (`${1}`, `$$`).
/// A reference past the pattern's groups is kept literally, as Kafka does.
fn java_replacement(java: &str, groups: usize) -> String {
    let mut out = String::new();
    let chars: Vec<char> = java.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                push_literal(&mut out, chars[i + 1]);
                i += 2;
            }
            '$' if i + 1 < chars.len() && chars[i + 1].is_ascii_digit() => {
                let first = chars[i + 1].to_digit(10).unwrap_or(0) as usize;
                if first > groups {
                    out.push_str("$$");
                    i += 1;
                    continue;
                }
                let mut group = first;
                let mut j = i + 2;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    let next = group * 10 + chars[j].to_digit(10).unwrap_or(0) as usize;
                    if next > groups {
                        break;
                    }
                    group = next;
                    j += 1;
                }
                out.push_str(&format!("${{{group}}}"));
                i = j;
            }
            c => {
                push_literal(&mut out, c);
                i += 1;
            }
        }
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if c == '$' {
        out.push_str("$$");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rules: &str, dn: &str) -> Result<String, SslPrincipalError> {
        SslPrincipalMapper::parse(rules)?.name_for(dn)
    }

    #[test]
    fn kafkas_documented_rules_give_kafkas_names() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT";
        assert_eq!(
            map(rules, "CN=kafka1,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "kafka1"
        );
        assert_eq!(
            map(
                rules,
                "CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US"
            )
            .unwrap(),
            "duke@javasoft"
        );
        assert_eq!(map(rules, "OU=Eng,cn=Admin.One,O=x").unwrap(), "admin.one");
        assert_eq!(map(rules, "OU=nothing").unwrap(), "OU=nothing");
        assert_eq!(map("DEFAULT", "CN=a,O=b").unwrap(), "CN=a,O=b");
        assert_eq!(map("RULE:^CN=(.*)$/$1/U", "CN=bob").unwrap(), "BOB");
    }

    #[test]
    fn unmatched_names_and_bad_rules_are_errors() {
        assert_eq!(
            map("RULE:^CN=(.*)$/$1/", "O=x"),
            Err(SslPrincipalError::NoMatchingRule("O=x".into()))
        );
        assert!(SslPrincipalMapper::parse("RULE:^CN=(.*)$/$1/X").is_err());
        assert!(SslPrincipalMapper::parse("RULE:^CN=(.*)$").is_err());
        assert!(SslPrincipalMapper::parse("SOMETHING").is_err());
    }

    #[test]
    fn references_past_the_groups_stay_literal_and_escapes_are_kept() {
        assert_eq!(map("RULE:^CN=(.*)$/$1@$4/", "CN=a").unwrap(), "a@$4");
        assert_eq!(map("RULE:^CN=(.*)$/\\$$1/", "CN=a").unwrap(), "$a");
        assert_eq!(map("RULE:^CN=(a\\/b)$/x\\/$1/", "CN=a/b").unwrap(), "x/a/b");
    }

    #[test]
    fn a_certificate_subject_prints_as_javas_rfc2253_name() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "SE");
        dn.push(rcgen::DnType::OrganizationName, "Strom, Inc");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_distinguished_name(cert.der()).unwrap(),
            "CN=alice,OU=eng,O=Strom\\, Inc,C=SE"
        );
        assert!(subject_distinguished_name(b"not a certificate").is_err());
    }
}
