//! Java Avro's `Schema.toString()`: the canonical text Confluent stores.

use std::collections::HashSet;

use super::json::write_json_str;
use super::model::{Field, Kind, Named, Order, Props, Types, S};

pub(super) struct Printer<'a> {
    pub(super) types: &'a Types,
    pub(super) known: HashSet<String>,
    pub(super) out: String,
}

impl Printer<'_> {
    pub(super) fn schema(&mut self, s: &S, space: Option<&str>) {
        match s {
            S::Prim(p, props) => {
                if props.is_empty() {
                    write_json_str(&mut self.out, p.name());
                } else {
                    self.out.push_str("{\"type\":");
                    write_json_str(&mut self.out, p.name());
                    self.props(props);
                    self.out.push('}');
                }
            }
            S::Array(items, props) => {
                self.out.push_str("{\"type\":\"array\",\"items\":");
                self.schema(items, space);
                self.props(props);
                self.out.push('}');
            }
            S::Map(values, props) => {
                self.out.push_str("{\"type\":\"map\",\"values\":");
                self.schema(values, space);
                self.props(props);
                self.out.push('}');
            }
            S::Union(branches) => {
                self.out.push('[');
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.schema(branch, space);
                }
                self.out.push(']');
            }
            S::Ref(full) => {
                let Some(named) = self.types.get(full) else {
                    write_json_str(&mut self.out, full);
                    return;
                };
                if !self.known.insert(full.clone()) {
                    let qualified = named.name.qualified(space);
                    write_json_str(&mut self.out, &qualified);
                    return;
                }
                self.named(named, space);
            }
        }
    }

    fn named(&mut self, named: &Named, space: Option<&str>) {
        let type_name = match &named.kind {
            Kind::Record { error: true, .. } => "error",
            Kind::Record { .. } => "record",
            Kind::Enum { .. } => "enum",
            Kind::Fixed { .. } => "fixed",
        };
        self.out.push_str("{\"type\":");
        write_json_str(&mut self.out, type_name);
        self.out.push_str(",\"name\":");
        write_json_str(&mut self.out, &named.name.name);
        match &named.name.space {
            Some(own) if Some(own.as_str()) != space => {
                self.out.push_str(",\"namespace\":");
                write_json_str(&mut self.out, own);
            }
            None if space.is_some() => self.out.push_str(",\"namespace\":\"\""),
            _ => {}
        }
        if let Some(doc) = &named.doc {
            self.out.push_str(",\"doc\":");
            write_json_str(&mut self.out, doc);
        }
        let own_space = named.name.space.as_deref();
        match &named.kind {
            Kind::Record { fields, .. } => {
                self.out.push_str(",\"fields\":[");
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.field(field, own_space);
                }
                self.out.push(']');
            }
            Kind::Enum { symbols, default } => {
                self.out.push_str(",\"symbols\":[");
                for (i, symbol) in symbols.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    write_json_str(&mut self.out, symbol);
                }
                self.out.push(']');
                if let Some(default) = default {
                    self.out.push_str(",\"default\":");
                    write_json_str(&mut self.out, default);
                }
            }
            Kind::Fixed { size } => {
                self.out.push_str(",\"size\":");
                self.out.push_str(&size.to_string());
            }
        }
        self.props(&named.props);
        if !named.aliases.is_empty() {
            self.out.push_str(",\"aliases\":[");
            for (i, alias) in named.aliases.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                write_json_str(&mut self.out, &alias.qualified(own_space));
            }
            self.out.push(']');
        }
        self.out.push('}');
    }

    pub(super) fn field(&mut self, field: &Field, space: Option<&str>) {
        self.out.push_str("{\"name\":");
        write_json_str(&mut self.out, &field.name);
        self.out.push_str(",\"type\":");
        self.schema(&field.ty, space);
        if let Some(doc) = &field.doc {
            self.out.push_str(",\"doc\":");
            write_json_str(&mut self.out, doc);
        }
        if let Some(default) = &field.default {
            self.out.push_str(",\"default\":");
            default.write(&mut self.out);
        }
        match field.order {
            Order::Ascending => {}
            Order::Descending => self.out.push_str(",\"order\":\"descending\""),
            Order::Ignore => self.out.push_str(",\"order\":\"ignore\""),
        }
        if !field.aliases.is_empty() {
            self.out.push_str(",\"aliases\":[");
            for (i, alias) in field.aliases.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                write_json_str(&mut self.out, alias);
            }
            self.out.push(']');
        }
        self.props(&field.props);
        self.out.push('}');
    }

    fn props(&mut self, props: &Props) {
        for (key, value) in props {
            self.out.push(',');
            write_json_str(&mut self.out, key);
            self.out.push(':');
            value.write(&mut self.out);
        }
    }
}

