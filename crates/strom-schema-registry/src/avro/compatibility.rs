//! Java Avro's `SchemaCompatibility.ReaderWriterCompatibilityChecker`, with Confluent's
//! messages.

use std::collections::{BTreeSet, HashMap};

use super::model::{tag, Field, Kind, Named, Tag, Types, S};
use super::printer::schema_to_string;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

#[derive(Clone, Debug)]
pub(super) struct Incompatibility {
    problem: Problem,
    message: String,
    /// The location tokens from the root (whose token is empty).
    location: Vec<String>,
}

impl Incompatibility {
    /// The JSON pointer Java gives (`getLocation()`).
    fn path(&self) -> String {
        let tokens: Vec<String> = self
            .location
            .iter()
            .skip(1)
            .map(|t| t.replace('~', "~0").replace('/', "~1"))
            .collect();
        format!("/{}", tokens.join("/"))
    }

    /// Confluent's `Difference.toString()`, its `%s` filled with the reader's and the
    /// writer's word.
    pub(super) fn describe(&self, reader: &str, writer: &str) -> String {
        let path = self.path();
        let message = &self.message;
        let (name, description) = match self.problem {
            Problem::FixedSizeMismatch => (
                "FIXED_SIZE_MISMATCH",
                format!(
                    "The size of FIXED type field at path '{path}' in the {reader} schema does not match with the {writer} schema"
                ),
            ),
            Problem::TypeMismatch => (
                "TYPE_MISMATCH",
                format!(
                    "The type (path '{path}') of a field in the {reader} schema does not match with the {writer} schema"
                ),
            ),
            Problem::NameMismatch => (
                "NAME_MISMATCH",
                format!("The name of the schema has changed (path '{path}')"),
            ),
            Problem::MissingEnumSymbols => (
                "MISSING_ENUM_SYMBOLS",
                format!(
                    "The {reader} schema is missing enum symbols '{message}' at path '{path}' in the {writer} schema"
                ),
            ),
            Problem::MissingUnionBranch => (
                "MISSING_UNION_BRANCH",
                format!(
                    "The {reader} schema is missing a type inside a union field at path '{path}' in the {writer} schema"
                ),
            ),
            Problem::ReaderFieldMissingDefaultValue => (
                "READER_FIELD_MISSING_DEFAULT_VALUE",
                format!(
                    "The field '{message}' at path '{path}' in the {reader} schema has no default value and is missing in the {writer} schema"
                ),
            ),
        };
        format!("{{errorType:'{name}', description:'{description}', additionalInfo:'{message}'}}")
    }
}

pub(super) type Outcome = Result<Vec<Incompatibility>, String>;

pub(super) struct Checker<'a> {
    pub(super) reader: &'a Types,
    pub(super) writer: &'a Types,
    /// Results by (reader, writer) named type pair; `None` while being computed (a recursive
    /// type meets itself: compatible unless proven otherwise). As in Java, a result is
    /// remembered with the locations of its first computation.
    pub(super) memo: HashMap<(String, String), Option<Vec<Incompatibility>>>,
}

