//! YAML text → JSON value, remembering where every key and value came from.
//!
//! floe reads YAML with `saphyr-parser`, the maintained successor of yaml-rust, at the event
//! level, rather than through a serde deserializer: serde stops at the first problem, and
//! floe promises to report *every* problem, each with its file, line and column. So this
//! module builds a plain `serde_json::Value` (what the JSON Schema checks and the typed
//! models consume) plus a [`Locations`] index from key paths (`ingestion[2].dlt.source`) to
//! positions. Duplicate keys are recorded as diagnostics instead of silently keeping one.
//!
//! Scalars resolve with the YAML 1.2 core schema (what the JSON Schema expects): `true`,
//! `false`, `null`, `~`, integers and floats when plain; anything quoted is a string.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos { line: span.start.line(), col: span.start.col() + 1 }
    }
}

/// Where each path's key and value sit in the source text.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Locations {
    /// Position of the value at `path`, else of its nearest located ancestor.
    pub fn value(&self, path: &str) -> Pos {
        self.lookup(path, &self.values)
    }

    /// Position of the key that introduces `path` (for "unknown key" and "missing key").
    pub fn key(&self, path: &str) -> Pos {
        match self.keys.get(path) {
            Some(p) => *p,
            None => self.value(path),
        }
    }

    fn lookup(&self, path: &str, table: &HashMap<String, Pos>) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = table.get(p) {
                return *pos;
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => return self.values.get("").copied().unwrap_or(Pos { line: 1, col: 1 }),
            }
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Append a key to a path: `join("a", "b")` = `a.b`; `join("", "b")` = `b`.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// A problem found while reading the YAML itself.
#[derive(Debug, Clone)]
pub struct YamlProblem {
    /// A warning does not stop compilation.
    pub warning: bool,
    pub pos: Pos,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

/// The result of reading one YAML document.
#[derive(Debug)]
pub struct Document {
    /// `None` when the text could not be parsed at all (a syntax error).
    pub value: Option<Value>,
    pub locations: Locations,
    pub problems: Vec<YamlProblem>,
}

/// Parse `text` into a JSON value with locations. Never panics; syntax errors and duplicate
/// keys come back as problems.
pub fn parse(text: &str) -> Document {
    parse_with(text, &[])
}

/// A mapping at `path` in which `key` may repeat: each repetition starts a new block, and the
/// mapping becomes a list of blocks (with a warning). This reads ADR-0020's
/// `type: dlt  # OR  type: airbyte` notation as the list of plugin blocks it means, instead of
/// rejecting the ADR's own example.
#[derive(Debug, Clone, Copy)]
pub struct SplitOnRepeat<'a> {
    pub path: &'a str,
    pub key: &'a str,
}

