//! Confluent's URL form for contexts: `/contexts/{context}/...` is the rest of the API scoped to
//! one context, rewritten before routing into the qualified form (`/subjects/:.ctx:s/...`,
//! `subjectPrefix=:.ctx:`, `subject=:.ctx:` for ids), as Confluent's registry rewrites it.

use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use crate::error::RegistryError;

/// Rewrites a `/contexts/{context}/...` request before the router sees it.
pub async fn rewrite_request(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri();
    match rewrite(uri.path(), uri.query()) {
        Ok(None) => {}
        Ok(Some(path_and_query)) => match path_and_query.parse::<Uri>() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(e) => return RegistryError::BadRequest(e.to_string()).into_response(),
        },
        Err(e) => return e.into_response(),
    }
    next.run(request).await
}

/// The path and query a `/contexts/{context}/<rest>` request stands for, or `None` when the
/// path is not of that form (`/contexts` itself and `/contexts/{context}` are served as they are).
pub fn rewrite(path: &str, query: Option<&str>) -> Result<Option<String>, RegistryError> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if segments.next() != Some("contexts") {
        return Ok(None);
    }
    let Some(context) = segments.next() else {
        return Ok(None);
    };
    let rest: Vec<&str> = segments.collect();
    if rest.is_empty() {
        return Ok(None);
    }
    let prefix = delimited(context)?;

    // A segment after `subjects`, or after a leading `config` or `mode`, names a subject.
    let mut out: Vec<String> = Vec::with_capacity(rest.len() + 1);
    let mut subject_next = false;
    let mut config_or_mode = false;
    for (i, segment) in rest.iter().enumerate() {
        if subject_next {
            subject_next = false;
            out.push(if names_context(segment) {
                (*segment).to_owned()
            } else {
                format!("{prefix}{segment}")
            });
            continue;
        }
        let root_config_or_mode = i == 0 && (*segment == "config" || *segment == "mode");
        if *segment == "subjects" || root_config_or_mode {
            subject_next = true;
            config_or_mode |= root_config_or_mode;
        }
        out.push((*segment).to_owned());
    }
    // `/contexts/.ctx/config` is the context's own default: `/config/:.ctx:`.
    if config_or_mode && subject_next && !prefix.is_empty() {
        out.push(prefix.clone());
    }
    let new_path = format!("/{}", out.join("/"));

    let mut params: Vec<(String, String)> = match query {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| RegistryError::BadRequest(format!("bad query string: {e}")))?,
        None => Vec::new(),
    };
    let qualify = |value: &str| {
        if names_context(value) {
            value.to_owned()
        } else {
            format!("{prefix}{value}")
        }
    };
    let joined = out.join("/");
    if joined.starts_with("schemas/ids") {
        // Ids are looked up in the context: `subject=` names it, alone or with a subject.
        match params.iter_mut().find(|(k, _)| k == "subject") {
            Some((_, value)) => *value = qualify(value),
            None => params.push(("subject".to_owned(), prefix.clone())),
        }
    } else if joined == "schemas" || joined == "subjects" {
        let mut found = false;
        for (_, value) in params.iter_mut().filter(|(k, _)| k == "subjectPrefix") {
            *value = qualify(value);
            found = true;
        }
        if !found {
            params.push(("subjectPrefix".to_owned(), prefix.clone()));
        }
    }
    if params.is_empty() {
        return Ok(Some(new_path));
    }
    let query = serde_urlencoded::to_string(&params)
        .map_err(|e| RegistryError::BadRequest(format!("bad query string: {e}")))?;
    Ok(Some(format!("{new_path}?{query}")))
}

