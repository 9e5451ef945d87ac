//! JSON Schema: values are validated against the writer schema and written as JSON text.

use serde_json::Value as Json;

use crate::error::{Result, SerdeError};

pub struct JsonCodec {
    validator: jsonschema::Validator,
    /// The schema's `title`: its name for Confluent's record name strategies.
    title: Option<String>,
}

impl JsonCodec {
    /// `references`: (name, schema text); each is reachable from `$ref` by its name, as
    /// Confluent's serializers resolve them.
    pub fn new(text: &str, references: &[(String, String)]) -> Result<JsonCodec> {
        let schema: Json = serde_json::from_str(text)
            .map_err(|e| SerdeError::Schema(format!("the JSON schema is not JSON: {e}")))?;
        let mut options = jsonschema::options();
        for (name, reference) in references {
            let contents: Json = serde_json::from_str(reference).map_err(|e| {
                SerdeError::Schema(format!("the referenced schema {name} is not JSON: {e}"))
            })?;
            options =
                options.with_resource(name.clone(), jsonschema::Resource::from_contents(contents));
        }
        let validator = options
            .build(&schema)
            .map_err(|e| SerdeError::Schema(format!("invalid JSON schema: {e}")))?;
        let title = schema.get("title").map(|t| match t {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        });
        Ok(JsonCodec { validator, title })
    }

    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    pub fn encode(&self, value: &Json) -> Result<Vec<u8>> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(value)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if !errors.is_empty() {
            return Err(SerdeError::Value(format!(
                "the value does not match the JSON schema: {}",
                errors.join("; ")
            )));
        }
        serde_json::to_vec(value).map_err(|e| SerdeError::Value(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codec, SchemaKind};
    use serde_json::json;

    #[test]
    fn json_schema_values_are_validated_and_written_as_json() {
        let codec = Codec::new(
            SchemaKind::Json,
            r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id"]}"#,
            &[],
        )
        .unwrap();
        assert_eq!(
            codec.encode(&json!({"id": 1, "name": "a"})).unwrap(),
            br#"{"id":1,"name":"a"}"#
        );
        let err = codec.encode(&json!({"id": "x"})).unwrap_err().to_string();
        assert!(
            err.starts_with("the value does not match the JSON schema: /id: "),
            "{err}"
        );
        assert!(codec.encode(&json!({"name": "a"})).is_err());
        // Payloads print as they are; as JSON values they are parsed.
        let decoded = codec.decode(br#"{"id": 1.50}"#).unwrap();
        assert_eq!(decoded.text(), r#"{"id": 1.50}"#);
        assert_eq!(decoded.json(), json!({"id": 1.5}));
        assert_eq!(codec.decode(b"x").unwrap().json(), json!("x"));
    }

    #[test]
    fn references_resolve_by_name_and_bad_schemas_are_errors() {
        let address =
            r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#;
        let codec = JsonCodec::new(
            r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#,
            &[("address.json".to_owned(), address.to_owned())],
        )
        .unwrap();
        assert!(codec.encode(&json!({"home": {"city": "Oslo"}})).is_ok());
        assert!(codec.encode(&json!({"home": {}})).is_err());
        let err = JsonCodec::new("{", &[]).err().unwrap();
        assert!(matches!(err, SerdeError::Schema(_)), "{err}");
        assert!(JsonCodec::new(r#"{"type": 5}"#, &[]).is_err());
    }
}
