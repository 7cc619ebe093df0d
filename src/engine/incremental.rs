//! Incremental loading, the same for every source: keep only rows whose cursor is greater
//! than the stored one, and remember the greatest cursor seen, so it can be committed with the
//! data. Vectorised over whole Arrow columns.
//!
//! Cursor values are stored as JSON: numbers as numbers, timestamps as RFC 3339 strings in
//! UTC (microseconds), dates as `YYYY-MM-DD`, text as text. Rows whose cursor is null are kept
//! (they cannot be compared), as dlt does with `on_cursor_value_missing: include`.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, Scalar, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, TimeUnit};
use serde_json::Value;

use crate::error::{code, IngestionError};

/// A cursor value in comparable form.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cursor {
    Int(i64),
    Float(f64),
    /// Microseconds since the epoch, UTC.
    Micros(i64),
    /// Days since the epoch.
    Date(i32),
    Text(String),
}

impl Cursor {
    fn to_json(&self) -> Value {
        match self {
            Cursor::Int(i) => Value::from(*i),
            Cursor::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cursor::Micros(us) => Value::String(micros_to_rfc3339(*us)),
            Cursor::Date(d) => Value::String(
                chrono::DateTime::from_timestamp(i64::from(*d) * 86_400, 0).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
            ),
            Cursor::Text(s) => Value::String(s.clone()),
        }
    }
}

pub fn micros_to_rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)).unwrap_or_default()
}

/// Parse an RFC 3339 (or naive, taken as UTC) timestamp to microseconds.
pub fn parse_micros(s: &str) -> Option<i64> {
    let tz: arrow_array::timezone::Tz = "+00:00".parse().ok()?;
    arrow_cast::parse::string_to_datetime(&tz, s).ok().map(|t| t.timestamp_micros())
}

/// Filters batches by the start cursor and tracks the greatest cursor seen.
#[derive(Debug)]
pub struct CursorTracker {
    column: String,
    start: Option<Value>,
    max: Option<Cursor>,
}

impl CursorTracker {
    pub fn new(column: &str, start: Option<Value>) -> Self {
        CursorTracker { column: column.to_string(), start: start.filter(|v| !v.is_null()), max: None }
    }

    /// The greatest cursor loaded so far, else the start value (so the state never goes back).
    pub fn max_json(&self) -> Option<Value> {
        self.max.as_ref().map(Cursor::to_json).or_else(|| self.start.clone())
    }

    /// Keep the rows past the start cursor; remember the greatest cursor kept.
    pub fn apply(&mut self, batch: RecordBatch) -> Result<RecordBatch, IngestionError> {
        let Some(idx) = batch.schema().index_of(&self.column).ok() else {
            return Err(IngestionError::configuration(
                code::INVALID_CONFIG,
                "floe",
                format!("incremental.cursor_column `{}` is not in the data (columns: {})", self.column, column_names(&batch)),
            ));
        };
        let col = comparable(batch.column(idx)).ok_or_else(|| {
            IngestionError::configuration(code::INVALID_CONFIG, "floe", format!("cursor column `{}` has type {} which cannot be a cursor", self.column, batch.column(idx).data_type()))
        })?;
        let batch = match &self.start {
            Some(start) => {
                let keep = greater_or_null(&col, start).map_err(|m| IngestionError::configuration(code::INVALID_CONFIG, "floe", format!("cursor `{}`: {m}", self.column)))?;
                arrow_select::filter::filter_record_batch(&batch, &keep).map_err(|e| IngestionError::permanent(code::SOURCE_ERROR, "floe", e.to_string()))?
            }
            None => batch,
        };
        if let Some(m) = column_max(&comparable(batch.column(idx)).unwrap_or(col)) {
            if self.max.as_ref().is_none_or(|cur| m > *cur) {
                self.max = Some(m);
            }
        }
        Ok(batch)
    }
}

fn column_names(batch: &RecordBatch) -> String {
    batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

/// Cast a cursor column to one of the comparable forms.
fn comparable(col: &ArrayRef) -> Option<ArrayRef> {
    let target = match col.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => DataType::Float64,
        DataType::Timestamp(_, tz) => {
            let micros = arrow_cast::cast(col, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone())).ok()?;
            return arrow_cast::cast(&micros, &DataType::Timestamp(TimeUnit::Microsecond, None)).ok();
        }
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        _ => return None,
    };
    arrow_cast::cast(col, &target).ok().map(|a| a as ArrayRef)
}

