//! Where file bytes become Arrow: JSON lines, CSV and Parquet decoded straight into record
//! batches by arrow-json, arrow-csv and parquet (no per-row dynamic values on the hot path).
//!
//! JSON lines and CSV are cut into chunks of whole lines (about 4 MiB) that are decoded on
//! every core and emitted in file order (`chunks`).
//!
//! Schema inference (documented in the README): JSON lines and CSV infer their schema from
//! the first chunk of each file (its first 4 MiB of whole lines; JSON lines carry the schema
//! on to the next file of the load). A later chunk that does not fit (a new
//! field, an integer column that turns fractional) widens the schema: new fields are added,
//! int + float becomes float, anything + string becomes string; the destination then adds the
//! new columns in the same commit. JSON strings that all look like RFC 3339 timestamps become
//! timestamps (UTC). A record that still cannot be decoded is *rejected*: counted and named
//! in the report (PARTIAL), never loaded as a silent null.

use std::borrow::Cow;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use super::chunks::{self, CHUNK_BYTES, Chunk, ChunkOutput, ChunkReader};

/// Records decoded, and records rejected with a few reasons.
#[derive(Debug, Default)]
pub struct Decoded {
    pub rows: u64,
    pub rejected: u64,
    pub samples: Vec<String>,
}

impl Decoded {
    /// Adds another part's counts and (up to five) samples.
    pub fn absorb(&mut self, other: Decoded) {
        self.rows += other.rows;
        self.rejected += other.rejected;
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
    }

    fn reject(&mut self, n: u64, reason: impl FnOnce() -> String) {
        self.rejected += n;
        if self.samples.len() < 5 {
            self.samples.push(reason());
        }
    }
}

/// Where decoded batches go; an error stops decoding (the load was aborted).
pub type Emit<'a> = dyn FnMut(RecordBatch) -> Result<(), crate::error::IngestionError> + 'a;

/// Why a file could not be decoded at all.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Aborted(#[from] crate::error::IngestionError),
}

// ---------------------------------------------------------------------------------------------
// JSON lines

/// Decode a JSON lines file on every core (see [`super::chunks`]). `schema` carries the
/// (widening) schema across files of a load.
pub fn jsonl(reader: impl Read + Send, schema: &mut Option<SchemaRef>, batch_size: usize, file: &str, emit: &mut Emit<'_>) -> Result<Decoded, DecodeError> {
    jsonl_chunked(reader, schema, batch_size, CHUNK_BYTES, chunks::workers(), file, emit)
}

/// [`jsonl`] with a chosen chunk size and number of workers (tests and fuzzing use tiny
/// chunks so that chunk-to-chunk widening and reordering run on small inputs).
pub fn jsonl_chunked(
    reader: impl Read + Send,
    schema: &mut Option<SchemaRef>,
    batch_size: usize,
    chunk_bytes: usize,
    workers: usize,
    file: &str,
    emit: &mut Emit<'_>,
) -> Result<Decoded, DecodeError> {
    let shared = Mutex::new(schema.take());
    let first = |head: &Chunk| {
        let mut known = shared.lock().unwrap_or_else(PoisonError::into_inner);
        if known.is_none() {
            *known = Some(infer_json_lenient(&head.bytes, file)?);
        }
        Ok(())
    };
    let decode = |chunk: &Chunk| jsonl_chunk(chunk, &shared, batch_size, file);
    let result = chunks::decode_ordered(ChunkReader::new(reader, chunk_bytes), workers, file, first, decode, emit);
    *schema = shared.into_inner().unwrap_or_else(PoisonError::into_inner);
    result
}

/// The schema of a first chunk. Some lines may be broken: infer from those that parse (the
/// others are rejected later); a chunk where none parses is not JSON lines at all.
fn infer_json_lenient(chunk: &[u8], file: &str) -> Result<SchemaRef, DecodeError> {
    match infer_json(chunk) {
        Ok(s) => Ok(s),
        Err(e) => chunk
            .split(|b| *b == b'\n')
            .filter_map(|line| infer_json(line).ok())
            .reduce(|acc, s| Arc::new(widen_schema(&acc, &s)))
            .ok_or_else(|| DecodeError::Corrupt(format!("{file}: not JSON lines: {e}"))),
    }
}

