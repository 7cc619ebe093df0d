//! Placeholders in paths, params, headers and JSON bodies.
//!
//! `{incremental.start_value}` (also `last_value`, `initial_value`) is the cursor the engine
//! hands the source: the stored cursor, or `initial_value` on the first run. When there is
//! none, a param made only of that placeholder is left out, so a first run without an
//! initial value reads everything. `{resources.<parent>.<field>}` is a field of the parent
//! record a child request series is made for (a dotted field reaches into nested objects).

use serde_json::Value;

/// What placeholders resolve to for one request series.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// The incremental start value, if any.
    pub start: Option<&'a Value>,
    /// The parent resource's name and the parent record.
    pub parent: Option<(&'a str, &'a Value)>,
}

/// Why a placeholder could not be filled.
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// `{incremental.…}` but the entry has no cursor value: the caller drops the param.
    NoStartValue,
    /// A config mistake, with the reason.
    Invalid(String),
}

/// Every `{resources.<name>.<field>}` in a text, as (name, field).
pub fn parent_refs(text: &str) -> Vec<(String, String)> {
    placeholders(text)
        .into_iter()
        .filter_map(|(_, inner)| {
            let rest = inner.strip_prefix("resources.")?;
            let (name, field) = rest.split_once('.')?;
            Some((name.to_string(), field.to_string()))
        })
        .collect()
}

/// Every `{…}` in `text`: (byte range start..end of the whole placeholder, inner text).
fn placeholders(text: &str) -> Vec<((usize, usize), &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find('{').map(|i| i + from) {
        let Some(close) = text[open..].find('}').map(|i| i + open) else { break };
        let inner = &text[open + 1..close];
        if inner.starts_with("incremental.") || inner.starts_with("resources.") {
            out.push(((open, close + 1), inner));
        }
        from = close + 1;
    }
    out
}

/// Text form of a value placed into a URL or header.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Look up one placeholder.
fn lookup<'a>(inner: &str, vars: &Vars<'a>) -> Result<&'a Value, TemplateError> {
    if let Some(which) = inner.strip_prefix("incremental.") {
        return match which {
            "start_value" | "last_value" | "initial_value" => vars.start.filter(|v| !v.is_null()).ok_or(TemplateError::NoStartValue),
            other => Err(TemplateError::Invalid(format!("`{{incremental.{other}}}` is not supported (use `{{incremental.start_value}}`)"))),
        };
    }
    let rest = inner.strip_prefix("resources.").unwrap_or(inner);
    let (name, field) = rest.split_once('.').ok_or_else(|| TemplateError::Invalid(format!("`{{{inner}}}` must name a parent resource and a field: `{{resources.<parent>.<field>}}`")))?;
    let Some((parent, record)) = vars.parent.filter(|(p, _)| *p == name) else {
        return Err(TemplateError::Invalid(format!("`{{{inner}}}` refers to resource `{name}`, which is not this resource's parent")));
    };
    let mut v = record;
    for part in field.split('.') {
        v = match v {
            Value::Object(m) => m.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| TemplateError::Invalid(format!("a `{parent}` record has no field `{field}` (used by `{{{inner}}}`)")))?;
    }
    if v.is_null() {
        return Err(TemplateError::Invalid(format!("a `{parent}` record has a null `{field}` (used by `{{{inner}}}`)")));
    }
    Ok(v)
}