impl Checker<'_> {
    pub(super) fn get(&mut self, token: &str, r: &S, w: &S, location: &mut Vec<String>) -> Outcome {
        location.push(token.to_string());
        let result = match (r, w) {
            (S::Ref(rn), S::Ref(wn)) => {
                let key = (rn.clone(), wn.clone());
                match self.memo.get(&key) {
                    Some(None) => Ok(Vec::new()),
                    Some(Some(done)) => Ok(done.clone()),
                    None => {
                        self.memo.insert(key.clone(), None);
                        let result = self.calculate(r, w, location);
                        if let Ok(done) = &result {
                            self.memo.insert(key, Some(done.clone()));
                        }
                        result
                    }
                }
            }
            _ => self.calculate(r, w, location),
        };
        location.pop();
        result
    }

    /// Java's two-argument `getCompatibility`: a fresh location, the same memo.
    fn get_fresh(&mut self, r: &S, w: &S) -> Outcome {
        self.get("", r, w, &mut Vec::new())
    }

    fn incompatible(
        problem: Problem,
        message: String,
        location: &[String],
    ) -> Vec<Incompatibility> {
        vec![Incompatibility {
            problem,
            message,
            location: location.to_vec(),
        }]
    }

    fn type_mismatch(rt: Tag, wt: Tag, location: &[String]) -> Vec<Incompatibility> {
        Self::incompatible(
            Problem::TypeMismatch,
            format!(
                "reader type: {} not compatible with writer type: {}",
                rt.java(),
                wt.java()
            ),
            location,
        )
    }

    fn calculate(&mut self, r: &S, w: &S, location: &mut Vec<String>) -> Outcome {
        let rt = tag(self.reader, r);
        let wt = tag(self.writer, w);
        let mut result = Vec::new();
        if rt == wt {
            match (r, w) {
                (S::Array(ri, _), S::Array(wi, _)) => {
                    result.extend(self.get("items", ri, wi, location)?);
                }
                (S::Map(rv, _), S::Map(wv, _)) => {
                    result.extend(self.get("values", rv, wv, location)?);
                }
                (S::Union(_), S::Union(wbs)) => {
                    for (i, wb) in wbs.iter().enumerate() {
                        location.push(i.to_string());
                        if !self.get_fresh(r, wb)?.is_empty() {
                            result.extend(Self::incompatible(
                                Problem::MissingUnionBranch,
                                format!(
                                    "reader union lacking writer type: {}",
                                    tag(self.writer, wb).java()
                                ),
                                location,
                            ));
                        }
                        location.pop();
                    }
                }
                (S::Ref(rn), S::Ref(wn)) => {
                    let (Some(rd), Some(wd)) = (self.reader.get(rn), self.writer.get(wn)) else {
                        return Ok(result);
                    };
                    result.extend(self.check_names(rd, wd, location));
                    match (&rd.kind, &wd.kind) {
                        (Kind::Fixed { size: rs }, Kind::Fixed { size: ws }) => {
                            location.push("size".into());
                            if rs != ws {
                                result.extend(Self::incompatible(
                                    Problem::FixedSizeMismatch,
                                    format!("expected: {ws}, found: {rs}"),
                                    location,
                                ));
                            }
                            location.pop();
                        }
                        (
                            Kind::Enum {
                                symbols: rs,
                                default,
                            },
                            Kind::Enum { symbols: ws, .. },
                        ) => {
                            location.push("symbols".into());
                            let missing: BTreeSet<&String> =
                                ws.iter().filter(|s| !rs.contains(s)).collect();
                            let has_default = default.as_ref().is_some_and(|d| rs.contains(d));
                            if !missing.is_empty() && !has_default {
                                let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                                result.extend(Self::incompatible(
                                    Problem::MissingEnumSymbols,
                                    format!("[{}]", list.join(", ")),
                                    location,
                                ));
                            }
                            location.pop();
                        }
                        (Kind::Record { fields: rfs, .. }, Kind::Record { fields: wfs, .. }) => {
                            result.extend(self.check_fields(rfs, wfs, w, location)?);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            return Ok(result);
        }

        if let S::Union(wbs) = w {
            for (i, wb) in wbs.iter().enumerate() {
                result.extend(self.get(&i.to_string(), r, wb, location)?);
            }
            return Ok(result);
        }
        let promotable = match rt {
            Tag::Long => wt == Tag::Int,
            Tag::Float => matches!(wt, Tag::Int | Tag::Long),
            Tag::Double => matches!(wt, Tag::Int | Tag::Long | Tag::Float),
            Tag::Bytes => wt == Tag::String,
            Tag::String => wt == Tag::Bytes,
            _ => false,
        };
        if promotable {
            return Ok(result);
        }
        if let S::Union(rbs) = r {
            for rb in rbs {
                if self.get_fresh(rb, w)?.is_empty() {
                    return Ok(result);
                }
            }
            result.extend(Self::incompatible(
                Problem::MissingUnionBranch,
                format!("reader union lacking writer type: {}", wt.java()),
                location,
            ));
            return Ok(result);
        }
        result.extend(Self::type_mismatch(rt, wt, location));
        Ok(result)
    }

    fn check_names(
        &self,
        r: &Named,
        w: &Named,
        location: &mut Vec<String>,
    ) -> Vec<Incompatibility> {
        location.push("name".into());
        let writer_full = w.name.full();
        let result = if r.name.name == w.name.name || r.java_aliases().contains(&writer_full) {
            Vec::new()
        } else {
            Self::incompatible(
                Problem::NameMismatch,
                format!("expected: {writer_full}"),
                location,
            )
        };
        location.pop();
        result
    }

    fn check_fields(
        &mut self,
        readers: &[Field],
        writers: &[Field],
        writer_schema: &S,
        location: &mut Vec<String>,
    ) -> Outcome {
        let mut result = Vec::new();
        location.push("fields".into());
        for (pos, rf) in readers.iter().enumerate() {
            location.push(pos.to_string());
            let mut matches: Vec<&Field> = Vec::new();
            if let Some(direct) = writers.iter().find(|f| f.name == rf.name) {
                matches.push(direct);
            }
            for alias in &rf.aliases {
                if let Some(aliased) = writers.iter().find(|f| &f.name == alias) {
                    matches.push(aliased);
                }
            }
            match matches.as_slice() {
                [] => {
                    if rf.default.is_none() {
                        let enum_default = match &rf.ty {
                            S::Ref(full) => matches!(
                                self.reader.get(full).map(|n| &n.kind),
                                Some(Kind::Enum {
                                    default: Some(_),
                                    ..
                                })
                            ),
                            _ => false,
                        };
                        if enum_default {
                            // Java compares the enum with the whole writer record here.
                            result.extend(self.get("type", &rf.ty, writer_schema, location)?);
                        } else {
                            result.extend(Self::incompatible(
                                Problem::ReaderFieldMissingDefaultValue,
                                rf.name.clone(),
                                location,
                            ));
                        }
                    }
                }
                [wf] => {
                    result.extend(self.get("type", &rf.ty, &wf.ty, location)?);
                }
                _ => {
                    return Err(format!(
                        "Reader record field {} type:{} pos:{} matches multiple fields in writer record schema {}",
                        rf.name,
                        tag(self.reader, &rf.ty).java(),
                        pos,
                        schema_to_string(self.writer, writer_schema)
                    ));
                }
            }
            location.pop();
        }
        location.pop();
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use crate::avro::parse;

    fn record(fields: &str) -> String {
        format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#)
    }

    /// Errors of `new` reading data written with `old` (BACKWARD), and of `old` reading `new`
    /// (FORWARD), both worded as `compatibility_errors` words them.
    fn both(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
        let old = parse(old, &[]).unwrap_or_else(|e| panic!("{e}"));
        let new = parse(new, &[]).unwrap_or_else(|e| panic!("{e}"));
        (
            new.compatibility_errors(&old),
            old.compatibility_errors(&new),
        )
    }

    fn missing_default(field: &str, path: &str) -> String {
        format!(
            "{{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field '{field}' at path '{path}' in the new schema has no default value and is missing in the old schema', additionalInfo:'{field}'}}"
        )
    }

    fn type_mismatch(path: &str, reader: &str, writer: &str) -> String {
        format!(
            "{{errorType:'TYPE_MISMATCH', description:'The type (path '{path}') of a field in the new schema does not match with the old schema', additionalInfo:'reader type: {reader} not compatible with writer type: {writer}'}}"
        )
    }

    fn missing_symbols(symbols: &str, path: &str) -> String {
        format!(
            "{{errorType:'MISSING_ENUM_SYMBOLS', description:'The new schema is missing enum symbols '{symbols}' at path '{path}' in the old schema', additionalInfo:'{symbols}'}}"
        )
    }

    fn missing_branch(path: &str, writer: &str) -> String {
        format!(
            "{{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type inside a union field at path '{path}' in the old schema', additionalInfo:'reader union lacking writer type: {writer}'}}"
        )
    }

    fn name_mismatch(path: &str, expected: &str) -> String {
        format!(
            "{{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path '{path}')', additionalInfo:'expected: {expected}'}}"
        )
    }

    fn fixed_size(path: &str, expected: i32, found: i32) -> String {
        format!(
            "{{errorType:'FIXED_SIZE_MISMATCH', description:'The size of FIXED type field at path '{path}' in the new schema does not match with the old schema', additionalInfo:'expected: {expected}, found: {found}'}}"
        )
    }

    const NONE: Vec<String> = Vec::new();

    /// What changes, the old schema, the new one, the errors of new reading old (BACKWARD)
    /// and of old reading new (FORWARD).
    type Evolution = (&'static str, String, String, Vec<String>, Vec<String>);

    #[test]
    fn evolution_table() {
        let a = r#"{"name":"a","type":"int"}"#;
        let enum_abc = |symbols: &str, default: &str| {
            record(&format!(
                r#"{{"name":"e","type":{{"type":"enum","name":"E","symbols":{symbols}{default}}}}}"#
            ))
        };
        let fixed = |size: i32| {
            record(&format!(
                r#"{{"name":"h","type":{{"type":"fixed","name":"F","size":{size}}}}}"#
            ))
        };
        let one = |ty: &str| record(&format!(r#"{{"name":"a","type":{ty}}}"#));
        // (what, old, new, errors of new reading old, errors of old reading new)
        let table: Vec<Evolution> = vec![
            (
                "add field without default",
                record(a),
                record(&format!(r#"{a},{{"name":"b","type":"string"}}"#)),
                vec![missing_default("b", "/fields/1")],
                NONE,
            ),
            (
                "add field with default",
                record(a),
                record(&format!(r#"{a},{{"name":"b","type":"string","default":""}}"#)),
                NONE,
                NONE,
            ),
            (
                "remove field without default",
                record(&format!(r#"{a},{{"name":"b","type":"string"}}"#)),
                record(a),
                NONE,
                vec![missing_default("b", "/fields/1")],
            ),
            (
                "remove field with default",
                record(&format!(r#"{a},{{"name":"b","type":"string","default":"x"}}"#)),
                record(a),
                NONE,
                NONE,
            ),
            (
                "int to long",
                one("\"int\""),
                one("\"long\""),
                NONE,
                vec![type_mismatch("/fields/0/type", "INT", "LONG")],
            ),
            (
                "long to float to double",
                one("\"long\""),
                one("\"double\""),
                NONE,
                vec![type_mismatch("/fields/0/type", "LONG", "DOUBLE")],
            ),
            ("string to bytes", one("\"string\""), one("\"bytes\""), NONE, NONE),
            (
                "int to string",
                one("\"int\""),
                one("\"string\""),
                vec![type_mismatch("/fields/0/type", "STRING", "INT")],
                vec![type_mismatch("/fields/0/type", "INT", "STRING")],
            ),
            (
                "enum symbol added",
                enum_abc(r#"["A","B"]"#, ""),
                enum_abc(r#"["A","B","C"]"#, ""),
                NONE,
                vec![missing_symbols("[C]", "/fields/0/type/symbols")],
            ),
            (
                "enum symbols removed",
                enum_abc(r#"["A","B","C","D"]"#, ""),
                enum_abc(r#"["A","B"]"#, ""),
                vec![missing_symbols("[C, D]", "/fields/0/type/symbols")],
                NONE,
            ),
            (
                "enum symbol removed, reader has a default",
                enum_abc(r#"["A","B","C"]"#, r#","default":"A""#),
                enum_abc(r#"["A","B"]"#, r#","default":"A""#),
                NONE,
                NONE,
            ),
            (
                "enum symbol added, old reader has a default",
                enum_abc(r#"["A","B"]"#, r#","default":"A""#),
                enum_abc(r#"["A","B","C"]"#, r#","default":"A""#),
                NONE,
                NONE,
            ),
            (
                "record renamed without alias",
                record(a),
                r#"{"type":"record","name":"R2","fields":[{"name":"a","type":"int"}]}"#.into(),
                vec![name_mismatch("/name", "R")],
                vec![name_mismatch("/name", "R2")],
            ),
            (
                "record renamed with alias",
                record(a),
                r#"{"type":"record","name":"R2","aliases":["R"],"fields":[{"name":"a","type":"int"}]}"#.into(),
                NONE,
                vec![name_mismatch("/name", "R2")],
            ),
            (
                "record moved to another namespace",
                r#"{"type":"record","name":"x.R","fields":[{"name":"a","type":"int"}]}"#.into(),
                r#"{"type":"record","name":"y.R","fields":[{"name":"a","type":"int"}]}"#.into(),
                NONE,
                NONE,
            ),
            (
                "field renamed with alias",
                record(a),
                record(r#"{"name":"b","type":"int","aliases":["a"]}"#),
                NONE,
                vec![missing_default("a", "/fields/0")],
            ),
            (
                "field renamed without alias",
                record(a),
                record(r#"{"name":"b","type":"int"}"#),
                vec![missing_default("b", "/fields/0")],
                vec![missing_default("a", "/fields/0")],
            ),
            (
                "union widened",
                one("\"int\""),
                one(r#"["int","string"]"#),
                NONE,
                vec![type_mismatch("/fields/0/type/1", "INT", "STRING")],
            ),
            (
                "union narrowed",
                one(r#"["null","int","string"]"#),
                one(r#"["null","int"]"#),
                vec![missing_branch("/fields/0/type/2", "STRING")],
                NONE,
            ),
            (
                "union branch promoted",
                one(r#"["null","int"]"#),
                one(r#"["null","long"]"#),
                NONE,
                vec![missing_branch("/fields/0/type/1", "LONG")],
            ),
            (
                "made optional",
                one("\"string\""),
                one(r#"["null","string"]"#),
                NONE,
                vec![type_mismatch("/fields/0/type/0", "STRING", "NULL")],
            ),
            (
                "fixed size changed",
                fixed(16),
                fixed(8),
                vec![fixed_size("/fields/0/type/size", 16, 8)],
                vec![fixed_size("/fields/0/type/size", 8, 16)],
            ),
            (
                "array items promoted",
                one(r#"{"type":"array","items":"int"}"#),
                one(r#"{"type":"array","items":"long"}"#),
                NONE,
                vec![type_mismatch("/fields/0/type/items", "INT", "LONG")],
            ),
            (
                "map values changed",
                one(r#"{"type":"map","values":"int"}"#),
                one(r#"{"type":"map","values":"boolean"}"#),
                vec![type_mismatch("/fields/0/type/values", "BOOLEAN", "INT")],
                vec![type_mismatch("/fields/0/type/values", "INT", "BOOLEAN")],
            ),
        ];
        for (what, old, new, backward, forward) in table {
            let (b, f) = both(&old, &new);
            assert_eq!(b, backward, "{what}: new reading old");
            assert_eq!(f, forward, "{what}: old reading new");
        }
    }

    #[test]
    fn top_level_and_multiple_errors() {
        let (b, f) = both("\"int\"", "\"long\"");
        assert_eq!(b, NONE);
        assert_eq!(f, vec![type_mismatch("/", "INT", "LONG")]);
        let (b, _) = both(
            &record(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#),
            &record(
                r#"{"name":"a","type":"string"},{"name":"c","type":"int"},{"name":"b","type":"int"}"#,
            ),
        );
        assert_eq!(
            b,
            vec![
                type_mismatch("/fields/0/type", "STRING", "INT"),
                missing_default("c", "/fields/1"),
                type_mismatch("/fields/2/type", "INT", "STRING"),
            ]
        );
    }

    #[test]
    fn enum_field_with_only_an_enum_default() {
        // Java compares the enum with the writer's whole record when the field is missing
        let old = record(r#"{"name":"a","type":"int"}"#);
        let new = record(
            r#"{"name":"a","type":"int"},{"name":"e","type":{"type":"enum","name":"E","symbols":["X"],"default":"X"}}"#,
        );
        let (b, f) = both(&old, &new);
        assert_eq!(b, vec![type_mismatch("/fields/1/type", "ENUM", "RECORD")]);
        assert_eq!(f, NONE);
    }

    #[test]
    fn recursive_and_shared_types() {
        let list = r#"{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}"#;
        let list2 = r#"{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}"#;
        let (b, f) = both(list, list2);
        assert_eq!(b, NONE);
        assert_eq!(f, vec![type_mismatch("/fields/0/type", "INT", "LONG")]);
        // a named type used twice is checked once: the memoized result keeps its first path
        let twice = |ty: &str| {
            format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"x","type":{{"type":"record","name":"P","fields":[{{"name":"v","type":"{ty}"}}]}}}},{{"name":"y","type":"P"}}]}}"#
            )
        };
        let (_, f) = both(&twice("int"), &twice("long"));
        assert_eq!(
            f,
            vec![
                type_mismatch("/fields/0/type/fields/0/type", "INT", "LONG"),
                type_mismatch("/fields/0/type/fields/0/type", "INT", "LONG"),
            ]
        );
    }

    #[test]
    fn directions_can_be_worded_by_the_caller() {
        let old = parse(&record(r#"{"name":"a","type":"int"}"#), &[]).unwrap();
        let new = parse(&record(r#"{"name":"b","type":"int","default":1}"#), &[]).unwrap();
        assert_eq!(
            old.compatibility_errors(&new),
            vec![missing_default("a", "/fields/0")]
        );
        assert_eq!(
            old.compatibility_errors_as(&new, "old", "new"),
            vec!["{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'a' at path '/fields/0' in the old schema has no default value and is missing in the new schema', additionalInfo:'a'}".to_string()]
        );
    }

    #[test]
    fn alias_matching_two_writer_fields_is_an_exception() {
        let (b, _) = both(
            &record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#),
            &record(r#"{"name":"a","type":"int","aliases":["b"]}"#),
        );
        assert_eq!(
            b,
            vec![format!(
                "Unexpected exception during compatibility check: Reader record field a type:INT pos:0 matches multiple fields in writer record schema {}",
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#
            )]
        );
    }
}
