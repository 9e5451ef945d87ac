//! JSON as Jackson's tree model sees it: the reader Avro's parser uses, and Java's way of
//! printing strings and numbers.

/// A JSON value. Objects keep their key order; integers and floating numbers stay apart
/// (an integral default is not a valid `int` default when written `1.0`).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    /// An integer that fits a Java `long`.
    Int(i64),
    /// An integer beyond a Java `long`, kept as its digits.
    BigInt(String),
    Double(f64),
    /// Only made by normalization (a `float` default), printed as Java's `Float.toString`.
    Float(f32),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(super) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Jackson's `textValue()`: the string of a string node, nothing otherwise.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn is_number(&self) -> bool {
        matches!(
            self,
            Json::Int(_) | Json::BigInt(_) | Json::Double(_) | Json::Float(_)
        )
    }

    pub(super) fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::BigInt(digits) => out.push_str(digits),
            Json::Double(d) => {
                if d.is_finite() {
                    out.push_str(&java_double_to_string(*d))
                } else {
                    write_json_str(out, &java_double_to_string(*d))
                }
            }
            Json::Float(f) => {
                if f.is_finite() {
                    out.push_str(&java_float_to_string(*f))
                } else {
                    write_json_str(out, &java_double_to_string(*f as f64))
                }
            }
            Json::Str(s) => write_json_str(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    pub(super) fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// The same value with every object's keys sorted, as Confluent's normalization prints
    /// property values and defaults.
    pub(super) fn sorted(&self) -> Json {
        match self {
            Json::Arr(items) => Json::Arr(items.iter().map(Json::sorted).collect()),
            Json::Obj(entries) => {
                let mut entries: Vec<(String, Json)> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.sorted()))
                    .collect();
                entries.sort_by(|a, b| java_str_cmp(&a.0, &b.0));
                Json::Obj(entries)
            }
            other => other.clone(),
        }
    }
}

