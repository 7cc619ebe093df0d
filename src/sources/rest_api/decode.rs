//! JSON records → Arrow record batches, with the destination's schema rules.
//!
//! Records are held until a batch is full (`batch_size` records, or 4 MiB of response
//! bodies), then the batch's types are inferred and merged into the schema of earlier
//! batches:
//! - objects become structs, arrays lists, integers `Int64`, other numbers `Float64`,
//!   strings that are all RFC 3339 timestamps `Timestamp(µs, UTC)`, other strings `Utf8`;
//! - a field first seen in a later page is a new column (the destination adds it);
//! - integers widen to floats; within one batch other mixes become text (objects and lists
//!   as JSON text), as the filesystem source does;
//! - a type that earlier batches already had does not change otherwise: a record whose value
//!   does not fit (text in a timestamp column, an object where a number was) is rejected,
//!   counted with a reason that names the field, never loaded as a silent null;
//! - fields that are null in every record so far carry no type yet and are left out of the
//!   batch (the destination treats a missing column as null).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::{Map, Value};

use crate::error::{code, IngestionError};

/// Bodies held before a batch is sent regardless of its row count (bounds memory: parsed
/// JSON values take several times their text, so 4 MiB of bodies is some 30 MB held).
const MAX_PENDING_BYTES: usize = 4 << 20;
/// Rejection reasons kept for the report.
const MAX_SAMPLES: usize = 5;

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// Accumulates records and turns them into batches.
#[derive(Debug)]
pub struct Decoder {
    /// The merged (sticky) top-level fields, including still-untyped (`Null`) ones.
    fields: Vec<Field>,
    pending: Vec<Value>,
    pending_bytes: usize,
    batch_size: usize,
    /// Records seen so far (for rejection messages).
    seen: u64,
    pub rejected: u64,
    pub samples: Vec<String>,
    what: String,
    source: &'static str,
}

impl Decoder {
    pub fn new(what: String, source: &'static str, batch_size: usize) -> Decoder {
        Decoder { fields: Vec::new(), pending: Vec::new(), pending_bytes: 0, batch_size: batch_size.max(1), seen: 0, rejected: 0, samples: Vec::new(), what, source }
    }

    /// Add a page's records; true when a batch is due.
    pub fn push(&mut self, records: Vec<Value>, bytes: usize) -> bool {
        self.pending.extend(records.into_iter().map(|r| match r {
            Value::Object(_) => r,
            // dlt wraps scalars the same way.
            other => Value::Object(Map::from_iter([("value".to_string(), other)])),
        }));
        self.pending_bytes += bytes;
        self.pending.len() >= self.batch_size || self.pending_bytes >= MAX_PENDING_BYTES
    }

    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(reason);
        }
    }

    /// Decode what is held into one batch (None when nothing is held or everything was
    /// rejected).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, IngestionError> {
        let records = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if records.is_empty() {
            return Ok(None);
        }
        // 1. The batch's own types, permissively merged; 2. merged into the sticky schema.
        let mut batch_type = DataType::Struct(Fields::empty());
        for r in &records {
            batch_type = merge_in_batch(&batch_type, &infer(r));
        }
        let DataType::Struct(batch_fields) = batch_type else { return Ok(None) };
        let mut merged = DataType::Struct(Fields::from(std::mem::take(&mut self.fields)));
        merged = merge_sticky(&merged, &DataType::Struct(batch_fields));
        if let DataType::Struct(f) = &merged {
            self.fields = f.iter().map(|f| f.as_ref().clone()).collect();
        }
        // 3. What this batch carries: typed fields only.
        let Some(DataType::Struct(emitted)) = emitted_type(&merged) else {
            for _ in &records {
                self.seen += 1;
                let n = self.seen;
                self.reject(format!("{}: record {n} has no non-null field", self.what));
            }
            return Ok(None);
        };
        let emit_type = DataType::Struct(emitted.clone());
        let mut good = Vec::with_capacity(records.len());
        for r in records {
            self.seen += 1;
            match conform(r, &emit_type, "") {
                Ok(v) => good.push(v),
                Err(reason) => {
                    let n = self.seen;
                    self.reject(format!("{}: record {n}: {reason}", self.what));
                }
            }
        }
        if good.is_empty() {
            return Ok(None);
        }
        let schema = Arc::new(Schema::new(emitted));
        match decode(&schema, &good) {
            Ok(batch) => Ok(Some(batch)),
            // Should not happen once values conform; decode one by one to isolate the rows.
            Err(_) => {
                let mut kept = Vec::new();
                let first = self.seen - good.len() as u64;
                for (i, v) in good.into_iter().enumerate() {
                    match decode(&schema, std::slice::from_ref(&v)) {
                        Ok(_) => kept.push(v),
                        Err(_) => self.reject(format!("{}: record {}: a value cannot be decoded under the merged schema", self.what, first + i as u64 + 1)),
                    }
                }
                if kept.is_empty() {
                    return Ok(None);
                }
                decode(&schema, &kept).map(Some).map_err(|e| IngestionError::permanent(code::SOURCE_ERROR, self.source, format!("{}: {e}", self.what)))
            }
        }
    }
}