/// One chunk of JSON lines, decoded with the schema known so far; a chunk that does not fit
/// widens it (for the chunks that follow too).
fn jsonl_chunk(chunk: &Chunk, shared: &Mutex<Option<SchemaRef>>, batch_size: usize, file: &str) -> Result<ChunkOutput, DecodeError> {
    let known = shared.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let Some(start) = known else {
        return Err(DecodeError::Corrupt(format!("{file}: no schema inferred")));
    };
    let bytes = &chunk.bytes;
    let batch_size = chunk.batch_rows(batch_size);
    let mut current = start.clone();
    let mut out = ChunkOutput::default();
    if decode_json_exact(bytes, &mut current, batch_size, file, &mut out.decoded, &mut |b| {
        out.batches.push(b);
        Ok(())
    })
    .is_err()
    {
        // Start over: widen with what this chunk holds, then try again.
        out = ChunkOutput::default();
        current = match infer_json(bytes) {
            Ok(chunk_schema) => Arc::new(widen_schema(&current, &chunk_schema)),
            // Some line is not JSON at all: widen with the lines that are.
            Err(_) => bytes.split(|b| *b == b'\n').filter_map(|line| infer_json(line).ok()).fold(current.clone(), |acc, s| Arc::new(widen_schema(&acc, &s))),
        };
        let mut widened = current.clone();
        let retry = decode_json_exact(bytes, &mut widened, batch_size, file, &mut out.decoded, &mut |b| {
            out.batches.push(b);
            Ok(())
        });
        if retry.is_err() {
            out = ChunkOutput::default();
            let mut batches = Vec::new();
            json_line_by_line(bytes, &current, chunk.first_line, file, &mut out.decoded, &mut |b| {
                batches.push(b);
                Ok(())
            })?;
            out.batches = batches;
        } else {
            current = widened;
        }
    }
    if current != start {
        let mut known = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let merged = match known.as_ref() {
            Some(k) => Arc::new(widen_schema(k, &current)),
            None => current,
        };
        *known = Some(merged);
    }
    Ok(out)
}

fn emit_all(batches: Vec<RecordBatch>, out: &mut Decoded, emit: &mut Emit<'_>) -> Result<(), DecodeError> {
    for b in batches {
        out.rows += b.num_rows() as u64;
        emit(b)?;
    }
    Ok(())
}