/// [`parse`], with mappings that may be split into blocks on a repeated key.
pub fn parse_with(text: &str, splits: &[SplitOnRepeat<'_>]) -> Document {
    let mut builder = Builder { splits: splits.iter().map(|s| (s.path.to_string(), s.key.to_string())).collect(), ..Builder::default() };
    let mut parser = Parser::new_from_str(text);
    let mut syntax_error = None;
    for item in parser.by_ref() {
        match item {
            Ok((event, span)) => builder.event(event, span),
            Err(e) => {
                syntax_error = Some(e);
                break;
            }
        }
    }
    if let Some(e) = syntax_error {
        let marker = e.marker();
        builder.problems.push(YamlProblem {
            warning: false,
            pos: Pos { line: marker.line(), col: marker.col() + 1 },
            path: String::new(),
            message: format!("invalid YAML: {}", e.info()),
            hint: Some("check the indentation and quoting around this position".into()),
        });
        return Document { value: None, locations: builder.locations, problems: builder.problems };
    }
    let value = builder.root.take().map(|n| n.value).or(Some(Value::Null));
    Document { value, locations: builder.locations, problems: builder.problems }
}

/// A node under construction.
struct Node {
    value: Value,
}

enum Frame {
    Seq { items: Vec<Value>, path: String, anchor: usize },
    Map {
        map: Map<String, Value>,
        path: String,
        pending_key: Option<(String, Pos)>,
        anchor: usize,
        key_order: Vec<String>,
        /// Earlier blocks of a mapping split on a repeated key.
        blocks: Vec<Map<String, Value>>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Value>,
    locations: Locations,
    problems: Vec<YamlProblem>,
    /// Depth of documents seen; only the first document is used.
    documents: usize,
    /// (path, key) pairs of [`SplitOnRepeat`].
    splits: Vec<(String, String)>,
}

impl Builder {
    /// The path the next value will have, given the frame on top of the stack.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { items, path, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Map { path, pending_key: Some((k, _)), .. }) => join_key(path, k),
            Some(Frame::Map { path, .. }) => path.clone(),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { pending_key: None, .. }))
    }

    fn event(&mut self, event: Event<'_>, span: Span) {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents == 2 {
                    self.problems.push(YamlProblem {
                        warning: false,
                        pos: Pos::of(&span),
                        path: String::new(),
                        message: "more than one YAML document in this file".into(),
                        hint: Some("remove the `---` separator and everything after it, or move it to its own file".into()),
                    });
                }
            }
            _ if self.documents > 1 => {}
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    self.key(text.into_owned(), Pos::of(&span));
                } else {
                    let value = scalar(&text, style, tag.as_deref().map(|t| t.suffix.as_str()));
                    if anchor > 0 {
                        self.anchors.insert(anchor, value.clone());
                    }
                    self.locations.values.insert(self.next_path(), Pos::of(&span));
                    self.push_value(value);
                }
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                if self.expecting_key() {
                    let key = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.key(key, Pos::of(&span));
                } else {
                    self.locations.values.insert(self.next_path(), Pos::of(&span));
                    self.push_value(value);
                }
            }
            Event::SequenceStart(anchor, _) => {
                if self.expecting_key() {
                    self.complex_key(&span);
                }
                let path = self.next_path();
                self.locations.values.insert(path.clone(), Pos::of(&span));
                self.stack.push(Frame::Seq { items: Vec::new(), path, anchor });
            }
            Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    self.complex_key(&span);
                }
                let path = self.next_path();
                self.locations.values.insert(path.clone(), Pos::of(&span));
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    path,
                    pending_key: None,
                    anchor,
                    key_order: Vec::new(),
                    blocks: Vec::new(),
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor, .. }) = self.stack.pop() {
                    let value = Value::Array(items);
                    if anchor > 0 {
                        self.anchors.insert(anchor, value.clone());
                    }
                    self.push_value(value);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { map, anchor, mut blocks, .. }) = self.stack.pop() {
                    let value = if blocks.is_empty() {
                        Value::Object(map)
                    } else {
                        blocks.push(map);
                        Value::Array(blocks.into_iter().map(Value::Object).collect())
                    };
                    if anchor > 0 {
                        self.anchors.insert(anchor, value.clone());
                    }
                    self.push_value(value);
                }
            }
            _ => {}
        }
    }

    /// A mapping or sequence used as a key: floe's files never need one.
    fn complex_key(&mut self, span: &Span) {
        let path = self.next_path();
        self.problems.push(YamlProblem {
            warning: false,
            pos: Pos::of(span),
            path: path.clone(),
            message: "a mapping or list cannot be used as a key".into(),
            hint: Some("keys are plain names such as `name:`".into()),
        });
        self.key(format!("<complex key at line {}>", span.start.line()), Pos::of(span));
    }

    fn key(&mut self, key: String, pos: Pos) {
        let mut problem = None;
        let splits = &self.splits;
        if let Some(Frame::Map { map, path, pending_key, key_order, blocks, .. }) = self.stack.last_mut() {
            let full = join_key(path, &key);
            let splittable = splits.iter().any(|(p, k)| p == path && *k == key);
            if splittable && map.contains_key(&key) {
                problem = Some(YamlProblem {
                    warning: true,
                    pos,
                    path: full.clone(),
                    message: format!("`{key}` appears again: read as the start of another block"),
                    hint: Some(format!("write `{path}` as a list of blocks (`- {key}: …`) to make this explicit")),
                });
                blocks.push(std::mem::take(map));
                key_order.clear();
            } else if map.contains_key(&key) || key_order.contains(&key) {
                let first = self.locations.keys.get(&full).copied().unwrap_or_default();
                problem = Some(YamlProblem {
                    warning: false,
                    pos,
                    path: full.clone(),
                    message: format!("duplicate key `{key}` (first defined at line {}, column {})", first.line, first.col),
                    hint: Some("a key may appear once per mapping; remove or rename one of them".into()),
                });
            }
            if !self.locations.keys.contains_key(&full) {
                self.locations.keys.insert(full, pos);
            }
            key_order.push(key.clone());
            *pending_key = Some((key, pos));
        }
        if let Some(p) = problem {
            self.problems.push(p);
        }
    }

    fn push_value(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(Node { value }),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, pending_key, .. }) => {
                if let Some((key, _)) = pending_key.take() {
                    // The first definition of a duplicate key wins; the duplicate was reported.
                    map.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// Resolve a scalar with the YAML 1.2 core schema.
fn scalar(text: &Cow<'_, str>, style: ScalarStyle, tag: Option<&str>) -> Value {
    if style != ScalarStyle::Plain || tag == Some("str") {
        return Value::String(text.to_string());
    }
    let t = text.as_ref();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(t) {
        return Value::Number(n);
    }
    if looks_like_float(t) {
        if let Ok(f) = t.parse::<f64>() {
            if let Some(n) = Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(t.to_string())
}

fn parse_int(t: &str) -> Option<Number> {
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()
    } else {
        None
    }?;
    Some(Number::from(if neg { -parsed } else { parsed }))
}

fn looks_like_float(t: &str) -> bool {
    let body = t.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_locations() {
        let doc = parse("a: 1\nb:\n  - x: true\n    y: '2'\n  - 1.5\nc: ~\n");
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        let v = doc.value.expect("value");
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"][0]["x"], true);
        assert_eq!(v["b"][0]["y"], "2");
        assert_eq!(v["b"][1], 1.5);
        assert!(v["c"].is_null());
        assert_eq!(doc.locations.value("b[0].y"), Pos { line: 4, col: 8 });
        assert_eq!(doc.locations.key("b[0].y"), Pos { line: 4, col: 5 });
        assert_eq!(doc.locations.value("b[1]"), Pos { line: 5, col: 5 });
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(doc.locations.value("b[0].zzz"), Pos { line: 3, col: 5 });
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let doc = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(doc.problems.len(), 1);
        assert_eq!(doc.problems[0].pos, Pos { line: 3, col: 1 });
        assert!(doc.problems[0].message.contains("first defined at line 1, column 1"));
        assert_eq!(doc.value.expect("value")["a"], 1);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let doc = parse("a: [1, 2\nb: 3\n");
        assert!(doc.value.is_none());
        assert_eq!(doc.problems.len(), 1);
        assert!(doc.problems[0].pos.line >= 1);
    }

    #[test]
    fn repeated_split_key_makes_blocks() {
        let text = "plugins:\n  ingestion:\n    type: dlt\n    type: airbyte\n    config: {a: 1}\n";
        let doc = parse_with(text, &[SplitOnRepeat { path: "plugins.ingestion", key: "type" }]);
        assert_eq!(doc.problems.len(), 1);
        assert!(doc.problems[0].warning);
        let v = doc.value.expect("value");
        assert_eq!(v["plugins"]["ingestion"][0]["type"], "dlt");
        assert_eq!(v["plugins"]["ingestion"][1]["type"], "airbyte");
        assert_eq!(v["plugins"]["ingestion"][1]["config"]["a"], 1);
    }

    #[test]
    fn anchors_and_aliases() {
        let doc = parse("base: &b {x: 1}\nother: *b\n");
        let v = doc.value.expect("value");
        assert_eq!(v["other"]["x"], 1);
    }
}
