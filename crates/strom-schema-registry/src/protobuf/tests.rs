use super::*;

fn p(text: &str) -> ProtobufSchema {
    parse(text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

const REFERENCE: &str = "syntax = \"proto3\";\npackage shop.common;\nmessage Money {\n  int64 units = 1;\n  string currency = 2;\n}\n";

#[test]
fn canonical_text() {
    let text = "syntax = \"proto3\";\n\npackage shop.orders;\nimport \"google/protobuf/timestamp.proto\";\nimport \"common/money.proto\";\noption java_package = \"com.example.orders\";\noption java_multiple_files = true;\n\n// An order.\nmessage Order {\n    enum Status { UNKNOWN = 0; PAID = 1 [deprecated = true]; }\n    message Line { string sku = 1; int32 qty = 2; }\n    reserved 7, 9 to 11;\n    reserved \"legacy\";\n    string id = 1 [json_name = \"orderId\"];\n    oneof payment { string card = 3; string iban = 4; }\n    repeated Line lines = 2;\n    map<string, int64> counts = 5;\n    optional shop.common.Money total = 6;\n    google.protobuf.Timestamp created = 8;\n    Status status = 12;\n}\nenum Channel { WEB = 0; STORE = 1; }\nservice Orders { rpc Get (Order) returns (Order); }\n";
    let s = parse(text, &[("common/money.proto", REFERENCE)]).unwrap();
    let canonical = "syntax = \"proto3\";\npackage shop.orders;\n\nimport \"google/protobuf/timestamp.proto\";\nimport \"common/money.proto\";\n\noption java_package = \"com.example.orders\";\noption java_multiple_files = true;\n\nmessage Order {\n  reserved 7, 9 to 11;\n  reserved \"legacy\";\n\n  string id = 1 [json_name = \"orderId\"];\n  repeated Line lines = 2;\n  map<string, int64> counts = 5;\n  optional shop.common.Money total = 6;\n  google.protobuf.Timestamp created = 8;\n  Status status = 12;\n\n  oneof payment {\n    string card = 3;\n    string iban = 4;\n  }\n\n  message Line {\n    string sku = 1;\n    int32 qty = 2;\n  }\n  enum Status {\n    UNKNOWN = 0;\n    PAID = 1 [deprecated = true];\n  }\n}\nenum Channel {\n  WEB = 0;\n  STORE = 1;\n}\n\nservice Orders {\n  rpc Get (Order) returns (Order);\n}\n";
    assert_eq!(s.canonical(), canonical);
    // The canonical text parses back to itself.
    let again = parse(&s.canonical(), &[("common/money.proto", REFERENCE)]).unwrap();
    assert_eq!(again.canonical(), canonical);
    let normalized = "syntax = \"proto3\";\npackage shop.orders;\n\nimport \"common/money.proto\";\nimport \"google/protobuf/timestamp.proto\";\n\noption java_multiple_files = true;\noption java_package = \"com.example.orders\";\n\nmessage Order {\n  reserved 7;\n  reserved 9 to 11;\n  reserved \"legacy\";\n\n  string id = 1 [json_name = \"orderId\"];\n  repeated .shop.orders.Order.Line lines = 2;\n  map<string, int64> counts = 5;\n  optional .shop.common.Money total = 6;\n  .google.protobuf.Timestamp created = 8;\n  .shop.orders.Order.Status status = 12;\n\n  oneof payment {\n    string card = 3;\n    string iban = 4;\n  }\n\n  message Line {\n    string sku = 1;\n    int32 qty = 2;\n  }\n  enum Status {\n    UNKNOWN = 0;\n    PAID = 1 [deprecated = true];\n  }\n}\nenum Channel {\n  WEB = 0;\n  STORE = 1;\n}\n\nservice Orders {\n  rpc Get (.shop.orders.Order) returns (.shop.orders.Order);\n}\n";
    assert_eq!(s.normalized(), normalized);
}

#[test]
fn canonical_proto2_without_syntax_and_options() {
    let text = "import \"google/protobuf/descriptor.proto\";\nenum Kind {\n  reserved 20, 100 to max;\n  reserved \"OLD\";\n  A = 1;\n}\nmessage Opts {\n  optional string name = 1 [default = \"x\\\"y\", deprecated = true];\n  required Kind kind = 2;\n  extensions 100 to 199;\n}\nextend google.protobuf.MessageOptions {\n  optional Opts opts = 50001;\n}\nmessage M {\n  option (opts) = { name: \"n\" kind: A };\n  optional int32 b = 2 [packed = false];\n}\n";
    let s = p(text);
    let canonical = "\nimport \"google/protobuf/descriptor.proto\";\n\nmessage Opts {\n  optional string name = 1 [\n    deprecated = true,\n    default = \"x\\\"y\"\n  ];\n  required Kind kind = 2;\n\n  extensions 100 to 199;\n}\nmessage M {\n  option (opts) = {\n    name: \"n\",\n    kind: A\n  };\n\n  optional int32 b = 2 [packed = false];\n}\nenum Kind {\n  reserved 20, 100 to max;\n  reserved \"OLD\";\n  A = 1;\n}\n\nextend google.protobuf.MessageOptions {\n  optional Opts opts = 50001;\n}\n";
    assert_eq!(s.canonical(), canonical);
}

#[test]
fn whitespace_and_comments_do_not_matter() {
    let a = p("syntax=\"proto3\";message A{int32 x=1;/* c */string y=2;}");
    let b = p("syntax = \"proto3\";\n// doc\nmessage A {\n  int32 x = 1;\n  string y = 2; // trailing\n}\n");
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(
        a.canonical(),
        "syntax = \"proto3\";\n\nmessage A {\n  int32 x = 1;\n  string y = 2;\n}\n"
    );
}

#[test]
fn invalid_schemas_are_refused() {
    for text in [
        "syntax = \"proto3\"; message A { int32 x = 1",
        "syntax = \"proto3\"; message A { Missing x = 1; }",
        "syntax = \"proto3\"; message A { int32 x = 1; int32 y = 1; }",
        "syntax = \"proto3\"; import \"not/there.proto\"; message A { int32 x = 1; }",
        "syntax = \"proto3\"; message A { required int32 x = 1; }",
        "message A { int32 x = 1; }",
        "{\"type\": \"record\"}",
    ] {
        let err = parse(text, &[]).unwrap_err();
        assert!(
            err.starts_with("Invalid schema of type PROTOBUF, details: "),
            "{text}: {err}"
        );
    }
    // Well-known imports need no reference.
    p("syntax = \"proto3\"; import \"google/protobuf/wrappers.proto\"; import \"confluent/meta.proto\"; import \"google/type/date.proto\";\nmessage A { google.protobuf.StringValue s = 1 [(confluent.field_meta).doc = \"d\"]; google.type.Date d = 2; }");
}

/// Differences from `old` to `new` and whether a BACKWARD check accepts `new`.
fn evolve(old: &str, new: &str) -> (Vec<String>, bool) {
    let old = p(&format!("syntax = \"proto3\";\n{old}"));
    let new = p(&format!("syntax = \"proto3\";\n{new}"));
    let mut diffs = new.differences_from(&old);
    diffs.sort();
    (
        diffs,
        new.compatibility_errors_as(&old, "new", "old").is_empty(),
    )
}

#[test]
fn evolutions() {
    let base = "package p;\nmessage M {\n  int32 a = 1;\n  string b = 2;\n  E e = 3;\n  oneof o { int64 c = 4; string d = 5; }\n}\nenum E { E0 = 0; E1 = 1; }\n";
    let with = |from: &str, to: &str| base.replace(from, to);
    let cases: Vec<(&str, String, &[&str], bool)> = vec![
        ("same", base.to_owned(), &[], true),
        ("add field", with("E e = 3;", "E e = 3; bool f = 6;"), &["FIELD_ADDED #/M/6"], true),
        ("remove field", with("string b = 2;", ""), &["FIELD_REMOVED #/M/2"], true),
        ("rename field", with("string b = 2;", "string bee = 2;"), &["FIELD_NAME_CHANGED #/M/2"], true),
        (
            "change number",
            with("string b = 2;", "string b = 7;"),
            &["FIELD_ADDED #/M/7", "FIELD_REMOVED #/M/2"],
            true,
        ),
        ("int32 to int64", with("int32 a = 1;", "int64 a = 1;"), &[], true),
        ("int32 to sint32", with("int32 a = 1;", "sint32 a = 1;"), &["FIELD_SCALAR_KIND_CHANGED #/M/1"], false),
        ("string to bytes", with("string b = 2;", "bytes b = 2;"), &[], true),
        ("string to int32", with("string b = 2;", "int32 b = 2;"), &["FIELD_SCALAR_KIND_CHANGED #/M/2"], false),
        ("enum to int32", with("E e = 3;", "int32 e = 3;"), &[], true),
        ("scalar to message", with("int32 a = 1;", "M a = 1;"), &["FIELD_KIND_CHANGED #/M/1"], false),
        ("optional to repeated int", with("int32 a = 1;", "repeated int32 a = 1;"), &[], true),
        ("add enum value", with("E1 = 1;", "E1 = 1; E2 = 2;"), &["ENUM_CONST_ADDED #/E/2"], true),
        ("rename enum value", with("E1 = 1;", "E_ONE = 1;"), &["ENUM_CONST_CHANGED #/E/1"], true),
        ("remove enum", "package p;\nmessage M {\n  int32 a = 1;\n  string b = 2;\n  int32 e = 3;\n  oneof o { int64 c = 4; string d = 5; }\n}\n".to_owned(), &["ENUM_REMOVED #/E"], true),
        ("add message", format!("{base}message N {{}}\n"), &["MESSAGE_ADDED #/N"], true),
        ("remove message", "package p;\nenum E { E0 = 0; E1 = 1; }\n".to_owned(), &["MESSAGE_REMOVED #/M"], false),
        ("package change", with("package p;", "package q;"), &["PACKAGE_CHANGED #/"], false),
        ("add oneof member", with("string d = 5;", "string d = 5; bool g = 6;"), &["ONEOF_FIELD_ADDED #/M/o/6"], true),
        ("remove oneof member", with("string d = 5;", ""), &["ONEOF_FIELD_REMOVED #/M/o/5"], false),
        ("remove whole oneof", with("oneof o { int64 c = 4; string d = 5; }", ""), &["ONEOF_REMOVED #/M/o"], true),
        (
            "rename oneof",
            with("oneof o {", "oneof o2 {"),
            &["ONEOF_ADDED #/M/o2", "ONEOF_REMOVED #/M/o"],
            true,
        ),
        (
            "move fields into a oneof",
            with("int32 a = 1;\n  string b = 2;", "oneof n { int32 a = 1; string b = 2; }"),
            &["MULTIPLE_FIELDS_MOVED_TO_ONEOF #/M/n", "ONEOF_ADDED #/M/n"],
            false,
        ),
        (
            "move a field into an existing oneof",
            with("int32 a = 1;\n", "").replace("int64 c = 4;", "int64 c = 4; int32 a = 1;"),
            &["FIELD_MOVED_TO_EXISTING_ONEOF #/M/o"],
            false,
        ),
        (
            "move a oneof member out",
            with("oneof o { int64 c = 4; string d = 5; }", "int64 c = 4; oneof o { string d = 5; }"),
            &["ONEOF_FIELD_MOVED_TO_TOP_LEVEL #/M/4"],
            true,
        ),
        (
            "reorder messages",
            format!("message N {{}}\n{base}"),
            &["MESSAGE_ADDED #/N", "MESSAGE_MOVED #/M"],
            true,
        ),
    ];
    for (name, new, want, compatible) in cases {
        let (got, ok) = evolve(base, &new);
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{name}");
        assert_eq!(ok, compatible, "{name}");
    }
}

#[test]
fn required_and_labels() {
    let old = p("syntax = \"proto2\";\nmessage M { optional int32 a = 1; optional string s = 2; }");
    let new = p("syntax = \"proto2\";\nmessage M { repeated int32 a = 1; repeated string s = 2; required int32 r = 3; }");
    let mut diffs = new.differences_from(&old);
    diffs.sort();
    assert_eq!(
        diffs,
        [
            "FIELD_NUMERIC_LABEL_CHANGED #/M/1",
            "FIELD_STRING_OR_BYTES_LABEL_CHANGED #/M/2",
            "REQUIRED_FIELD_ADDED #/M/3"
        ]
    );
    assert_eq!(
        new.compatibility_errors_as(&old, "new", "old"),
        [
            "{errorType:\"FIELD_NUMERIC_LABEL_CHANGED\", description:\"The label for a NUMERIC field at path '#/M/1' in the new schema does not match its label in the old schema\"}",
            "{errorType:\"REQUIRED_FIELD_ADDED\", description:\"A required field  at path '#/M/3' in the new schema is missing in the old schema\"}",
        ]
    );
    // FORWARD wording: the old schema reads.
    assert_eq!(
        old.compatibility_errors_as(&new, "old", "new"),
        [
            "{errorType:\"FIELD_NUMERIC_LABEL_CHANGED\", description:\"The label for a NUMERIC field at path '#/M/1' in the old schema does not match its label in the new schema\"}",
            "{errorType:\"REQUIRED_FIELD_REMOVED\", description:\"The old schema is missing a required field at path: '#/M/3' in the new schema\"}",
        ]
    );
}

#[test]
fn referenced_types_are_compared() {
    let v1 = "syntax = \"proto3\";\npackage lib;\nmessage Addr { string city = 1; }\n";
    let v2 = "syntax = \"proto3\";\npackage lib;\nmessage Addr { int32 city = 1; }\n";
    let user = "syntax = \"proto3\";\nimport \"lib.proto\";\nmessage User { lib.Addr addr = 1; }\n";
    let old = parse(user, &[("lib.proto", v1)]).unwrap();
    let new = parse(user, &[("lib.proto", v2)]).unwrap();
    let mut diffs = new.differences_from(&old);
    diffs.sort();
    assert_eq!(
        diffs,
        [
            "FIELD_NAMED_TYPE_CHANGED #/User/1",
            "FIELD_SCALAR_KIND_CHANGED #/Addr/1"
        ]
    );
    assert!(parse(user, &[]).is_err());
}