/// Decode a chunk of JSON lines with `schema`, checking integers exactly.
///
/// arrow-json would silently truncate `5.5` read into an integer column, so top-level
/// integer columns are read as text and converted here: a column holding fractions widens
/// to a float (the schema is updated), and a value that is no number at all rejects its row.
fn decode_json_exact(
    chunk: &[u8],
    schema: &mut SchemaRef,
    batch_size: usize,
    file: &str,
    out: &mut Decoded,
    emit: &mut Emit<'_>,
) -> Result<(), arrow_schema::ArrowError> {
    let wire: SchemaRef = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| if f.data_type() == &DataType::Int64 { Field::new(f.name(), DataType::Utf8, true) } else { f.as_ref().clone() })
            .collect::<Vec<_>>(),
    ));
    let batches = decode_json_chunk(chunk, &wire, batch_size)?;
    for batch in batches {
        let mut columns = Vec::with_capacity(batch.num_columns());
        let mut bad: Option<arrow_array::BooleanArray> = None;
        let mut widened = false;
        for (col, field) in batch.columns().iter().zip(schema.fields().iter()) {
            if field.data_type() != &DataType::Int64 {
                columns.push(col.clone());
                continue;
            }
            let ints = arrow_cast::cast(col, &DataType::Int64)?;
            if ints.null_count() == col.null_count() {
                columns.push(ints);
                continue;
            }
            let floats = arrow_cast::cast(col, &DataType::Float64)?;
            let (kept, lost) = if floats.null_count() == col.null_count() {
                widened = true;
                (floats, None)
            } else {
                let lost = arrow_array::BooleanArray::from_iter((0..col.len()).map(|i| Some(col.is_valid(i) && floats.is_null(i))));
                (floats, Some(lost))
            };
            if let Some(lost) = lost {
                bad = Some(match bad {
                    Some(b) => arrow_arith::boolean::or(&b, &lost)?,
                    None => lost,
                });
                widened = true;
            }
            columns.push(kept);
        }
        if widened {
            let fields: Vec<Field> = schema.fields().iter().zip(&columns).map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true)).collect();
            *schema = Arc::new(Schema::new(fields));
        }
        let mut typed = RecordBatch::try_new(schema.clone(), columns)?;
        if let Some(bad) = bad {
            let n = bad.true_count() as u64;
            out.reject(n, || format!("{file}: {n} record(s) with a non-numeric value in a numeric field"));
            typed = arrow_select::filter::filter_record_batch(&typed, &arrow_arith::boolean::not(&bad)?)?;
        }
        out.rows += typed.num_rows() as u64;
        emit(typed).map_err(|e| arrow_schema::ArrowError::ExternalError(Box::new(e)))?;
    }
    Ok(())
}

fn decode_json_chunk(chunk: &[u8], schema: &SchemaRef, batch_size: usize) -> Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
    let mut decoder =
        arrow_json::ReaderBuilder::new(schema.clone()).with_batch_size(batch_size).with_strict_mode(true).with_coerce_primitive(true).build_decoder()?;
    let mut batches = Vec::new();
    let mut rest = chunk;
    while !rest.is_empty() {
        let used = decoder.decode(rest)?;
        rest = &rest[used..];
        if let Some(b) = decoder.flush()? {
            batches.push(b);
        }
        if used == 0 && !rest.is_empty() {
            break;
        }
    }
    if let Some(b) = decoder.flush()? {
        batches.push(b);
    }
    Ok(batches)
}

/// The slow path for a chunk with bad records: decode each line alone, keep the good ones.
/// Line numbers count every line of the file, blank ones included.
fn json_line_by_line(chunk: &[u8], schema: &SchemaRef, first_line: u64, file: &str, out: &mut Decoded, emit: &mut Emit<'_>) -> Result<(), DecodeError> {
    let mut good = Vec::new();
    let mut dummy = Decoded::default();
    for (i, line) in chunk.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line_no = first_line + i as u64;
        let mut line_schema = schema.clone();
        let mut rows = Vec::new();
        let r = decode_json_exact(line, &mut line_schema, 1, file, &mut dummy, &mut |b| {
            rows.push(b);
            Ok(())
        });
        match r {
            Ok(()) if line_schema.as_ref() == schema.as_ref() => good.append(&mut rows),
            Ok(()) => out.reject(1, || format!("{file}:{line_no}: a value does not fit its column's type")),
            Err(e) => out.reject(1, || format!("{file}:{line_no}: {}", short(&e.to_string()))),
        }
    }
    out.rejected += dummy.rejected;
    if !good.is_empty() {
        let merged = arrow_select::concat::concat_batches(schema, &good).map_err(|e| DecodeError::Corrupt(format!("{file}: {e}")))?;
        emit_all(vec![merged], out, emit)?;
    }
    Ok(())
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s.to_string() }
}

