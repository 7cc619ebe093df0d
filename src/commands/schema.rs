//! `floe schema`: the entry point that prints the JSON Schemas floe validates against.

use serde_json::Value;

use crate::artifact::Artifact;
use crate::cli::SchemaKind;
use crate::config::manifest::Manifest;
use crate::config::schema_check::schema_of;
use crate::config::spec::Spec;

/// The schema text of one file kind (also what `schemas/*.json` in the repository holds).
pub fn schema_text(which: SchemaKind) -> String {
    let (mut schema, id) = match which {
        SchemaKind::Manifest => (schema_of::<Manifest>(), "manifest"),
        SchemaKind::Spec => (schema_of::<Spec>(), "spec"),
        SchemaKind::Artifact => (schema_of::<Artifact>(), "artifact"),
    };
    if let Value::Object(map) = &mut schema {
        map.insert("$id".into(), Value::String(format!("https://floe.dev/schemas/{id}.json")));
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

pub fn run(which: SchemaKind) -> u8 {
    match super::print_stdout(&schema_text(which)) {
        Ok(()) | Err(0) => 0,
        Err(code) => code,
    }
}
