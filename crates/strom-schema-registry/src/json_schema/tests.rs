use super::*;

#[test]
fn placeholder() {
    let s = parse(r#"{"type": "string"}"#, &[]).unwrap();
    assert_eq!(s.canonical(), r#"{"type":"string"}"#);
}