/// Infer a schema from JSON lines, turning timestamp-like strings into timestamps.
fn infer_json(chunk: &[u8]) -> Result<SchemaRef, arrow_schema::ArrowError> {
    let (schema, _) = arrow_json::reader::infer_json_schema(std::io::Cursor::new(chunk), None)?;
    let ts_fields = timestamp_like_fields(chunk, &schema);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if ts_fields.contains(f.name()) {
                Field::new(f.name(), DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true)
            } else {
                f.as_ref().clone().with_nullable(true)
            }
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Top-level string fields whose sampled values all parse as RFC 3339 timestamps.
fn timestamp_like_fields(chunk: &[u8], schema: &Schema) -> Vec<String> {
    let candidates: Vec<&String> = schema.fields().iter().filter(|f| f.data_type() == &DataType::Utf8).map(|f| f.name()).collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut ok: Vec<(String, bool, bool)> = candidates.iter().map(|c| ((*c).clone(), true, false)).collect();
    // A sample is enough: a later value that does not parse rejects that record loudly.
    for line in chunk.split(|b| *b == b'\n').take(200) {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        for (name, all, seen) in ok.iter_mut() {
            match obj.get(name.as_str()) {
                Some(serde_json::Value::String(s)) => {
                    *seen = true;
                    if !looks_like_timestamp(s) {
                        *all = false;
                    }
                }
                Some(serde_json::Value::Null) | None => {}
                Some(_) => *all = false,
            }
        }
    }
    ok.into_iter().filter(|(_, all, seen)| *all && *seen).map(|(n, _, _)| n).collect()
}

fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        // Fix (found by fuzz/ jsonl): compare bytes; `s[19..]` panicked when byte 19 fell
        // inside a multi-byte character (e.g. "2024-01-01T00:00:0é0+05:00"), crashing the run.
        && (s.ends_with('Z') || b[19..].contains(&b'+') || b[19..].contains(&b'-'))
        && arrow_cast::parse::string_to_datetime(&chrono_utc(), s).is_ok()
}

fn chrono_utc() -> arrow_array::timezone::Tz {
    // "+00:00" always parses.
    "+00:00".parse().unwrap_or_else(|_| unreachable!("static timezone"))
}

/// Merge two schemas, widening types so that both fit.
pub fn widen_schema(a: &Schema, b: &Schema) -> Schema {
    Schema::new(widen_fields(a.fields(), b.fields()))
}

fn widen_fields(a: &Fields, b: &Fields) -> Vec<Field> {
    let mut out: Vec<Field> = a.iter().map(|f| f.as_ref().clone()).collect();
    for fb in b.iter() {
        match out.iter_mut().find(|f| f.name() == fb.name()) {
            Some(fa) => {
                let t = widen_type(fa.data_type(), fb.data_type());
                *fa = Field::new(fa.name(), t, true);
            }
            None => out.push(fb.as_ref().clone().with_nullable(true)),
        }
    }
    out
}

