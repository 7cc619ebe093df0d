//! The physical limit of a file → Parquet load on this machine: the same file decoded by
//! arrow-json / arrow-csv / parquet and written as zstd Parquet by the parquet crate alone,
//! with no catalog, no schema conversion and no engine around it. floe cannot beat this; the
//! benchmark reports floe's time as a multiple of it.
//!
//!     cargo run --release --example limit -- --format jsonl|csv|parquet [--threads N]
//!         [--batch-size 65536] INPUT OUT_DIR
//!
//! With N threads the input is split into N byte ranges at line boundaries (JSONL, CSV) or
//! into N sets of row groups (Parquet), and each thread writes its own file. Decoding makes
//! the same choices as floe: schema inferred from the first batch, ISO-8601 strings with a
//! zone read as UTC microsecond timestamps, batches of 64k rows, zstd at its default level,
//! row groups of up to 1Mi rows.
//!
//! Prints one line: `rows=R seconds=S decode_cpu=D write_cpu=W` (D and W summed over threads).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Jsonl,
    Csv,
    Parquet,
}

struct Args {
    format: Format,
    threads: usize,
    batch_size: usize,
    input: PathBuf,
    out_dir: PathBuf,
}

/// What one thread did.
#[derive(Default)]
struct Work {
    rows: usize,
    decode: Duration,
    write: Duration,
}

fn parse_args() -> Result<Args, Error> {
    let mut format = None;
    let mut threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut batch_size = 65_536;
    let mut positional = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => {
                format = Some(match it.next().as_deref() {
                    Some("jsonl") => Format::Jsonl,
                    Some("csv") => Format::Csv,
                    Some("parquet") => Format::Parquet,
                    other => return Err(format!("--format: expected jsonl, csv or parquet, got {other:?}").into()),
                })
            }
            "--threads" => threads = it.next().ok_or("--threads needs a value")?.parse()?,
            "--batch-size" => batch_size = it.next().ok_or("--batch-size needs a value")?.parse()?,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [input, out_dir]: [PathBuf; 2] = positional.try_into().map_err(|_| "usage: limit --format F [--threads N] INPUT OUT_DIR")?;
    Ok(Args { format: format.ok_or("--format is required")?, threads: threads.max(1), batch_size, input, out_dir })
}

fn writer_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(1024 * 1024))
        .build()
}

/// An RFC 3339 timestamp with a zone, as floe's inference recognises one.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') && b[13] == b':' && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

/// The inferred schema with timestamp-like string columns (judged on `sample`, the first
/// record's value of each field) turned into UTC microsecond timestamps.
fn with_timestamps(schema: &Schema, sample: impl Fn(&str) -> Option<String>) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let is_ts = f.data_type() == &DataType::Utf8 && sample(f.name()).is_some_and(|v| looks_like_timestamp(&v));
            if is_ts {
                Field::new(f.name(), DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true)
            } else {
                f.as_ref().clone().with_nullable(true)
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The first `lines` lines of a text file.
fn head(path: &Path, lines: usize) -> Result<Vec<u8>, Error> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    for _ in 0..lines {
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
    }
    Ok(buf)
}

fn infer(args: &Args) -> Result<SchemaRef, Error> {
    let sample = head(&args.input, args.batch_size)?;
    match args.format {
        Format::Jsonl => {
            let (schema, _) = arrow_json::reader::infer_json_schema(std::io::Cursor::new(&sample), None)?;
            let first_line = sample.split(|b| *b == b'\n').next().unwrap_or_default();
            let first: serde_json::Value = serde_json::from_slice(first_line)?;
            Ok(with_timestamps(&schema, |name| first.get(name).and_then(|v| v.as_str()).map(str::to_string)))
        }
        Format::Csv => {
            let format = arrow_csv::reader::Format::default().with_header(true);
            let (schema, _) = format.infer_schema(std::io::Cursor::new(&sample), None)?;
            let first = csv_first_record(&sample).unwrap_or_default();
            Ok(with_timestamps(&schema, |name| schema.index_of(name).ok().and_then(|i| first.get(i).cloned())))
        }
        Format::Parquet => Err("a Parquet file carries its schema".into()),
    }
}

/// The first data record of a CSV sample, split naively (enough to spot a timestamp column).
fn csv_first_record(sample: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(sample).ok()?;
    let line = text.lines().nth(1)?;
    Some(line.split(',').map(str::to_string).collect())
}

/// Byte ranges of `path`, split into `n` at line boundaries; the CSV header is left out.
fn split_ranges(path: &Path, n: usize, skip_header: bool) -> Result<Vec<(u64, u64)>, Error> {
    let len = std::fs::metadata(path)?.len();
    let mut reader = BufReader::new(File::open(path)?);
    let mut scratch = Vec::new();
    let mut start = 0;
    if skip_header {
        start = reader.read_until(b'\n', &mut scratch)? as u64;
    }
    let mut cuts = vec![start];
    for i in 1..n {
        let guess = (start + (len - start) * i as u64 / n as u64).max(*cuts.last().unwrap_or(&0));
        reader.seek(SeekFrom::Start(guess))?;
        scratch.clear();
        let skipped = reader.read_until(b'\n', &mut scratch)? as u64;
        cuts.push((guess + skipped).min(len));
    }
    cuts.push(len);
    Ok(cuts.windows(2).map(|w| (w[0], w[1])).filter(|(a, b)| a < b).collect())
}