fn decode(schema: &Arc<Schema>, rows: &[Value]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut d = arrow_json::ReaderBuilder::new(schema.clone()).with_batch_size(rows.len().max(1)).build_decoder()?;
    d.serialize(rows)?;
    Ok(d.flush()?.unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

/// The type of one JSON value.
pub fn infer(v: &Value) -> DataType {
    match v {
        Value::Null => DataType::Null,
        Value::Bool(_) => DataType::Boolean,
        Value::Number(n) if n.is_i64() => DataType::Int64,
        // Beyond i64: text keeps every digit.
        Value::Number(n) if n.is_u64() => DataType::Utf8,
        Value::Number(_) => DataType::Float64,
        Value::String(s) if looks_like_timestamp(s) => timestamp_type(),
        Value::String(_) => DataType::Utf8,
        Value::Array(a) => {
            let item = a.iter().fold(DataType::Null, |acc, x| merge_in_batch(&acc, &infer(x)));
            DataType::List(Arc::new(Field::new_list_field(item, true)))
        }
        Value::Object(m) => DataType::Struct(m.iter().map(|(k, x)| Field::new(k, infer(x), true)).collect()),
    }
}

/// RFC 3339 with a time zone (what APIs send for instants).
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b.len() <= 40 && b[4] == b'-' && b[7] == b'-' && matches!(b[10], b'T' | b't' | b' ') && b[13] == b':' && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn merge_fields(a: &Fields, b: &Fields, f: fn(&DataType, &DataType) -> DataType) -> Fields {
    let mut out: Vec<Field> = a.iter().map(|x| x.as_ref().clone()).collect();
    for fb in b.iter() {
        match out.iter_mut().find(|x| x.name() == fb.name()) {
            Some(fa) => *fa = Field::new(fa.name(), f(fa.data_type(), fb.data_type()), true),
            None => out.push(fb.as_ref().clone().with_nullable(true)),
        }
    }
    Fields::from(out)
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

/// Within one batch nothing has been sent yet: any mix has a type that holds both.
fn merge_in_batch(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    match (a, b) {
        (x, y) if x == y => x.clone(),
        (Null, y) => y.clone(),
        (x, Null) => x.clone(),
        (Int64 | Float64, Int64 | Float64) => Float64,
        (Struct(fa), Struct(fb)) => Struct(merge_fields(fa, fb, merge_in_batch)),
        (List(ea), List(eb)) => list_of(merge_in_batch(ea.data_type(), eb.data_type())),
        _ => Utf8,
    }
}

/// Earlier batches were sent with `old`: only widen what the destination can widen.
fn merge_sticky(old: &DataType, new: &DataType) -> DataType {
    use DataType::*;
    match (old, new) {
        (x, y) if x == y => x.clone(),
        (Null, y) => y.clone(),
        (x, Null) => x.clone(),
        (Int64 | Float64, Int64 | Float64) => Float64,
        (Struct(fa), Struct(fb)) => Struct(merge_fields(fa, fb, merge_sticky)),
        (List(ea), List(eb)) => list_of(merge_sticky(ea.data_type(), eb.data_type())),
        (x, _) => x.clone(),
    }
}

/// The type a batch carries: untyped (`Null`) fields, lists of them and empty structs left out.
fn emitted_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Null => None,
        DataType::Struct(fields) => {
            let kept: Vec<Field> = fields.iter().filter_map(|f| emitted_type(f.data_type()).map(|t| Field::new(f.name(), t, true))).collect();
            (!kept.is_empty()).then(|| DataType::Struct(Fields::from(kept)))
        }
        DataType::List(item) => emitted_type(item.data_type()).map(list_of),
        other => Some(other.clone()),
    }
}

fn what_is(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Boolean => "a boolean",
        DataType::Int64 => "an integer",
        DataType::Float64 => "a number",
        DataType::Timestamp(_, _) => "an RFC 3339 timestamp",
        DataType::Struct(_) => "an object",
        DataType::List(_) => "a list",
        _ => "text",
    }
}