fn greater_or_null(col: &ArrayRef, start: &Value) -> Result<BooleanArray, String> {
    let bad = || format!("stored or initial cursor {start} does not match the column type {}", col.data_type());
    let gt = match col.data_type() {
        DataType::Int64 => {
            let v = start.as_i64().or_else(|| start.as_str().and_then(|s| s.parse().ok())).ok_or_else(bad)?;
            arrow_ord::cmp::gt(col, &Scalar::new(Int64Array::from(vec![v])))
        }
        DataType::Float64 => {
            let v = start.as_f64().or_else(|| start.as_str().and_then(|s| s.parse().ok())).ok_or_else(bad)?;
            arrow_ord::cmp::gt(col, &Scalar::new(Float64Array::from(vec![v])))
        }
        DataType::Timestamp(_, _) => {
            let v = start.as_str().and_then(parse_micros).or_else(|| start.as_i64()).ok_or_else(bad)?;
            arrow_ord::cmp::gt(col, &Scalar::new(TimestampMicrosecondArray::from(vec![v])))
        }
        DataType::Date32 => {
            let v = start
                .as_str()
                .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .and_then(|d| i32::try_from((d - chrono::NaiveDate::default()).num_days()).ok())
                .ok_or_else(bad)?;
            arrow_ord::cmp::gt(col, &Scalar::new(Date32Array::from(vec![v])))
        }
        _ => {
            let v = match start {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            arrow_ord::cmp::gt(col, &Scalar::new(StringArray::from(vec![v])))
        }
    }
    .map_err(|e| e.to_string())?;
    // Null cursors cannot be compared: keep those rows.
    Ok(BooleanArray::from_iter((0..gt.len()).map(|i| Some(gt.is_null(i) || gt.value(i)))))
}

fn column_max(col: &ArrayRef) -> Option<Cursor> {
    match col.data_type() {
        DataType::Int64 => arrow_arith::aggregate::max(col.as_primitive::<Int64Type>()).map(Cursor::Int),
        DataType::Float64 => arrow_arith::aggregate::max(col.as_primitive::<Float64Type>()).map(Cursor::Float),
        DataType::Timestamp(_, _) => arrow_arith::aggregate::max(col.as_primitive::<TimestampMicrosecondType>()).map(Cursor::Micros),
        DataType::Date32 => arrow_arith::aggregate::max(col.as_primitive::<Date32Type>()).map(Cursor::Date),
        DataType::Utf8 => arrow_arith::aggregate::max_string(col.as_string::<i32>()).map(|s| Cursor::Text(s.to_string())),
        _ => None,
    }
}

/// The start cursor for a run: the stored cursor minus the lag window (timestamps only),
/// else the configured initial value.
pub fn start_value(stored: Option<&Value>, initial: Option<&Value>, lag_seconds: Option<f64>) -> Option<Value> {
    match stored {
        Some(v) if !v.is_null() => match (v.as_str().and_then(parse_micros), lag_seconds) {
            (Some(us), Some(lag)) if lag > 0.0 => Some(Value::String(micros_to_rfc3339(us - (lag * 1e6) as i64))),
            _ => Some(v.clone()),
        },
        _ => initial.cloned(),
    }
}

/// Convenience for tests and sources: a batch with one column.
pub fn single_column_batch(name: &str, col: ArrayRef) -> Option<RecordBatch> {
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(name, col.data_type().clone(), true)]));
    RecordBatch::try_new(schema, vec![col]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_tracks_integers() {
        let mut t = CursorTracker::new("id", Some(Value::from(2)));
        let b = single_column_batch("id", Arc::new(Int64Array::from(vec![Some(1), Some(3), None, Some(2), Some(5)]))).expect("batch");
        let out = t.apply(b).expect("apply");
        assert_eq!(out.num_rows(), 3); // 3, null, 5
        assert_eq!(t.max_json(), Some(Value::from(5)));
    }

    #[test]
    fn timestamps_compare_in_utc() {
        let mut t = CursorTracker::new("ts", Some(Value::from("2024-01-01T00:00:00Z")));
        let arr = TimestampMicrosecondArray::from(vec![parse_micros("2023-12-31T23:59:59Z"), parse_micros("2024-01-01T00:00:01+00:00")]).with_timezone("+00:00");
        let out = t.apply(single_column_batch("ts", Arc::new(arr)).expect("batch")).expect("apply");
        assert_eq!(out.num_rows(), 1);
        assert_eq!(t.max_json(), Some(Value::from("2024-01-01T00:00:01Z")));
    }

    #[test]
    fn lag_moves_the_start_back() {
        let s = start_value(Some(&Value::from("2024-01-01T00:10:00Z")), None, Some(600.0));
        assert_eq!(s, Some(Value::from("2024-01-01T00:00:00Z")));
        assert_eq!(start_value(None, Some(&Value::from(7)), None), Some(Value::from(7)));
    }

    #[test]
    fn missing_cursor_column_is_a_configuration_error() {
        let mut t = CursorTracker::new("nope", None);
        let b = single_column_batch("id", Arc::new(Int64Array::from(vec![1]))).expect("batch");
        let e = t.apply(b).expect_err("error");
        assert_eq!(e.category, crate::error::Category::Configuration);
    }
}