/// Decode one byte range of a text file and write it to `out`.
fn text_range(format: Format, path: &Path, range: (u64, u64), schema: &SchemaRef, batch_size: usize, out: &Path) -> Result<Work, Error> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(range.0))?;
    let mut input = BufReader::with_capacity(1 << 20, file.take(range.1 - range.0));
    let mut writer = ArrowWriter::try_new(File::create(out)?, schema.clone(), Some(writer_props()))?;
    let mut work = Work::default();
    let mut write = |batch: RecordBatch, work: &mut Work| -> Result<(), Error> {
        let t = Instant::now();
        work.rows += batch.num_rows();
        writer.write(&batch)?;
        work.write += t.elapsed();
        Ok(())
    };
    // Both decoders take input in arbitrary pieces and keep a partial record for the next.
    enum Decoder {
        Json(arrow_json::reader::Decoder),
        Csv(arrow_csv::reader::Decoder),
    }
    let mut decoder = match format {
        Format::Jsonl => Decoder::Json(arrow_json::ReaderBuilder::new(schema.clone()).with_batch_size(batch_size).build_decoder()?),
        _ => Decoder::Csv(arrow_csv::ReaderBuilder::new(schema.clone()).with_header(false).with_batch_size(batch_size).build_decoder()),
    };
    loop {
        let t = Instant::now();
        let buf = input.fill_buf()?;
        let eof = buf.is_empty();
        let (used, full) = match &mut decoder {
            Decoder::Json(d) => {
                let used = d.decode(buf)?;
                (used, d.len() >= batch_size)
            }
            Decoder::Csv(d) => {
                let used = d.decode(buf)?;
                (used, d.capacity() == 0)
            }
        };
        input.consume(used);
        let batch = if full || eof {
            match &mut decoder {
                Decoder::Json(d) => d.flush()?,
                Decoder::Csv(d) => d.flush()?,
            }
        } else {
            None
        };
        work.decode += t.elapsed();
        if let Some(b) = batch {
            write(b, &mut work)?;
        }
        if eof {
            break;
        }
    }
    let t = Instant::now();
    writer.close()?;
    work.write += t.elapsed();
    Ok(work)
}

/// Decode the row groups `groups` of a Parquet file and write them to `out`.
fn parquet_groups(path: &Path, groups: Vec<usize>, batch_size: usize, out: &Path) -> Result<Work, Error> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    let schema = builder.schema().clone();
    let mut reader = builder.with_row_groups(groups).with_batch_size(batch_size).build()?;
    let mut writer = ArrowWriter::try_new(File::create(out)?, schema, Some(writer_props()))?;
    let mut work = Work::default();
    loop {
        let t = Instant::now();
        let next = reader.next().transpose()?;
        work.decode += t.elapsed();
        let Some(batch) = next else { break };
        let t = Instant::now();
        work.rows += batch.num_rows();
        writer.write(&batch)?;
        work.write += t.elapsed();
    }
    let t = Instant::now();
    writer.close()?;
    work.write += t.elapsed();
    Ok(work)
}

fn run(args: &Args) -> Result<Vec<Work>, Error> {
    std::fs::create_dir_all(&args.out_dir)?;
    let out = |i: usize| args.out_dir.join(format!("part-{i}.parquet"));
    std::thread::scope(|s| {
        let handles: Vec<_> = match args.format {
            Format::Parquet => {
                let groups = ParquetRecordBatchReaderBuilder::try_new(File::open(&args.input)?)?.metadata().num_row_groups();
                (0..args.threads.min(groups.max(1)))
                    .map(|i| {
                        let mine: Vec<usize> = (i..groups).step_by(args.threads).collect();
                        let out = out(i);
                        s.spawn(move || parquet_groups(&args.input, mine, args.batch_size, &out))
                    })
                    .collect()
            }
            format => {
                let schema = infer(args)?;
                split_ranges(&args.input, args.threads, format == Format::Csv)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, range)| {
                        let (schema, out) = (schema.clone(), out(i));
                        s.spawn(move || text_range(format, &args.input, range, &schema, args.batch_size, &out))
                    })
                    .collect()
            }
        };
        handles.into_iter().map(|h| h.join().map_err(|_| Error::from("a worker thread panicked"))?).collect()
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("limit: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    match run(&args) {
        Ok(works) => {
            let rows: usize = works.iter().map(|w| w.rows).sum();
            let decode: f64 = works.iter().map(|w| w.decode.as_secs_f64()).sum();
            let write: f64 = works.iter().map(|w| w.write.as_secs_f64()).sum();
            println!("rows={rows} seconds={:.3} decode_cpu={decode:.3} write_cpu={write:.3}", start.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("limit: {e}");
            std::process::exit(1);
        }
    }
}