/// A context as subjects carry it: `:.ctx:` (from `.ctx`, `ctx` or `:.ctx:`), or "" for the
/// default context `.`.
pub fn delimited(context: &str) -> Result<String, RegistryError> {
    let context = context.strip_prefix(':').unwrap_or(context);
    let context = context.strip_suffix(':').unwrap_or(context);
    if context.contains(':') {
        return Err(RegistryError::BadRequest(format!(
            "Context name '{context}' cannot contain a colon"
        )));
    }
    let context = if context.starts_with('.') {
        context.to_owned()
    } else {
        format!(".{context}")
    };
    Ok(if context == crate::state::DEFAULT_CONTEXT {
        String::new()
    } else {
        format!(":{context}:")
    })
}

/// Whether a subject (or prefix) already names its context, `:.ctx:...` or the wildcard
/// `:*:` (also percent-encoded, as it arrives in a path).
fn names_context(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    [":.", ":*:", "%3a.", "%3a*%3a"]
        .iter()
        .any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(path: &str, query: Option<&str>) -> Option<String> {
        rewrite(path, query).unwrap()
    }

    #[test]
    fn subjects_get_the_context_prefix() {
        let cases = [
            (
                "/contexts/.ctx/subjects/s/versions",
                "/subjects/:.ctx:s/versions",
            ),
            (
                "/contexts/ctx/subjects/s/versions/1/schema",
                "/subjects/:.ctx:s/versions/1/schema",
            ),
            ("/contexts/:.ctx:/subjects/s", "/subjects/:.ctx:s"),
            ("/contexts/.ctx/subjects/:.other:s", "/subjects/:.other:s"),
            (
                "/contexts/.ctx/compatibility/subjects/s/versions/latest",
                "/compatibility/subjects/:.ctx:s/versions/latest",
            ),
            ("/contexts/.ctx/config/s", "/config/:.ctx:s"),
            ("/contexts/.ctx/mode/s", "/mode/:.ctx:s"),
            ("/contexts/./subjects/s/versions", "/subjects/s/versions"),
        ];
        for (from, to) in cases {
            assert_eq!(rewritten(from, None).as_deref(), Some(to), "{from}");
        }
    }

    #[test]
    fn the_context_alone_is_its_default_config_and_mode() {
        assert_eq!(
            rewritten("/contexts/.ctx/config", None).as_deref(),
            Some("/config/:.ctx:")
        );
        assert_eq!(
            rewritten("/contexts/.ctx/mode/", None).as_deref(),
            Some("/mode/:.ctx:")
        );
        assert_eq!(
            rewritten("/contexts/./config", None).as_deref(),
            Some("/config")
        );
    }

    #[test]
    fn lists_and_ids_are_scoped_through_the_query() {
        assert_eq!(
            rewritten("/contexts/.ctx/subjects", Some("deleted=true")).as_deref(),
            Some("/subjects?deleted=true&subjectPrefix=%3A.ctx%3A")
        );
        assert_eq!(
            rewritten("/contexts/.ctx/schemas", Some("subjectPrefix=ord")).as_deref(),
            Some("/schemas?subjectPrefix=%3A.ctx%3Aord")
        );
        assert_eq!(
            rewritten("/contexts/.ctx/schemas/ids/3", None).as_deref(),
            Some("/schemas/ids/3?subject=%3A.ctx%3A")
        );
        assert_eq!(
            rewritten("/contexts/.ctx/schemas/ids/3/subjects", Some("subject=s")).as_deref(),
            Some("/schemas/ids/3/subjects?subject=%3A.ctx%3As")
        );
    }

    #[test]
    fn other_paths_are_left_alone() {
        for path in [
            "/contexts",
            "/contexts/",
            "/contexts/.ctx",
            "/subjects/s",
            "/",
        ] {
            assert_eq!(rewritten(path, None), None, "{path}");
        }
    }

    #[test]
    fn a_context_with_a_colon_is_refused() {
        let e = rewrite("/contexts/a:b/subjects", None).unwrap_err();
        assert_eq!(e.codes(), (400, 400));
        assert_eq!(e.to_string(), "Context name 'a:b' cannot contain a colon");
    }
}
