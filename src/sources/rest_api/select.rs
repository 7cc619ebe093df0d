//! The JSONPath subset floe understands, and where records are in a response.
//!
//! Paths name one place in a JSON document: `data`, `a.b`, `$.results`, `$.results[*]`,
//! `$['@odata.nextLink']`, `items[0].next`. A trailing `[*]` means "the list itself" (dlt
//! writes selectors that way); a wildcard anywhere else is refused when the config is read,
//! so a selector never silently picks only part of the data.
//!
//! Without a `data_selector`, records are found as dlt finds them: a body that is a list is
//! the records; otherwise the one list-valued field, else a well-known name (`data`,
//! `items`, `results`, …), else one level down; an object without lists is one record.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed path; keeps its text for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub text: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parse a path; the error says what is not supported.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let trimmed = text.trim();
        let mut rest = trimmed.strip_prefix('$').unwrap_or(trimmed);
        let mut segments = Vec::new();
        let mut key = String::new();
        let flush = |key: &mut String, segments: &mut Vec<Segment>| {
            if !key.is_empty() {
                segments.push(Segment::Key(std::mem::take(key)));
            }
        };
        while let Some(c) = rest.chars().next() {
            match c {
                '.' => {
                    flush(&mut key, &mut segments);
                    rest = &rest[1..];
                }
                '[' => {
                    flush(&mut key, &mut segments);
                    let end = rest.find(']').ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
                    let inner = rest[1..end].trim();
                    rest = &rest[end + 1..];
                    if inner == "*" {
                        // Only a trailing wildcard: "the list here".
                        if !rest.trim().is_empty() {
                            return Err(format!("`{text}`: a wildcard `[*]` is only supported at the end of a path"));
                        }
                    } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"'))) {
                        segments.push(Segment::Key(q.to_string()));
                    } else if let Ok(i) = inner.parse::<usize>() {
                        segments.push(Segment::Index(i));
                    } else {
                        return Err(format!("`{text}`: `[{inner}]` is not supported (use a key, `['key']`, an index or a trailing `[*]`)"));
                    }
                }
                '*' if key.is_empty() && rest[1..].trim().is_empty() => {
                    // `data.*`: the same as `data[*]`.
                    rest = &rest[1..];
                }
                _ => {
                    key.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        flush(&mut key, &mut segments);
        Ok(JsonPath { text: text.to_string(), segments })
    }

    /// The value at this path, if any (the root for `$`).
    pub fn find<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for s in &self.segments {
            v = match (s, v) {
                (Segment::Key(k), Value::Object(m)) => m.get(k)?,
                (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// True for `$` (the whole body).
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

/// Why a response has no records where the config says they are.
#[derive(Debug, PartialEq, Eq)]
pub enum SelectError {
    /// The selector finds nothing (or not a list) in this response.
    NoList { selector: String, found: &'static str },
    /// No selector, and the response has several lists with no obvious one.
    Ambiguous { fields: Vec<String> },
}

impl std::fmt::Display for SelectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectError::NoList { selector, found } => write!(f, "data_selector `{selector}` finds {found}, not a list of records"),
            SelectError::Ambiguous { fields } => {
                write!(f, "the response holds several lists ({}); set `data_selector` to the one with the records", fields.join(", "))
            }
        }
    }
}

/// Names dlt prefers for the record list, in order.
const PREFERRED: &[&str] = &["data", "items", "results", "entries", "records", "rows", "objects", "values", "elements", "list", "content", "hits", "collection", "nodes"];
/// Names that hold paging metadata, never records.
const AVOIDED: &[&str] = &["meta", "metadata", "pagination", "paging", "links", "_links", "page", "error", "errors", "info"];

fn kind(v: Option<&Value>) -> &'static str {
    match v {
        None => "nothing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "a list",
        Some(Value::Object(_)) => "an object",
    }
}

/// Take the records out of a response body. The list is moved out (what remains of the body
/// still holds the paging fields a paginator reads); a body that is itself the records is
/// left as null.
pub fn records(body: &mut Value, selector: Option<&JsonPath>) -> Result<Vec<Value>, SelectError> {
    match selector {
        Some(path) => {
            match path.find(body) {
                Some(Value::Array(_)) => {}
                // An explicit null is how some APIs say "no records on this page".
                Some(Value::Null) => return Ok(Vec::new()),
                // `$` on a single object: that object is the record.
                Some(Value::Object(_)) if path.is_root() => return Ok(vec![body.clone()]),
                other => return Err(SelectError::NoList { selector: path.text.clone(), found: kind(other) }),
            }
            Ok(take(body, &path.segments))
        }
        None => auto(body),
    }
}

/// Move the list at `segments` out of `body`.
fn take(body: &mut Value, segments: &[Segment]) -> Vec<Value> {
    let mut v = body;
    for s in segments {
        let next = match (s, v) {
            (Segment::Key(k), Value::Object(m)) => m.get_mut(k),
            (Segment::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return Vec::new(),
        }
    }
    match v.take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

fn auto(body: &mut Value) -> Result<Vec<Value>, SelectError> {
    let map = match body {
        Value::Array(_) => return Ok(take(body, &[])),
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m,
        scalar => return Ok(vec![scalar.clone()]),
    };
    if let Some(key) = pick_list(map)? {
        return Ok(take(body, &[Segment::Key(key)]));
    }
    // One level down: {"data": {"items": [...]}}.
    let nested: Vec<(String, String)> = map
        .iter()
        .filter(|(k, _)| !AVOIDED.contains(&k.as_str()))
        .filter_map(|(k, v)| match v.as_object().map(pick_list) {
            Some(Ok(Some(inner))) => Some((k.clone(), inner)),
            _ => None,
        })
        .collect();
    if let [(outer, inner)] = nested.as_slice() {
        return Ok(take(body, &[Segment::Key(outer.clone()), Segment::Key(inner.clone())]));
    }
    // No list anywhere: the object is one record (e.g. `/users/{id}`).
    Ok(vec![body.clone()])
}

/// The key of the record list in an object, if one is clear.
fn pick_list(map: &serde_json::Map<String, Value>) -> Result<Option<String>, SelectError> {
    let lists: Vec<&String> = map.iter().filter(|(k, v)| v.is_array() && !AVOIDED.contains(&k.as_str())).map(|(k, _)| k).collect();
    match lists.len() {
        0 => Ok(None),
        1 => Ok(Some(lists[0].clone())),
        _ => match PREFERRED.iter().find(|p| lists.iter().any(|k| k.as_str() == **p)) {
            Some(p) => Ok(Some((*p).to_string())),
            None => Err(SelectError::Ambiguous { fields: lists.into_iter().cloned().collect() }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(mut body: Value, path: &str) -> Result<Vec<Value>, SelectError> {
        records(&mut body, Some(&JsonPath::parse(path).expect("path")))
    }

    fn auto(mut body: Value) -> Result<Vec<Value>, SelectError> {
        records(&mut body, None)
    }

    #[test]
    fn paths_of_every_supported_form() {
        let body = json!({"a": {"b": [1, 2]}, "results": [3], "@odata.nextLink": "x", "l": [{"n": "y"}]});
        assert_eq!(sel(body.clone(), "a.b"), Ok(vec![json!(1), json!(2)]));
        assert_eq!(sel(body.clone(), "$.results"), Ok(vec![json!(3)]));
        assert_eq!(sel(body.clone(), "$.results[*]"), Ok(vec![json!(3)]));
        assert_eq!(sel(body.clone(), "$.a.b[*]"), Ok(vec![json!(1), json!(2)]));
        assert_eq!(JsonPath::parse("$['@odata.nextLink']").expect("p").find(&body), Some(&json!("x")));
        assert_eq!(JsonPath::parse("l[0].n").expect("p").find(&body), Some(&json!("y")));
        assert_eq!(sel(json!([1]), "$"), Ok(vec![json!(1)]));
        assert_eq!(sel(json!([1]), "$[*]"), Ok(vec![json!(1)]));
        assert!(JsonPath::parse("$.a[*].b").is_err());
        assert!(JsonPath::parse("$.a[?(@.x)]").is_err());
    }

    #[test]
    fn a_selector_that_finds_no_list_is_an_error() {
        assert_eq!(sel(json!({"data": []}), "items"), Err(SelectError::NoList { selector: "items".into(), found: "nothing" }));
        assert_eq!(sel(json!({"data": {"x": 1}}), "data"), Err(SelectError::NoList { selector: "data".into(), found: "an object" }));
        assert_eq!(sel(json!({"data": null}), "data"), Ok(vec![]));
    }

    #[test]
    fn auto_detection_follows_dlt() {
        assert_eq!(auto(json!([1, 2])), Ok(vec![json!(1), json!(2)]));
        assert_eq!(auto(json!({"total": 2, "things": [1]})), Ok(vec![json!(1)]));
        assert_eq!(auto(json!({"items": [1], "tags": [2], "links": [3]})), Ok(vec![json!(1)]));
        assert_eq!(auto(json!({"meta": {"x": []}, "data": {"rows": [7]}})), Ok(vec![json!(7)]));
        assert_eq!(auto(json!({"id": 1})), Ok(vec![json!({"id": 1})]));
        assert!(matches!(auto(json!({"a": [1], "b": [2]})), Err(SelectError::Ambiguous { .. })));
    }
}