/// Java's `String.compareTo`: UTF-16 code unit order.
pub(super) fn java_str_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A JSON string as Jackson writes it: `"` and `\` escaped, control characters as the short
/// escapes or `\u00XX`, everything else (non-ASCII included) as is.
pub(super) fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Digits and decimal exponent of the shortest representation that round-trips:
/// `(digits, e)` means `0.d1d2d3... * 10^(e+1)`, i.e. the value is `d1.d2d3... * 10^e`.
fn shortest_digits(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Java's `Double.toString`/`Float.toString` layout for a finite, non-zero magnitude given as
/// shortest digits and exponent.
fn java_layout(negative: bool, digits: &str, exp: i32, abs: f64) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (1e-3..1e7).contains(&abs) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}

fn java_double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", d.abs()));
    java_layout(d < 0.0, &digits, exp, d.abs())
}

fn java_float_to_string(f: f32) -> String {
    if !f.is_finite() {
        return java_double_to_string(f as f64);
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", f.abs()));
    java_layout(f < 0.0, &digits, exp, f.abs() as f64)
}

/// A JSON reader with Jackson's defaults as Avro configures them: comments allowed, a
/// duplicate key replaces the earlier value in its place, integers kept apart from floats.
struct JsonReader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> JsonReader<'a> {
    fn error<T>(&self, what: &str) -> Result<T, String> {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Err(format!(
            "com.fasterxml.jackson.core.JsonParseException: {what} at line: {line}, column: {column}"
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => match self.text.as_bytes().get(self.pos + 1) {
                    Some(b'/') => match self.text[self.pos..].find('\n') {
                        Some(n) => self.pos += n + 1,
                        None => self.pos = self.text.len(),
                    },
                    Some(b'*') => match self.text[self.pos + 2..].find("*/") {
                        Some(n) => self.pos += n + 4,
                        None => return self.error("Unexpected end-of-input in a comment"),
                    },
                    _ => return self.error("Unexpected character ('/')"),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 512 {
            return self.error("Document nesting depth exceeds the maximum allowed");
        }
        self.skip_ws()?;
        match self.peek() {
            None => self.error("Unexpected end-of-input"),
            Some(b'{') => {
                self.pos += 1;
                let mut entries: Vec<(String, Json)> = Vec::new();
                self.skip_ws()?;
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Obj(entries));
                }
                loop {
                    self.skip_ws()?;
                    if self.peek() != Some(b'"') {
                        return self.error(
                            "Unexpected character, was expecting double-quote to start field name",
                        );
                    }
                    let key = self.string()?;
                    self.skip_ws()?;
                    if self.peek() != Some(b':') {
                        return self.error("Unexpected character, was expecting a colon to separate field name and value");
                    }
                    self.pos += 1;
                    let value = self.value(depth + 1)?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Obj(entries));
                        }
                        _ => return self.error(
                            "Unexpected character, was expecting comma to separate Object entries",
                        ),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws()?;
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return self.error(
                            "Unexpected character, was expecting comma to separate Array entries",
                        ),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.error("Unexpected character"),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            self.error("Unrecognized token")
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = self.pos;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == int_start {
            self.pos = i;
            return self.error("Unexpected character, expected digit after minus sign");
        }
        if bytes[int_start] == b'0' && i - int_start > 1 {
            self.pos = i;
            return self.error("Invalid numeric value: Leading zeroes not allowed");
        }
        let mut floating = false;
        if bytes.get(i) == Some(&b'.') {
            floating = true;
            i += 1;
            let frac_start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac_start {
                self.pos = i;
                return self
                    .error("Unexpected character, decimal point must be followed by a digit");
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            floating = true;
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp_start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp_start {
                self.pos = i;
                return self
                    .error("Unexpected character, exponent indicator not followed by a digit");
            }
        }
        self.pos = i;
        let text = &self.text[start..i];
        if floating {
            match text.parse::<f64>() {
                Ok(d) => Ok(Json::Double(d)),
                Err(_) => self.error("Invalid numeric value"),
            }
        } else {
            match text.parse::<i64>() {
                Ok(n) => Ok(Json::Int(n)),
                Err(_) => Ok(Json::BigInt(text.to_string())),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        // at the opening quote
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return self.error("Unexpected end-of-input in a String value");
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return self.error("Unexpected end-of-input in character escape sequence");
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            if (0xD800..0xDC00).contains(&first)
                                && self.text[self.pos..].starts_with("\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let second = self.hex4()?;
                                if (0xDC00..0xE000).contains(&second) {
                                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                                } else {
                                    self.pos = save;
                                    out.push('\u{FFFD}');
                                }
                            } else {
                                out.push(char::from_u32(first).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => return self.error("Unrecognized character escape"),
                    }
                }
                c if (c as u32) < 0x20 => {
                    return self.error("Illegal unquoted character: has to be escaped using backslash to be included in string value")
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(hex) = self.text.get(self.pos..self.pos + 4) else {
            return self.error("Unexpected end-of-input in character escape sequence");
        };
        match u32::from_str_radix(hex, 16) {
            Ok(v) if hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                self.pos += 4;
                Ok(v)
            }
            _ => self.error("Unexpected character in character escape sequence"),
        }
    }
}

/// Reads one JSON document. `Ok(None)` for an input with no value at all.
pub(super) fn read_json(text: &str) -> Result<Option<Json>, String> {
    let mut reader = JsonReader { text, pos: 0 };
    reader.skip_ws()?;
    if reader.peek().is_none() {
        return Ok(None);
    }
    let value = reader.value(0)?;
    let dangling = text[reader.pos..].trim();
    if !dangling.is_empty() {
        return Err(format!("dangling content after end of schema: {dangling}"));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_number_layout() {
        assert_eq!(java_double_to_string(1.0), "1.0");
        assert_eq!(java_double_to_string(1e7), "1.0E7");
        assert_eq!(java_double_to_string(9999999.0), "9999999.0");
        assert_eq!(java_double_to_string(0.00123), "0.00123");
        assert_eq!(java_double_to_string(-1.25e-7), "-1.25E-7");
        assert_eq!(java_double_to_string(100.0), "100.0");
        assert_eq!(java_float_to_string(0.1), "0.1");
        assert_eq!(java_float_to_string(1.0e10), "1.0E10");
    }
}