/// Fill every placeholder of `text`.
pub fn render(text: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    let found = placeholders(text);
    if found.is_empty() {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for ((start, end), inner) in found {
        out.push_str(&text[last..start]);
        out.push_str(&value_text(lookup(inner, vars)?));
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Fill placeholders throughout a JSON body. A string that is exactly one placeholder takes
/// the value itself, so numbers stay numbers.
pub fn render_json(v: &Value, vars: &Vars<'_>) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => {
            let found = placeholders(s);
            match found.as_slice() {
                [((0, end), inner)] if *end == s.len() => lookup(inner, vars)?.clone(),
                _ => Value::String(render(s, vars)?),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render_json(x, vars)).collect::<Result<_, _>>()?),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| Ok((k.clone(), render_json(x, vars)?))).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

/// Query pairs from `params`. Values: text (with placeholders), numbers, booleans, lists
/// (the param repeated), and dlt's `{type: resolve, resource, field}` and
/// `{type: incremental, initial_value}` forms. Null and a missing start value leave the
/// param out.
pub fn render_params(params: &std::collections::BTreeMap<String, Value>, vars: &Vars<'_>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (k, v) in params {
        let values: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for v in values {
            let rendered = match v {
                Value::Null => continue,
                Value::String(s) => render(s, vars),
                Value::Object(m) => match m.get("type").and_then(Value::as_str) {
                    Some("resolve") => {
                        let resource = m.get("resource").and_then(Value::as_str).unwrap_or_default();
                        let field = m.get("field").and_then(Value::as_str).unwrap_or_default();
                        render(&format!("{{resources.{resource}.{field}}}"), vars)
                    }
                    Some("incremental") => match vars.start.filter(|s| !s.is_null()).or_else(|| m.get("initial_value").filter(|s| !s.is_null())) {
                        Some(s) => Ok(value_text(s)),
                        None => Err(TemplateError::NoStartValue),
                    },
                    _ => Err(TemplateError::Invalid(format!("param `{k}`: an object value must be `{{type: resolve, …}}` or `{{type: incremental, …}}`"))),
                },
                other => Ok(other.to_string()),
            };
            match rendered {
                Ok(s) => out.push((k.clone(), s)),
                Err(TemplateError::NoStartValue) => {}
                Err(TemplateError::Invalid(m)) => return Err(format!("param `{k}`: {m}")),
            }
        }
    }
    Ok(out)
}

/// Parent resources named by `{type: resolve, resource}` params.
pub fn resolve_param_parents(params: &std::collections::BTreeMap<String, Value>) -> Vec<String> {
    params
        .values()
        .filter_map(|v| v.as_object())
        .filter(|m| m.get("type").and_then(Value::as_str) == Some("resolve"))
        .filter_map(|m| m.get("resource").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_incremental_and_parent_fields() {
        let start = json!("2024-01-01T00:00:00Z");
        let parent = json!({"id": 7, "owner": {"login": "ann"}});
        let vars = Vars { start: Some(&start), parent: Some(("issues", &parent)) };
        assert_eq!(render("issues/{resources.issues.id}/comments", &vars), Ok("issues/7/comments".into()));
        assert_eq!(render("u/{resources.issues.owner.login}?since={incremental.start_value}", &vars), Ok("u/ann?since=2024-01-01T00:00:00Z".into()));
        assert!(matches!(render("{resources.other.id}", &vars), Err(TemplateError::Invalid(_))));
        assert!(matches!(render("{resources.issues.nope}", &vars), Err(TemplateError::Invalid(_))));
        assert_eq!(render_json(&json!({"n": "{resources.issues.id}", "s": "x{resources.issues.id}"}), &vars), Ok(json!({"n": 7, "s": "x7"})));
    }

    #[test]
    fn params_without_a_start_value_are_left_out() {
        let params = [("since".to_string(), json!("{incremental.start_value}")), ("per_page".to_string(), json!(50)), ("x".to_string(), Value::Null)].into_iter().collect();
        assert_eq!(render_params(&params, &Vars::default()), Ok(vec![("per_page".into(), "50".into())]));
        let start = json!(5);
        let vars = Vars { start: Some(&start), parent: None };
        assert_eq!(render_params(&params, &vars), Ok(vec![("per_page".into(), "50".into()), ("since".into(), "5".into())]));
        assert_eq!(parent_refs("a/{resources.p.id}/{resources.p.x.y}"), vec![("p".into(), "id".into()), ("p".into(), "x.y".into())]);
    }
}
