//! Printing: Confluent's `ProtobufSchemaUtils` text of a parsed file, plain or normalized.

use super::model::{
    resolve_in, Enum, Extend, Field, Message, Opt, OptValue, ProtoFile, RVal, Reserved, Service,
    Types, MAX_TAG_VALUE,
};

pub(super) struct Printer<'a> {
    /// Normalizing: resolves names through `types`.
    pub(super) types: Option<&'a Types>,
    pub(super) scope: Vec<String>,
}

fn append_indented(out: &mut String, value: &str) {
    let value = value.strip_suffix('\n').unwrap_or(value);
    for line in value.split('\n') {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out
}

const SCALARS: [&str; 15] = [
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
];

pub(super) fn is_scalar(ty: &str) -> bool {
    SCALARS.contains(&ty)
}

/// `map<K, V>`'s key and value.
pub(super) fn map_parts(ty: &str) -> Option<(String, String)> {
    let inner = ty.strip_prefix("map<")?.strip_suffix('>')?;
    let (k, v) = inner.split_once(',')?;
    Some((k.trim().to_owned(), v.trim().to_owned()))
}

impl Printer<'_> {
    fn normalize(&self) -> bool {
        self.types.is_some()
    }

    fn resolve_type(&self, name: &str) -> Option<String> {
        let types = self.types?;
        resolve_in(
            &types.package,
            &self.scope,
            name,
            |n| types.types.contains_key(n),
            !types.types.is_empty(),
        )
    }

    fn resolve_extension(&self, name: &str) -> Option<String> {
        let types = self.types?;
        resolve_in(
            &types.package,
            &self.scope,
            name,
            |n| types.extend_fields.contains_key(n),
            !types.types.is_empty(),
        )
    }

    pub(super) fn file(&mut self, f: &ProtoFile) -> String {
        let mut sb = String::new();
        if let Some(syntax) = &f.syntax {
            if !self.normalize() || syntax == "proto3" {
                sb.push_str(&format!("syntax = \"{syntax}\";\n"));
            }
        }
        if let Some(p) = &f.package {
            sb.push_str(&format!("package {p};\n"));
        }
        if !f.imports.is_empty() || !f.public_imports.is_empty() {
            sb.push('\n');
            let sorted = |v: &Vec<String>| -> Vec<String> {
                let mut v = v.clone();
                v.sort();
                v.dedup();
                v
            };
            let (imports, public) = if self.normalize() {
                (sorted(&f.imports), sorted(&f.public_imports))
            } else {
                (f.imports.clone(), f.public_imports.clone())
            };
            for i in imports {
                sb.push_str(&format!("import \"{i}\";\n"));
            }
            for i in public {
                sb.push_str(&format!("import public \"{i}\";\n"));
            }
        }
        let options = self.filter_options(&f.options);
        if !options.is_empty() {
            sb.push('\n');
            for o in &options {
                sb.push_str(&self.option_statement(o));
            }
        }
        let messages: Vec<&Message> = f
            .messages
            .iter()
            .filter(|m| !(self.normalize() && m.map_entry))
            .collect();
        if !messages.is_empty() || !f.enums.is_empty() {
            sb.push('\n');
            for m in messages {
                self.scope.push(m.name.clone());
                sb.push_str(&self.message(m));
                self.scope.pop();
            }
            for e in &f.enums {
                self.scope.push(e.name.clone());
                sb.push_str(&self.enumeration(e));
                self.scope.pop();
            }
        }
        if !f.extends.is_empty() {
            sb.push('\n');
            for e in self.extends(&f.extends) {
                sb.push_str(&self.extend(&e));
            }
        }
        if !f.services.is_empty() {
            sb.push('\n');
            for s in &f.services {
                sb.push_str(&self.service(s));
            }
        }
        sb
    }

    pub(super) fn extends(&self, extends: &[Extend]) -> Vec<Extend> {
        if !self.normalize() {
            return extends.to_vec();
        }
        let mut out: Vec<Extend> = Vec::new();
        for e in extends {
            let name = self
                .resolve_type(&e.name)
                .map(|n| format!(".{n}"))
                .unwrap_or_else(|| e.name.clone());
            match out.iter_mut().find(|x| x.name == name) {
                Some(x) => x.fields.extend(e.fields.iter().cloned()),
                None => out.push(Extend {
                    name,
                    fields: e.fields.clone(),
                }),
            }
        }
        out
    }

    fn service(&self, s: &Service) -> String {
        let mut sb = format!("service {} {{", s.name);
        let options = self.filter_options(&s.options);
        if !options.is_empty() {
            sb.push('\n');
            for o in &options {
                append_indented(&mut sb, &self.option_statement(o));
            }
        }
        if !s.rpcs.is_empty() {
            sb.push('\n');
            for r in &s.rpcs {
                let mut line = format!("rpc {} (", r.name);
                if r.request_streaming {
                    line.push_str("stream ");
                }
                line.push_str(&self.qualified(&r.request));
                line.push_str(") returns (");
                if r.response_streaming {
                    line.push_str("stream ");
                }
                line.push_str(&self.qualified(&r.response));
                line.push(')');
                let options = self.filter_options(&r.options);
                if !options.is_empty() {
                    line.push_str(" {\n");
                    for o in &options {
                        append_indented(&mut line, &self.option_statement(o));
                    }
                    line.push('}');
                }
                line.push_str(";\n");
                append_indented(&mut sb, &line);
            }
        }
        sb.push_str("}\n");
        sb
    }

    fn qualified(&self, name: &str) -> String {
        match self.resolve_type(name) {
            Some(n) => format!(".{n}"),
            None => name.to_owned(),
        }
    }

    fn reserveds(&self, reserveds: &[Reserved], keyword: &str) -> Vec<String> {
        let mut list: Vec<Reserved> = reserveds.to_vec();
        if self.normalize() {
            list = list
                .into_iter()
                .flat_map(|r| r.values.into_iter().map(|v| Reserved { values: vec![v] }))
                .collect();
            let key = |r: &Reserved| match &r.values[0] {
                RVal::Num(n) | RVal::Range(n, _) => (*n, r.values[0].clone()),
                RVal::Name(_) => (i32::MAX, r.values[0].clone()),
            };
            list.sort_by(|a, b| {
                let (ka, va) = key(a);
                let (kb, vb) = key(b);
                ka.cmp(&kb)
                    .then_with(|| rval_text(&va, false).cmp(&rval_text(&vb, false)))
            });
        }
        list.iter()
            .map(|r| {
                let values: Vec<String> = r
                    .values
                    .iter()
                    .map(|v| rval_text(v, self.normalize()))
                    .collect();
                format!("{keyword} {};\n", values.join(", "))
            })
            .collect()
    }

    pub(super) fn enumeration(&self, e: &Enum) -> String {
        let mut sb = format!("enum {} {{", e.name);
        if !e.reserveds.is_empty() {
            sb.push('\n');
            for r in self.reserveds(&e.reserveds, "reserved") {
                append_indented(&mut sb, &r);
            }
        }
        if e.reserveds.is_empty() && (!e.options.is_empty() || !e.constants.is_empty()) {
            sb.push('\n');
        }
        for o in &self.filter_options(&e.options) {
            append_indented(&mut sb, &self.option_statement(o));
        }
        let mut constants = e.constants.clone();
        if self.normalize() {
            constants.sort_by(|a, b| a.tag.cmp(&b.tag).then_with(|| a.name.cmp(&b.name)));
        }
        for c in &constants {
            let mut line = format!("{} = {}", c.name, c.tag);
            let options = self.filter_options(&c.options);
            if !options.is_empty() {
                line.push(' ');
                line.push_str(&self.bracket_options(&options));
            }
            line.push_str(";\n");
            append_indented(&mut sb, &line);
        }
        sb.push_str("}\n");
        sb
    }

    pub(super) fn message(&mut self, m: &Message) -> String {
        let mut sb = format!("message {} {{", m.name);
        if !m.reserveds.is_empty() {
            sb.push('\n');
            for r in self.reserveds(&m.reserveds, "reserved") {
                append_indented(&mut sb, &r);
            }
        }
        let options = self.filter_options(&m.options);
        if !options.is_empty() {
            sb.push('\n');
            for o in &options {
                append_indented(&mut sb, &self.option_statement(o));
            }
        }
        if !m.fields.is_empty() {
            sb.push('\n');
            let mut fields = m.fields.clone();
            if self.normalize() {
                fields.sort_by_key(|f| f.tag);
            }
            for f in &fields {
                let text = self.field(f);
                append_indented(&mut sb, &text);
            }
        }
        if !m.oneofs.is_empty() {
            sb.push('\n');
            let mut oneofs = m.oneofs.clone();
            if self.normalize() {
                oneofs.retain(|o| !o.fields.is_empty());
                for o in &mut oneofs {
                    o.fields.sort_by_key(|f| f.tag);
                }
                oneofs.sort_by_key(|o| o.fields[0].tag);
            }
            for o in &oneofs {
                let mut text = format!("oneof {} {{", o.name);
                let options = self.filter_options(&o.options);
                if !options.is_empty() {
                    text.push('\n');
                    for op in &options {
                        append_indented(&mut text, &self.option_statement(op));
                    }
                }
                if !o.fields.is_empty() {
                    text.push('\n');
                    for f in &o.fields {
                        let ft = self.field(f);
                        append_indented(&mut text, &ft);
                    }
                }
                text.push_str("}\n");
                append_indented(&mut sb, &text);
            }
        }
        if !m.groups.is_empty() {
            sb.push('\n');
            for g in &m.groups {
                let mut text = String::new();
                if let Some(l) = g.label {
                    text.push_str(l.word());
                    text.push(' ');
                }
                text.push_str(&format!("group {} = {} {{", g.name, g.tag));
                if !g.fields.is_empty() {
                    text.push('\n');
                    let mut fields = g.fields.clone();
                    if self.normalize() {
                        fields.sort_by_key(|f| f.tag);
                    }
                    for f in &fields {
                        let ft = self.field(f);
                        append_indented(&mut text, &ft);
                    }
                }
                text.push_str("}\n");
                append_indented(&mut sb, &text);
            }
        }
        if !m.extensions.is_empty() {
            sb.push('\n');
            for r in self.reserveds(&m.extensions, "extensions") {
                append_indented(&mut sb, &r);
            }
        }
        if !m.extends.is_empty() {
            sb.push('\n');
            for e in self.extends(&m.extends) {
                let text = self.extend(&e);
                append_indented(&mut sb, &text);
            }
        }
        let nested: Vec<&Message> = m
            .messages
            .iter()
            .filter(|n| !(self.normalize() && n.map_entry))
            .collect();
        if !nested.is_empty() || !m.enums.is_empty() {
            sb.push('\n');
            for n in nested {
                self.scope.push(n.name.clone());
                let text = self.message(n);
                self.scope.pop();
                append_indented(&mut sb, &text);
            }
            for e in &m.enums {
                self.scope.push(e.name.clone());
                let text = self.enumeration(e);
                self.scope.pop();
                append_indented(&mut sb, &text);
            }
        }
        sb.push_str("}\n");
        sb
    }

    pub(super) fn extend(&self, e: &Extend) -> String {
        let mut sb = format!("extend {} {{", e.name);
        if !e.fields.is_empty() {
            sb.push('\n');
            let mut fields = e.fields.clone();
            if self.normalize() {
                fields.sort_by_key(|f| f.tag);
            }
            for f in &fields {
                append_indented(&mut sb, &self.field(f));
            }
        }
        sb.push_str("}\n");
        sb
    }

    pub(super) fn field(&self, f: &Field) -> String {
        let mut label = f.label;
        let mut ty = f.ty.clone();
        if self.normalize() {
            let mut map = map_parts(&ty);
            if !is_scalar(&ty) && map.is_none() {
                if let Some(resolved) = self.resolve_type(&ty) {
                    let info = self.types.and_then(|t| t.types.get(&resolved));
                    match info.and_then(|i| i.map_type.clone()) {
                        Some(m) => {
                            map = map_parts(&m);
                            ty = m;
                        }
                        None => ty = format!(".{resolved}"),
                    }
                }
            }
            if let Some((k, v)) = map {
                let v = match self.resolve_type(&v) {
                    Some(r) => format!(".{r}"),
                    None => v,
                };
                ty = format!("map<{k}, {v}>");
                label = None;
            }
        }
        let mut sb = String::new();
        if let Some(l) = label {
            sb.push_str(l.word());
            sb.push(' ');
        }
        sb.push_str(&format!("{} {} = {}", ty, f.name, f.tag));
        let mut options = f.options.clone();
        if let Some(d) = &f.default {
            let value = match ty.as_str() {
                "string" => OptValue::Str(d.clone()),
                "bool" => OptValue::Ident(d.clone()),
                t if is_scalar(t) => OptValue::Num(d.clone()),
                _ => OptValue::Ident(d.clone()),
            };
            options.push(Opt {
                name: "default".to_owned(),
                parenthesized: false,
                rest: String::new(),
                value,
            });
        }
        if let Some(j) = &f.json_name {
            options.push(Opt {
                name: "json_name".to_owned(),
                parenthesized: false,
                rest: String::new(),
                value: OptValue::Str(j.clone()),
            });
        }
        let options = self.filter_options(&options);
        if !options.is_empty() {
            sb.push(' ');
            sb.push_str(&self.bracket_options(&options));
        }
        sb.push_str(";\n");
        sb
    }

    fn filter_options(&self, options: &[Opt]) -> Vec<Opt> {
        if !self.normalize() {
            return options.to_vec();
        }
        let mut out: Vec<Opt> = options
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if o.parenthesized {
                    if let Some(r) = self.resolve_extension(&o.name) {
                        o.name = r;
                    }
                }
                o
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn option_text(&self, o: &Opt) -> String {
        let mut sb = if o.parenthesized {
            format!("({})", o.name)
        } else {
            o.name.clone()
        };
        if !o.rest.is_empty() {
            sb.push('.');
            sb.push_str(&o.rest);
        }
        match &o.value {
            OptValue::Map(entries) => {
                sb.push_str(" = {\n");
                self.option_map(&mut sb, entries);
                sb.push('}');
            }
            OptValue::List(values) => {
                sb.push_str(" = ");
                sb.push_str(&self.bracket_values(values));
            }
            v => {
                sb.push_str(" = ");
                sb.push_str(&self.value_text(v));
            }
        }
        sb
    }

    fn option_statement(&self, o: &Opt) -> String {
        format!("option {};\n", self.option_text(o))
    }

    fn bracket_options(&self, options: &[Opt]) -> String {
        let texts: Vec<String> = options.iter().map(|o| self.option_text(o)).collect();
        bracketed(&texts)
    }

    fn bracket_values(&self, values: &[OptValue]) -> String {
        let texts: Vec<String> = values.iter().map(|v| self.value_text(v)).collect();
        bracketed(&texts)
    }

    fn value_text(&self, v: &OptValue) -> String {
        match v {
            OptValue::Str(s) => format!("\"{}\"", escape(s)),
            OptValue::Ident(s) => s.clone(),
            OptValue::Num(n) => {
                if self.normalize() {
                    normalize_number(n)
                } else {
                    n.clone()
                }
            }
            OptValue::Map(entries) => {
                let mut sb = String::from("{\n");
                self.option_map(&mut sb, entries);
                sb.push('}');
                sb
            }
            OptValue::List(list) => {
                if self.normalize() && list.len() == 1 {
                    return self.value_text(&list[0]);
                }
                let mut sb = String::from("[\n");
                for (i, item) in list.iter().enumerate() {
                    let end = if i + 1 < list.len() { "," } else { "" };
                    append_indented(&mut sb, &format!("{}{end}", self.value_text(item)));
                }
                sb.push(']');
                sb
            }
        }
    }

    fn option_map(&self, sb: &mut String, entries: &[(String, OptValue)]) {
        let mut entries: Vec<(String, OptValue)> = entries.to_vec();
        if self.normalize() {
            entries.retain(|(_, v)| !matches!(v, OptValue::List(l) if l.is_empty()));
            for (k, _) in entries.iter_mut() {
                if let Some(inner) = k.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
                    if let Some(r) = self.resolve_extension(inner) {
                        *k = format!("[{r}]");
                    }
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|b, a| a.0 == b.0);
        }
        let last = entries.len().saturating_sub(1);
        for (i, (k, v)) in entries.iter().enumerate() {
            let end = if i != last { "," } else { "" };
            append_indented(sb, &format!("{k}: {}{end}", self.value_text(v)));
        }
    }
}

fn bracketed(texts: &[String]) -> String {
    if texts.len() == 1 {
        return format!("[{}]", texts[0]);
    }
    let mut sb = String::from("[\n");
    for (i, t) in texts.iter().enumerate() {
        let end = if i + 1 < texts.len() { "," } else { "" };
        append_indented(&mut sb, &format!("{t}{end}"));
    }
    sb.push(']');
    sb
}

fn rval_text(v: &RVal, normalize: bool) -> String {
    match v {
        RVal::Name(n) => format!("\"{n}\""),
        RVal::Num(n) => n.to_string(),
        RVal::Range(a, b) if normalize && a == b => a.to_string(),
        RVal::Range(a, b) => {
            if *b < MAX_TAG_VALUE {
                format!("{a} to {b}")
            } else {
                format!("{a} to max")
            }
        }
    }
}

/// Java's `DecimalFormat` (no grouping, at most three fraction digits) of a number.
fn normalize_number(n: &str) -> String {
    if n.parse::<i128>().is_ok() {
        return n.trim_start_matches('+').to_owned();
    }
    match n.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let s = format!("{v:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "-0".to_owned()
            } else {
                s.to_owned()
            }
        }
        _ => n.to_owned(),
    }
}