/// Java's `Schema.toString()` with no names known beforehand (used in messages).
pub(super) fn schema_to_string(types: &Types, s: &S) -> String {
    let mut printer = Printer {
        types,
        known: HashSet::new(),
        out: String::new(),
    };
    printer.schema(s, None);
    printer.out
}

#[cfg(test)]
mod tests {
    use crate::avro::{parse, USER};

    fn canon(text: &str) -> String {
        parse(text, &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .canonical()
    }

    #[test]
    fn primitives_print_bare_unless_they_carry_properties() {
        assert_eq!(canon("\"int\""), "\"int\"");
        assert_eq!(canon(" { \"type\" : \"int\" } "), "\"int\"");
        assert_eq!(
            canon("{\"type\":\"null\",\"doc\":\"dropped\",\"name\":\"x\"}"),
            "\"null\""
        );
        assert_eq!(
            canon("{\"type\":\"string\",\"avro.java.string\":\"String\"}"),
            "{\"type\":\"string\",\"avro.java.string\":\"String\"}"
        );
        assert_eq!(
            canon("{\"logicalType\":\"timestamp-millis\",\"type\":\"long\"}"),
            "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}"
        );
        // An invalid logical type is kept as a property (Java ignores it).
        assert_eq!(
            canon("{\"type\":\"string\",\"logicalType\":\"date\"}"),
            "{\"type\":\"string\",\"logicalType\":\"date\"}"
        );
        assert_eq!(canon("[\"null\", \"string\"]"), "[\"null\",\"string\"]");
        assert_eq!(
            canon("{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"bytes\"},\"x\":1}"),
            "{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"bytes\"},\"x\":1}"
        );
        // Jackson's comments are accepted before the schema; after it they are dangling
        // content, as Java reads what is left raw
        assert_eq!(canon("/* c */ \"long\" "), "\"long\"");
        assert_eq!(
            parse("\"long\" // end", &[]).unwrap_err(),
            "Invalid schema of type AVRO, details: dangling content after end of schema: // end"
        );
    }

    const USER_CANONICAL: &str = concat!(
        r#"{"type":"record","name":"User","namespace":"com.example","doc":"A user","fields":["#,
        r#"{"name":"id","type":"long","doc":"the id"},"#,
        r#"{"name":"name","type":{"type":"string","avro.java.string":"String"},"default":"x","order":"descending","aliases":["fullName"],"tag":"pii"},"#,
        r#"{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2},"default":"\u0000"},"#,
        r#"{"name":"ratio","type":"double","default":1},"#,
        r#"{"name":"kind","type":{"type":"enum","name":"Kind","doc":"k","symbols":["A","B"],"default":"A"}},"#,
        r#"{"name":"other","type":["null","Kind"],"default":null},"#,
        r#"{"name":"hash","type":{"type":"fixed","name":"Hash","namespace":"com.other","size":16}},"#,
        r#"{"name":"hashes","type":{"type":"array","items":"com.other.Hash"},"default":[]},"#,
        r#"{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"order":"ignore"}"#,
        r#"],"custom":{"b":1,"a":[true,null,2.5]},"aliases":["Person","other.Human"]}"#
    );

    #[test]
    fn record_prints_in_avro_order_with_everything_kept() {
        assert_eq!(canon(USER), USER_CANONICAL);
        // the canonical text is a fixed point
        assert_eq!(canon(USER_CANONICAL), USER_CANONICAL);
    }

    #[test]
    fn whitespace_and_key_order_do_not_matter() {
        let a = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":0,"doc":"d"}]}"#;
        let b = "{ \"fields\" : [ { \"doc\" : \"d\", \"default\" : 0,\n \"type\" : \"int\", \"name\" : \"a\" } ],\n\t\"name\" : \"R\", \"type\" : \"record\" }";
        assert_eq!(canon(a), canon(b));
        assert_eq!(
            canon(b),
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","doc":"d","default":0}]}"#
        );
        // a duplicate key keeps its first place and takes the last value, as Jackson does
        assert_eq!(
            canon(r#"{"type":"fixed","size":1,"name":"F","x":1,"y":2,"x":3}"#),
            r#"{"type":"fixed","name":"F","size":1,"x":3,"y":2}"#
        );
    }

    #[test]
    fn namespaces_and_nested_named_types() {
        assert_eq!(
            canon(
                r#"{"type":"record","name":"a.b.Outer","fields":[
                {"name":"in","type":{"type":"record","name":"Inner","fields":[
                    {"name":"e","type":{"type":"enum","name":"x.E","symbols":["S"]}}]}},
                {"name":"again","type":"Inner"},
                {"name":"e2","type":"x.E"},
                {"name":"root","type":{"type":"record","name":"Top","namespace":"","fields":[
                    {"name":"back","type":["null","a.b.Inner"]}]}}]}"#
            ),
            concat!(
                r#"{"type":"record","name":"Outer","namespace":"a.b","fields":["#,
                r#"{"name":"in","type":{"type":"record","name":"Inner","fields":["#,
                r#"{"name":"e","type":{"type":"enum","name":"E","namespace":"x","symbols":["S"]}}]}},"#,
                r#"{"name":"again","type":"Inner"},"#,
                r#"{"name":"e2","type":"x.E"},"#,
                r#"{"name":"root","type":{"type":"record","name":"Top","namespace":"","fields":["#,
                r#"{"name":"back","type":["null","a.b.Inner"]}]}}]}"#
            )
        );
        // a recursive type and the {"type": name} form
        assert_eq!(
            canon(
                r#"{"type":"record","name":"n.Node","fields":[
                {"name":"next","type":["null",{"type":"Node"}],"default":null}]}"#
            ),
            r#"{"type":"record","name":"Node","namespace":"n","fields":[{"name":"next","type":["null","Node"],"default":null}]}"#
        );
    }

    #[test]
    fn referenced_types_print_by_name() {
        let address = r#"{"type":"record","name":"Address","namespace":"com.x",
            "fields":[{"name":"street","type":"string"}]}"#;
        let person = r#"{"type":"record","name":"Person","namespace":"com.x",
            "fields":[{"name":"home","type":"Address"},{"name":"work","type":["null","com.x.Address"]}]}"#;
        let schema = parse(person, &[address]).unwrap();
        assert_eq!(
            schema.canonical(),
            r#"{"type":"record","name":"Person","namespace":"com.x","fields":[{"name":"home","type":"Address"},{"name":"work","type":["null","Address"]}]}"#
        );
        // only the referenced schemas' own types are known names: a type nested in one is
        // printed in full, as Java does
        let outer = r#"{"type":"record","name":"Outer","fields":[
            {"name":"c","type":{"type":"enum","name":"Color","symbols":["RED"]}}]}"#;
        let main = r#"{"type":"record","name":"M","fields":[{"name":"o","type":"Outer"},{"name":"c","type":"Color"}]}"#;
        assert_eq!(
            parse(main, &[outer]).unwrap().canonical(),
            r#"{"type":"record","name":"M","fields":[{"name":"o","type":"Outer"},{"name":"c","type":{"type":"enum","name":"Color","symbols":["RED"]}}]}"#
        );
        // references in dependency order
        let street = r#"{"type":"fixed","name":"com.x.Zip","size":5}"#;
        let address2 =
            r#"{"type":"record","name":"com.x.Address","fields":[{"name":"zip","type":"Zip"}]}"#;
        assert_eq!(
            parse(r#"["null","com.x.Address"]"#, &[street, address2])
                .unwrap()
                .canonical(),
            r#"["null","com.x.Address"]"#
        );
        // a missing reference
        assert_eq!(
            parse(person, &[]).unwrap_err(),
            "Invalid schema of type AVRO, details: Undefined schema: com.x.Address"
        );
    }

    #[test]
    fn numbers_print_as_java_does() {
        let field = |ty: &str, default: &str| {
            let text = format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"f","type":{ty},"default":{default}}}]}}"#
            );
            let c = canon(&text);
            let start = c.find("\"default\":").unwrap() + 10;
            c[start..c.len() - 3].to_string()
        };
        assert_eq!(field("\"double\"", "1.5e10"), "1.5E10");
        assert_eq!(field("\"double\"", "0.0001"), "1.0E-4");
        assert_eq!(field("\"double\"", "0.001"), "0.001");
        assert_eq!(field("\"double\"", "123456789.0"), "1.23456789E8");
        assert_eq!(field("\"double\"", "1234567.0"), "1234567.0");
        assert_eq!(field("\"double\"", "-0.0"), "-0.0");
        assert_eq!(field("\"double\"", "\"2.5\""), "2.5");
        assert_eq!(field("\"float\"", "\"NaN\""), "\"NaN\"");
        assert_eq!(
            field("\"long\"", "9223372036854775807"),
            "9223372036854775807"
        );
        assert_eq!(
            field("\"string\"", "\"tab\\t\\u0001é\""),
            "\"tab\\t\\u0001é\""
        );
        assert_eq!(
            field("{\"type\":\"map\",\"values\":\"int\"}", "{\"b\":1,\"a\":2}"),
            "{\"b\":1,\"a\":2}"
        );
    }
}
