//! Structural validation: a YAML value against the JSON Schema generated from floe's own
//! types, each failure turned into a positioned [`Diagnostic`](super::diagnostics::Diagnostic).
//!
//! The schemas that `floe schema` prints are the ones checked here, so the editor and the
//! compiler never disagree. Semantic rules that a schema cannot say live in `rules`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use schemars::JsonSchema;
use serde_json::Value;

use super::diagnostics::{did_you_mean, FileDiagnostics};
use super::yaml::join_key;

/// The JSON Schema of `T` (draft 2020-12).
pub fn schema_of<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

type Compiled = (Value, Validator);

/// Compiled validators, one per type, built on first use.
static VALIDATORS: LazyLock<Mutex<HashMap<&'static str, &'static Compiled>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn compiled<T: JsonSchema>() -> Option<&'static Compiled> {
    let key = std::any::type_name::<T>();
    let mut cache = VALIDATORS.lock().ok()?;
    if let Some(found) = cache.get(key) {
        return Some(found);
    }
    let schema = schema_of::<T>();
    let validator = jsonschema::validator_for(&schema).ok()?;
    // Leaked once per type for the life of the process: a handful of small schemas.
    let leaked: &'static Compiled = Box::leak(Box::new((schema, validator)));
    cache.insert(key, leaked);
    Some(leaked)
}

/// Check `value` (found at `base` in the file) against `T`'s schema. Returns true when valid.
pub fn check<T: JsonSchema>(value: &Value, base: &str, diags: &mut FileDiagnostics<'_>) -> bool {
    let Some((schema, validator)) = compiled::<T>() else {
        diags.error(base, "internal error: floe's own schema did not compile").hint("please report this at https://github.com/floe-dev/floe/issues");
        return false;
    };
    let mut ok = true;
    for error in validator.iter_errors(value) {
        ok = false;
        report(&error, schema, value, base, diags);
    }
    ok
}

/// A display path (`ingestion[2].dlt`) from a JSON pointer location.
fn display_path(base: &str, error: &ValidationError<'_>) -> String {
    let mut path = base.to_string();
    for segment in error.instance_path().iter() {
        match segment {
            LocationSegment::Property(p) => path = join_key(&path, &p),
            LocationSegment::Index(i) => path = format!("{path}[{i}]"),
        }
    }
    path
}

fn report(error: &ValidationError<'_>, root: &Value, instance_root: &Value, base: &str, diags: &mut FileDiagnostics<'_>) {
    let path = display_path(base, error);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = known_keys(root, error);
            for key in unexpected {
                let key_path = join_key(&path, key);
                let hint = did_you_mean(key, known.iter().map(String::as_str));
                diags
                    .key_error(&key_path, format!("unknown key `{key}`"))
                    .expected(if known.is_empty() { "no other keys here".to_string() } else { format!("one of {}", known.join(", ")) })
                    .maybe_hint(hint);
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            diags
                .key_error(&path, format!("missing required key `{name}`"))
                .hint(format!("add `{name}:` under `{}`", if path.is_empty() { "the top level" } else { &path }));
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<&str> = options.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            let given = error.instance().as_str().map(str::to_string).unwrap_or_else(|| error.instance().to_string());
            diags
                .error(&path, format!("unknown value \"{given}\""))
                .expected(format!("one of {}", names.join(", ")))
                .maybe_hint(did_you_mean(&given, names.iter().copied()));
        }
        ValidationErrorKind::Constant { expected_value } => {
            diags.error(&path, format!("must be {expected_value}"));
        }
        ValidationErrorKind::Type { kind } => {
            diags.error(&path, format!("wrong type: found {}", describe(error.instance()))).expected(type_name(kind));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            if let Some(options) = const_options(context) {
                let names: Vec<&str> = options.iter().map(String::as_str).collect();
                let given = error.instance().as_str().map(str::to_string).unwrap_or_else(|| error.instance().to_string());
                diags
                    .error(&path, format!("unknown value \"{given}\""))
                    .expected(format!("one of {}", names.join(", ")))
                    .maybe_hint(did_you_mean(&given, names.iter().copied()));
                return;
            }
            match best_branch(context, error) {
                Some(branch) => {
                    for e in branch {
                        report(e, root, instance_root, &path_prefix_for(base, error, e), diags);
                    }
                }
                None => {
                    diags.error(&path, format!("unexpected value: {}", describe(error.instance()))).expected(alternatives(root, error));
                }
            }
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            diags.error(&path, format!("{} is too small", error.instance())).expected(format!("at least {limit}"));
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            diags.error(&path, format!("{} is too large", error.instance())).expected(format!("at most {limit}"));
        }
        _ => {
            diags.error(&path, error.to_string());
        }
    }
}

/// Errors inside anyOf/oneOf branches carry paths relative to the whole instance, so the base
/// stays the same.
fn path_prefix_for(base: &str, _outer: &ValidationError<'_>, _inner: &ValidationError<'_>) -> String {
    base.to_string()
}