/// Make `v` decodable as `t`, or say why it is not (naming the field, never the value).
fn conform(v: Value, t: &DataType, at: &str) -> Result<Value, String> {
    let bad = |v: &Value| Err(format!("field `{}`: expected {}, found {}", if at.is_empty() { "(record)" } else { at }, type_name(t), what_is(v)));
    match (t, v) {
        (_, Value::Null) => Ok(Value::Null),
        (DataType::Utf8, Value::String(s)) => Ok(Value::String(s)),
        (DataType::Utf8, other) => Ok(Value::String(other.to_string())),
        (DataType::Boolean, Value::Bool(b)) => Ok(Value::Bool(b)),
        (DataType::Int64, Value::Number(n)) if n.is_i64() => Ok(Value::Number(n)),
        (DataType::Int64, Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(Value::String(s)),
        (DataType::Float64, Value::Number(n)) => Ok(Value::Number(n)),
        (DataType::Float64, Value::String(s)) if s.trim().parse::<f64>().is_ok() => Ok(Value::String(s)),
        (DataType::Timestamp(_, _), Value::String(s)) if chrono::DateTime::parse_from_rfc3339(&s).is_ok() => Ok(Value::String(s)),
        (DataType::Struct(fields), Value::Object(mut m)) => {
            let mut out = Map::new();
            for f in fields.iter() {
                if let Some(x) = m.remove(f.name()) {
                    let path = if at.is_empty() { f.name().clone() } else { format!("{at}.{}", f.name()) };
                    out.insert(f.name().clone(), conform(x, f.data_type(), &path)?);
                }
            }
            // Keys left in `m` are null-only fields not carried by this batch.
            Ok(Value::Object(out))
        }
        (DataType::List(item), Value::Array(a)) => {
            let path = format!("{}[]", if at.is_empty() { "(record)" } else { at });
            Ok(Value::Array(a.into_iter().map(|x| conform(x, item.data_type(), &path)).collect::<Result<_, _>>()?))
        }
        (_, other) => bad(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use serde_json::json;

    fn dec() -> Decoder {
        Decoder::new("resource t".into(), "rest_api", 100)
    }

    #[test]
    fn nested_objects_become_structs_and_lists() {
        let mut d = dec();
        d.push(vec![json!({"id": 1, "user": {"login": "a"}, "labels": [{"name": "bug"}], "at": "2024-01-02T03:04:05Z", "none": null})], 10);
        let b = d.flush().expect("flush").expect("batch");
        let s = b.schema();
        assert!(matches!(s.field_with_name("user").expect("user").data_type(), DataType::Struct(_)));
        assert!(matches!(s.field_with_name("labels").expect("labels").data_type(), DataType::List(_)));
        assert_eq!(s.field_with_name("at").expect("at").data_type(), &timestamp_type());
        assert!(s.field_with_name("none").is_err());
    }

    #[test]
    fn later_batches_add_columns_widen_numbers_and_reject_misfits() {
        let mut d = dec();
        d.push(vec![json!({"id": 1, "at": "2024-01-02T03:04:05Z", "n": 1})], 10);
        d.flush().expect("flush").expect("batch");
        d.push(vec![json!({"id": 2, "at": "2024-01-03T00:00:00Z", "n": 1.5, "new": "x"}), json!({"id": 3, "at": "not a time"}), json!({"id": {"x": 1}})], 10);
        let b = d.flush().expect("flush").expect("batch");
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema().field_with_name("n").expect("n").data_type(), &DataType::Float64);
        assert!(b.schema().field_with_name("new").is_ok());
        assert_eq!(b.column(b.schema().index_of("id").expect("id")).as_primitive::<Int64Type>().value(0), 2);
        assert_eq!(d.rejected, 2);
        assert!(d.samples[0].contains("record 3") && d.samples[0].contains("`at`"), "{:?}", d.samples);
        assert!(d.samples[1].contains("`id`"), "{:?}", d.samples);
    }

    #[test]
    fn mixes_within_a_batch_become_text() {
        let mut d = dec();
        d.push(vec![json!({"v": 1}), json!({"v": "a"}), json!({"v": {"k": 1}}), json!(5)], 10);
        let b = d.flush().expect("flush").expect("batch");
        let col = b.column(b.schema().index_of("v").expect("v")).as_string::<i32>();
        assert_eq!((col.value(0), col.value(1), col.value(2)), ("1", "a", "{\"k\":1}"));
        assert_eq!(b.column(b.schema().index_of("value").expect("value")).as_primitive::<Int64Type>().value(3), 5);
        assert_eq!(d.rejected, 0);
    }
}