fn widen_type(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    match (a, b) {
        (x, y) if x == y => x.clone(),
        (Null, y) => y.clone(),
        (x, Null) => x.clone(),
        (Int64 | Float64, Int64 | Float64) => Float64,
        (Struct(fa), Struct(fb)) => Struct(Fields::from(widen_fields(fa, fb))),
        (List(ea), List(eb)) => {
            let t = widen_type(ea.data_type(), eb.data_type());
            List(Arc::new(Field::new(ea.name(), t, true)))
        }
        (Timestamp(_, _), Utf8) | (Utf8, Timestamp(_, _)) => Utf8,
        (x @ (Struct(_) | List(_)), _) => x.clone(),
        _ => Utf8,
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// CSV options from the config.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub has_header: bool,
}

/// Decode a CSV file on every core (see [`super::chunks`]). The schema is inferred per file
/// from its first chunk.
pub fn csv(reader: impl Read + Send, opts: CsvOptions, batch_size: usize, file: &str, emit: &mut Emit<'_>) -> Result<Decoded, DecodeError> {
    csv_chunked(reader, opts, batch_size, CHUNK_BYTES, chunks::workers(), file, emit)
}

/// [`csv`] with a chosen chunk size and number of workers (tests and fuzzing).
pub fn csv_chunked(
    reader: impl Read + Send,
    opts: CsvOptions,
    batch_size: usize,
    chunk_bytes: usize,
    workers: usize,
    file: &str,
    emit: &mut Emit<'_>,
) -> Result<Decoded, DecodeError> {
    let schema: OnceLock<SchemaRef> = OnceLock::new();
    let first = |head: &Chunk| {
        let data = without_blank_lines(&head.bytes);
        let fmt = arrow_csv::reader::Format::default().with_header(opts.has_header).with_delimiter(opts.delimiter);
        let (s, _) = fmt.infer_schema(std::io::Cursor::new(data.as_ref()), None).map_err(|e| DecodeError::Corrupt(format!("{file}: not CSV: {e}")))?;
        let _ = schema.set(Arc::new(Schema::new(s.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>())));
        Ok(())
    };
    let decode = |chunk: &Chunk| {
        let Some(schema) = schema.get() else {
            return Err(DecodeError::Corrupt(format!("{file}: no schema inferred")));
        };
        // Only the first chunk starts with the header line.
        let opts = CsvOptions { has_header: opts.has_header && chunk.seq == 0, ..opts };
        let mut out = ChunkOutput::default();
        // Only the file's last chunk can end inside quotes (chunks are cut outside them): a
        // malformed record, rejected rather than loaded as the rest of the file in one value.
        let mut bytes = chunk.bytes.as_slice();
        if chunk.open_quote {
            let end = chunks::quoted_lines(bytes, b'"', opts.delimiter).last_newline.map_or(0, |i| i + 1);
            let line = chunk.first_line + memchr::memchr_iter(b'\n', &bytes[..end]).count() as u64;
            out.decoded.reject(1, || format!("{file}:{line}: a quoted field is not closed before the end of the file"));
            bytes = &bytes[..end];
        }
        let data = without_blank_lines(bytes);
        if data.is_empty() {
            return Ok(out);
        }
        let batch_size = chunk.batch_rows(batch_size);
        match decode_csv_chunk(&data, schema, opts, batch_size) {
            Ok(batches) => {
                out.decoded.rows = batches.iter().map(|b| b.num_rows() as u64).sum();
                out.batches = batches;
            }
            Err(_) => csv_as_text_then_cast(&data, schema, opts, batch_size, file, &mut out.decoded, &mut |b| {
                out.batches.push(b);
                Ok(())
            })?,
        }
        Ok(out)
    };
    // arrow-csv reads `"` as the quote character.
    chunks::decode_ordered(ChunkReader::new(reader, chunk_bytes).with_quote(b'"', opts.delimiter), workers, file, first, decode, emit)
}

/// The chunk without its blank lines (which CSV would read as one-field records); borrowed
/// when it has none, the usual case.
fn without_blank_lines(chunk: &[u8]) -> Cow<'_, [u8]> {
    let blank = |line: &[u8]| line.iter().all(u8::is_ascii_whitespace);
    // A blank line is one whose first byte is whitespace (then checked whole): cheap to rule out.
    let mut any = chunk.first().is_some_and(u8::is_ascii_whitespace);
    if !any {
        any = memchr::memchr_iter(b'\n', chunk).any(|i| chunk.get(i + 1).is_some_and(|b| b.is_ascii_whitespace() && blank(line_at(chunk, i + 1))));
    }
    if !any {
        return Cow::Borrowed(chunk);
    }
    let mut kept = Vec::with_capacity(chunk.len());
    for line in chunk.split_inclusive(|b| *b == b'\n') {
        if !blank(line) {
            kept.extend_from_slice(line);
        }
    }
    Cow::Owned(kept)
}

fn line_at(chunk: &[u8], start: usize) -> &[u8] {
    let rest = &chunk[start..];
    &rest[..memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1)]
}