/// When every branch is a single constant (an enum whose variants carry documentation), the
/// constants; such a failure reads best as "unknown value".
fn const_options(context: &[Vec<ValidationError<'static>>]) -> Option<Vec<String>> {
    context
        .iter()
        .map(|branch| match branch.as_slice() {
            [only] => match only.kind() {
                ValidationErrorKind::Constant { expected_value } => expected_value.as_str().map(str::to_string),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Pick the branch of an anyOf/oneOf that the user most likely meant: skip branches that fail on
/// the value's own type or on a `type` discriminator, then take the one with fewest errors.
fn best_branch<'e>(context: &'e [Vec<ValidationError<'static>>], outer: &ValidationError<'_>) -> Option<&'e [ValidationError<'static>]> {
    let outer_len = outer.instance_path().iter().count();
    context
        .iter()
        .filter(|branch| {
            !branch.iter().any(|e| {
                let depth = e.instance_path().iter().count();
                let on_self = depth == outer_len && matches!(e.kind(), ValidationErrorKind::Type { .. });
                let on_tag = depth == outer_len + 1
                    && matches!(e.kind(), ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. })
                    && e.instance_path().iter().last().is_some_and(|s| matches!(s, LocationSegment::Property(p) if p == "type"));
                on_self || on_tag
            })
        })
        .min_by_key(|branch| branch.len())
        .map(Vec::as_slice)
}

/// The property names allowed by the schema object that rejected an unknown key.
fn known_keys(root: &Value, error: &ValidationError<'_>) -> Vec<String> {
    // schema_path ends in `/additionalProperties`; its parent is the object schema.
    let pointer = error.schema_path().as_str();
    let parent = pointer.strip_suffix("/additionalProperties").unwrap_or(pointer);
    let mut keys: Vec<String> = root
        .pointer(parent)
        .map(|s| resolve(root, s))
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Follow a `$ref` into `$defs`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(schema),
        None => schema,
    }
}

fn alternatives(root: &Value, error: &ValidationError<'_>) -> String {
    let pointer = error.schema_path().as_str();
    let Some(branches) = root.pointer(pointer).and_then(Value::as_array) else {
        return "one of the documented forms".into();
    };
    let forms: Vec<String> = branches
        .iter()
        .map(|b| {
            let b = resolve(root, b);
            if let Some(tag) = b.pointer("/properties/type/const").and_then(Value::as_str) {
                format!("type: {tag}")
            } else if let Some(values) = b.get("enum").and_then(Value::as_array) {
                values.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | ")
            } else {
                b.get("type").map(|t| t.to_string().replace('"', "")).unwrap_or_else(|| "a mapping".into())
            }
        })
        .collect();
    format!("one of: {}", forms.join("; "))
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null (an empty value)".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn type_name(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::error::TypeKind;
    let names: Vec<String> = match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        // `null` in a set only means "may be left out": not worth suggesting.
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).filter(|t| t != "null").collect(),
    };
    names.iter().map(|n| match n.as_str() {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        other => other.to_string(),
    }).collect::<Vec<_>>().join(" or ")
}

#[cfg(test)]
mod tests {
    use super::super::yaml;
    use super::*;
    use crate::config::spec::Spec;

    fn errors_for(text: &str) -> Vec<super::super::diagnostics::Diagnostic> {
        let doc = yaml::parse(text);
        let mut out = Vec::new();
        let mut diags = FileDiagnostics { file: std::path::Path::new("floe.yaml"), locations: &doc.locations, out: &mut out };
        check::<Spec>(doc.value.as_ref().expect("value"), "", &mut diags);
        out
    }

    #[test]
    fn unknown_key_with_suggestion() {
        let errs = errors_for("ingestion:\n  - name: a\n    type: dlt\n    destination: b.c\n    dlt: {source: filesystem, write_dispositon: merge}\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "ingestion[0].dlt.write_dispositon");
        assert_eq!(errs[0].hint.as_deref(), Some("did you mean `write_disposition`?"));
        assert_eq!((errs[0].line, errs[0].column), (5, 31));
    }

    #[test]
    fn enum_with_suggestion() {
        let errs = errors_for("ingestion:\n  - name: a\n    type: dlt\n    destination: b.c\n    dlt:\n      source: x\n      write_disposition: merg\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "ingestion[0].dlt.write_disposition");
        assert_eq!((errs[0].line, errs[0].column), (7, 26));
        assert_eq!(errs[0].hint.as_deref(), Some("did you mean `merge`?"));
    }

    #[test]
    fn missing_and_wrong_type_all_reported() {
        let errs = errors_for("ingestion:\n  - name: a\n    type: dlt\n  - name: 3\n    type: dlt\n    destination: x.y\n");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"ingestion[0]"), "{errs:?}");
        assert!(paths.contains(&"ingestion[1].name"), "{errs:?}");
    }
}
