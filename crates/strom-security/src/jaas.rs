//! `sasl.jaas.config` values, read as Kafka's JaasConfig reads them:
//! `<LoginModule class> <flag> name="value" name=value ... ;`, one or more modules.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JaasError {
    #[error("JAAS config: {0}")]
    Syntax(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// Parses a whole `sasl.jaas.config` value.
pub fn parse(text: &str) -> Result<Vec<LoginModule>, JaasError> {
    let tokens = tokenize(text)?;
    let mut modules = Vec::new();
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        let (class, flag) = match rest {
            [Token::Word(class), Token::Word(flag), ..] => {
                (class.clone(), flag.to_ascii_lowercase())
            }
            _ => {
                return Err(JaasError::Syntax(
                    "expected a login module class and a control flag".into(),
                ))
            }
        };
        if !matches!(
            flag.as_str(),
            "required" | "requisite" | "sufficient" | "optional"
        ) {
            return Err(JaasError::Syntax(format!("invalid control flag {flag:?}")));
        }
        rest = &rest[2..];
        let mut options = BTreeMap::new();
        loop {
            match rest {
                [Token::Semicolon, tail @ ..] => {
                    rest = tail;
                    break;
                }
                [Token::Word(name), Token::Equals, Token::Word(value) | Token::Quoted(value), tail @ ..] =>
                {
                    options.insert(name.clone(), value.clone());
                    rest = tail;
                }
                [] => return Err(JaasError::Syntax("a login module must end with ';'".into())),
                _ => return Err(JaasError::Syntax("expected name=value or ';'".into())),
            }
        }
        modules.push(LoginModule {
            class,
            flag,
            options,
        });
    }
    if modules.is_empty() {
        return Err(JaasError::Syntax("no login module".into()));
    }
    Ok(modules)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, JaasError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => {
                                return Err(JaasError::Syntax("unterminated quoted value".into()))
                            }
                        },
                        Some(c) if c == quote => break,
                        Some(c) => value.push(c),
                        None => return Err(JaasError::Syntax("unterminated quoted value".into())),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"' | '\'') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_login_module_with_users_is_read_as_kafka_reads_it() {
        let modules = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice='al"ice' user_bob=bob-pw;"#,
        )
        .unwrap();
        assert_eq!(modules.len(), 1);
        let m = &modules[0];
        assert_eq!(
            m.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(m.flag, "required");
        assert_eq!(m.options["username"], "admin");
        assert_eq!(m.options["user_alice"], "al\"ice");
        assert_eq!(m.options["user_bob"], "bob-pw");
        assert_eq!(m.options.len(), 5);
    }

    #[test]
    fn malformed_configs_are_refused() {
        for bad in [
            "",
            "Module required",
            "Module required a=\"b\"",
            "Module maybe a=b;",
            "Module required a=;",
            "Module required a=\"unterminated;",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("A required; B optional x=y;").unwrap().len(), 2);
    }
}
