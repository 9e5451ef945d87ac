//! Options: uninterpreted options, and aggregate (text-format) values as Wire reads them.

use prost_types::UninterpretedOption;

use super::model::{Opt, OptValue};

pub(super) fn options_of(
    uninterpreted: &[UninterpretedOption],
    known: &[(&str, OptValue)],
) -> Vec<Opt> {
    let mut out: Vec<Opt> = known
        .iter()
        .map(|(name, value)| Opt {
            name: (*name).to_owned(),
            parenthesized: false,
            rest: String::new(),
            value: value.clone(),
        })
        .collect();
    for u in uninterpreted {
        let Some(first) = u.name.first() else {
            continue;
        };
        let rest: Vec<String> = u.name[1..]
            .iter()
            .map(|p| {
                if p.is_extension {
                    format!("({})", p.name_part)
                } else {
                    p.name_part.clone()
                }
            })
            .collect();
        let value = if let Some(s) = &u.identifier_value {
            OptValue::Ident(s.clone())
        } else if let Some(v) = u.positive_int_value {
            OptValue::Num(v.to_string())
        } else if let Some(v) = u.negative_int_value {
            OptValue::Num(v.to_string())
        } else if let Some(v) = u.double_value {
            OptValue::Num(format_double(v))
        } else if let Some(s) = &u.string_value {
            OptValue::Str(String::from_utf8_lossy(s).into_owned())
        } else if let Some(a) = &u.aggregate_value {
            OptValue::Map(parse_aggregate(a))
        } else {
            OptValue::Ident(String::new())
        };
        out.push(Opt {
            name: first.name_part.clone(),
            parenthesized: first.is_extension,
            rest: rest.join("."),
            value,
        });
    }
    out
}

fn format_double(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if v.is_nan() {
        "nan".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// A text-format message (an aggregate option value) as Wire reads it: fields in order, a
/// field given more than once collected into a list.
fn parse_aggregate(text: &str) -> Vec<(String, OptValue)> {
    let tokens = tokenize(text);
    let mut pos = 0;
    parse_entries(&tokens, &mut pos, None)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Punct(char),
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        other => other,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            // Adjacent literals concatenate.
            if let Some(Tok::Str(prev)) = out.last_mut() {
                prev.push_str(&s);
            } else {
                out.push(Tok::Str(s));
            }
        } else if "{}[]<>:,;".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !"{}[]<>:,;\"'#".contains(chars[i])
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    out
}

fn parse_entries(tokens: &[Tok], pos: &mut usize, close: Option<char>) -> Vec<(String, OptValue)> {
    let mut out: Vec<(String, OptValue)> = Vec::new();
    while *pos < tokens.len() {
        let key = match &tokens[*pos] {
            Tok::Punct(c) if Some(*c) == close => {
                *pos += 1;
                break;
            }
            Tok::Punct(',') | Tok::Punct(';') => {
                *pos += 1;
                continue;
            }
            Tok::Punct('[') => {
                // An extension: `[pkg.ext]`.
                let mut name = String::from("[");
                *pos += 1;
                while *pos < tokens.len() && tokens[*pos] != Tok::Punct(']') {
                    if let Tok::Word(w) = &tokens[*pos] {
                        name.push_str(w);
                    }
                    *pos += 1;
                }
                *pos += 1;
                name.push(']');
                name
            }
            Tok::Word(w) => {
                *pos += 1;
                w.clone()
            }
            _ => {
                *pos += 1;
                continue;
            }
        };
        if tokens.get(*pos) == Some(&Tok::Punct(':')) {
            *pos += 1;
        }
        let value = parse_value(tokens, pos);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, OptValue::List(list))) => list.push(value),
            Some((_, existing)) => {
                let first = std::mem::replace(existing, OptValue::List(Vec::new()));
                *existing = OptValue::List(vec![first, value]);
            }
            None => out.push((key, value)),
        }
    }
    out
}

fn parse_value(tokens: &[Tok], pos: &mut usize) -> OptValue {
    let Some(tok) = tokens.get(*pos).cloned() else {
        return OptValue::Ident(String::new());
    };
    *pos += 1;
    match tok {
        Tok::Punct('{') => OptValue::Map(parse_entries(tokens, pos, Some('}'))),
        Tok::Punct('<') => OptValue::Map(parse_entries(tokens, pos, Some('>'))),
        Tok::Punct('[') => {
            let mut list = Vec::new();
            while *pos < tokens.len() {
                match tokens[*pos] {
                    Tok::Punct(']') => {
                        *pos += 1;
                        break;
                    }
                    Tok::Punct(',') => *pos += 1,
                    _ => list.push(parse_value(tokens, pos)),
                }
            }
            OptValue::List(list)
        }
        Tok::Str(s) => OptValue::Str(s),
        Tok::Word(w) => {
            if w == "-" {
                if let Some(Tok::Word(n)) = tokens.get(*pos) {
                    *pos += 1;
                    return OptValue::Num(format!("-{n}"));
                }
            }
            if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
                OptValue::Num(w)
            } else {
                OptValue::Ident(w)
            }
        }
        Tok::Punct(c) => OptValue::Ident(c.to_string()),
    }
}