fn decode_csv_chunk(data: &[u8], schema: &SchemaRef, opts: CsvOptions, batch_size: usize) -> Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
    let mut decoder =
        arrow_csv::ReaderBuilder::new(schema.clone()).with_header(opts.has_header).with_delimiter(opts.delimiter).with_batch_size(batch_size).build_decoder();
    let mut batches = Vec::new();
    let mut rest = data;
    // Flush only a full batch, never between two calls that split a record: arrow-csv 58
    // accepts a flush in the middle of a record's first field and then reads its field
    // offsets past its buffer (an out-of-bounds read in a release build; found by the fuzz
    // smoke on `a\nb\nc` without a final newline).
    loop {
        let used = decoder.decode(rest)?;
        rest = &rest[used..];
        if decoder.capacity() == 0
            && let Some(b) = decoder.flush()?
        {
            batches.push(b);
        }
        if rest.is_empty() || used == 0 {
            break;
        }
    }
    // An empty decode() call marks the end of input.
    decoder.decode(&[])?;
    if let Some(b) = decoder.flush()? {
        batches.push(b);
    }
    Ok(batches)
}

/// The slow path: read the chunk with every column as text, cast to the inferred types, and
/// reject the rows where a non-empty value did not convert.
fn csv_as_text_then_cast(
    data: &[u8],
    schema: &SchemaRef,
    opts: CsvOptions,
    batch_size: usize,
    file: &str,
    out: &mut Decoded,
    emit: &mut Emit<'_>,
) -> Result<(), DecodeError> {
    let text_schema: SchemaRef = Arc::new(Schema::new(schema.fields().iter().map(|f| Field::new(f.name(), DataType::Utf8, true)).collect::<Vec<_>>()));
    let batches = decode_csv_chunk(data, &text_schema, opts, batch_size).map_err(|e| DecodeError::Corrupt(format!("{file}: {e}")))?;
    for text in batches {
        let mut columns = Vec::with_capacity(text.num_columns());
        let mut bad = arrow_array::BooleanArray::from(vec![false; text.num_rows()]);
        for (col, field) in text.columns().iter().zip(schema.fields()) {
            let cast = arrow_cast::cast(col, field.data_type()).map_err(|e| DecodeError::Corrupt(format!("{file}: {e}")))?;
            // Non-null text that became null did not convert.
            let lost = arrow_array::BooleanArray::from_iter((0..col.len()).map(|i| Some(col.is_valid(i) && cast.is_null(i))));
            bad = arrow_arith::boolean::or(&bad, &lost).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
            columns.push(cast);
        }
        let typed = RecordBatch::try_new(schema.clone(), columns).map_err(|e| DecodeError::Corrupt(format!("{file}: {e}")))?;
        let n_bad = bad.true_count() as u64;
        if n_bad > 0 {
            out.reject(n_bad, || format!("{file}: {n_bad} row(s) with values that do not match the inferred column types"));
        }
        let keep = arrow_arith::boolean::not(&bad).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        let kept = arrow_select::filter::filter_record_batch(&typed, &keep).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        emit_all(vec![kept], out, emit)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Parquet

/// Decode a Parquet file, row group by row group.
pub fn parquet(file_bytes: ParquetInput, batch_size: usize, file: &str, emit: &mut Emit<'_>) -> Result<Decoded, DecodeError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |e: parquet::errors::ParquetError| DecodeError::Corrupt(format!("{file}: not a readable Parquet file: {e}"));
    let reader: Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>> = match file_bytes {
        ParquetInput::File(f) => Box::new(ParquetRecordBatchReaderBuilder::try_new(f).map_err(corrupt)?.with_batch_size(batch_size).build().map_err(corrupt)?),
        ParquetInput::Bytes(b) => Box::new(ParquetRecordBatchReaderBuilder::try_new(b).map_err(corrupt)?.with_batch_size(batch_size).build().map_err(corrupt)?),
    };
    let mut out = Decoded::default();
    for batch in reader {
        let batch = batch.map_err(|e| DecodeError::Corrupt(format!("{file}: {e}")))?;
        emit_all(vec![batch], &mut out, emit)?;
    }
    Ok(out)
}

/// A Parquet file in place (local) or in memory (object storage).
pub enum ParquetInput {
    File(std::fs::File),
    Bytes(bytes::Bytes),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(f: impl FnOnce(&mut Emit<'_>) -> Result<Decoded, DecodeError>) -> (Vec<RecordBatch>, Decoded) {
        let mut batches = Vec::new();
        let d = f(&mut |b| {
            batches.push(b);
            Ok(())
        })
        .expect("decode");
        (batches, d)
    }

    #[test]
    fn jsonl_widens_and_rejects() {
        let text = "{\"a\": 1, \"t\": \"2024-01-01T00:00:00Z\"}\n{\"a\": 2}\n\n{\"a\": 3, \"b\": \"new\"}\n{\"a\": 4,\n{\"a\": 5.5}\n{\"a\": 6}\n";
        let mut schema = None;
        // Chunks of about two lines, on two workers: the third line brings a new field, the
        // fifth (after a blank line) is broken, the sixth widens `a` to a float.
        let (batches, d) = collect(|e| jsonl_chunked(text.as_bytes(), &mut schema, 2, 40, 2, "x.jsonl", e));
        assert_eq!((d.rows, d.rejected), (5, 1), "{:?}", d.samples);
        assert!(d.samples[0].starts_with("x.jsonl:5:"), "{:?}", d.samples);
        // The schema carried on to the next file holds every widening, whichever chunk
        // finished first.
        let carried = schema.expect("schema");
        assert_eq!(carried.field_with_name("a").expect("a").data_type(), &DataType::Float64);
        assert!(carried.field_with_name("b").is_ok());
        assert!(batches.iter().any(|b| b.schema().field_with_name("b").is_ok()));
        assert!(matches!(batches[0].schema().field_with_name("t").expect("t").data_type(), DataType::Timestamp(TimeUnit::Microsecond, Some(_))));
    }

    #[test]
    fn csv_rejects_rows_that_do_not_fit() {
        let text = "id,name,amount\n1,a,1.5\n2,b,2.5\n3,c,oops\n";
        // The chunk of 2 infers amount as float; the second chunk has a bad value.
        let (batches, d) = collect(|e| csv_chunked(text.as_bytes(), CsvOptions { delimiter: b',', has_header: true }, 2, 30, 2, "x.csv", e));
        assert_eq!(d.rows, 2);
        assert_eq!(d.rejected, 1);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        assert_eq!(batches[0].schema().field(2).data_type(), &DataType::Float64);
    }

    #[test]
    fn csv_rejects_an_unterminated_quote_at_the_end() {
        let text = "id,name\n1,a\n2,\"b\n3";
        let (batches, d) = collect(|e| csv_chunked(text.as_bytes(), CsvOptions { delimiter: b',', has_header: true }, 8, 1 << 20, 2, "x.csv", e));
        assert_eq!((d.rows, d.rejected), (1, 1), "{:?}", d.samples);
        assert!(d.samples[0].starts_with("x.csv:3:"), "{:?}", d.samples);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }

    #[test]
    fn csv_last_record_without_newline_in_small_batches() {
        // Found by the fuzz smoke: flushing mid-record made arrow-csv read past its buffer.
        for text in ["a\nb\nc", "a\nb\"\nc", "h\n1\n2\n3\n4\n5"] {
            let (batches, d) = collect(|e| csv_chunked(text.as_bytes(), CsvOptions { delimiter: b',', has_header: true }, 3, 1 << 20, 1, "x.csv", e));
            let expected = text.lines().count() as u64 - 1;
            assert_eq!(d.rows, expected, "{text:?}");
            assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>() as u64, expected);
        }
    }

    #[test]
    fn corrupt_parquet_is_reported() {
        let r = parquet(ParquetInput::Bytes(bytes::Bytes::from_static(b"not parquet")), 10, "x.parquet", &mut |_| Ok(()));
        assert!(matches!(r, Err(DecodeError::Corrupt(m)) if m.contains("x.parquet")));
    }
}
