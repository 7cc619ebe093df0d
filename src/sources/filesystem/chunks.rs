//! Line-oriented files (JSON lines, CSV) decoded on every core, in order.
//!
//! One thread cuts the file into chunks of whole lines (a few MiB each, cut at the last
//! newline), a worker per core decodes chunks into Arrow batches, and the calling thread
//! emits each chunk's batches in file order: merge's "last row of a key wins" and the line
//! numbers in rejection messages both depend on that order. At most `workers + 1` chunks are
//! in flight (read, decoding, or decoded and waiting for their turn), so memory is bounded
//! by the chunk size, not by the file, and a slow writer slows the reader down.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel, sync_channel};

use arrow_array::RecordBatch;

use super::decode::{DecodeError, Decoded, Emit};

/// Bytes per chunk: large enough that per-chunk work (decoder set-up, one batch per chunk)
/// is noise, small enough that the chunks in flight stay a few tens of MiB.
pub const CHUNK_BYTES: usize = 4 << 20;

/// A run of whole lines from a file.
pub struct Chunk {
    /// Position in the file, from 0.
    pub seq: u64,
    /// Line number (1-based) of the first line.
    pub first_line: u64,
    /// Lines in the chunk (a last line without a newline counts).
    pub lines: usize,
    /// The file ends inside a quoted field (CSV; only the last chunk can).
    pub open_quote: bool,
    pub bytes: Vec<u8>,
}

impl Chunk {
    /// Rows to size a decoder for: its batch size, or fewer when the chunk holds fewer lines
    /// (decoders allocate for a full batch up front: 65,536 rows of a wide JSON record is
    /// tens of MiB per worker, for a chunk of ten thousand lines).
    pub fn batch_rows(&self, batch_size: usize) -> usize {
        batch_size.min(self.lines).max(1)
    }
}

/// What a worker made of one chunk.
#[derive(Default)]
pub struct ChunkOutput {
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`, and the records rejected.
    pub decoded: Decoded,
}

/// Reads whole-line chunks of about `target` bytes. A line longer than `target` makes a
/// bigger chunk; the last chunk may lack a final newline.
pub struct ChunkReader<R> {
    reader: R,
    target: usize,
    /// CSV's quote and delimiter: a newline inside a quoted field does not end a line.
    quote: Option<(u8, u8)>,
    carry: Vec<u8>,
    seq: u64,
    next_line: u64,
    eof: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(reader: R, target: usize) -> Self {
        ChunkReader { reader, target: target.max(1), quote: None, carry: Vec::new(), seq: 0, next_line: 1, eof: false }
    }

    /// Cut only at newlines outside quoted fields (CSV; see [`quoted_lines`]).
    pub fn with_quote(mut self, quote: u8, delimiter: u8) -> Self {
        self.quote = Some((quote, delimiter));
        self
    }

    /// Where the chunk may end: after its last newline (outside quoted fields, for CSV).
    fn cut(&self, buf: &[u8]) -> Option<usize> {
        match self.quote {
            None => memchr::memrchr(b'\n', buf),
            Some((q, d)) => quoted_lines(buf, q, d).last_newline,
        }
    }

    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        self.next_chunk_in(Vec::new())
    }

    /// The next chunk, in `spare` (a used chunk's buffer: reusing it spares the page faults
    /// of a fresh multi-MiB allocation per chunk).
    pub fn next_chunk_in(&mut self, mut buf: Vec<u8>) -> std::io::Result<Option<Chunk>> {
        buf.clear();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let base = self.target;
        buf.reserve(self.target.saturating_sub(buf.len()) + 1);
        loop {
            // Fill to the target, then cut at the last newline; without one, read on.
            while !self.eof && buf.len() < self.target {
                let start = buf.len();
                buf.resize(self.target, 0);
                let n = match self.reader.read(&mut buf[start..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                    Err(e) => {
                        buf.truncate(start);
                        return Err(e);
                    }
                };
                buf.truncate(start + n);
                if n == 0 {
                    self.eof = true;
                }
            }
            if self.eof {
                break;
            }
            if let Some(last) = self.cut(&buf) {
                self.carry.extend_from_slice(&buf[last + 1..]);
                buf.truncate(last + 1);
                break;
            }
            // One line longer than the target: grow the chunk.
            self.target = self.target.saturating_mul(2);
        }
        // A long line grew this chunk only.
        self.target = base;
        if buf.is_empty() {
            return Ok(None);
        }
        // Chunks are cut outside quotes: only the file's end can be inside one.
        let open_quote = self.eof && self.quote.is_some_and(|(q, d)| quoted_lines(&buf, q, d).open_quote);
        let newlines = memchr::memchr_iter(b'\n', &buf).count();
        let lines = newlines + usize::from(buf.last() != Some(&b'\n'));
        let chunk = Chunk { seq: self.seq, first_line: self.next_line, lines, open_quote, bytes: buf };
        self.seq += 1;
        self.next_line += newlines as u64;
        Ok(Some(chunk))
    }
}

/// Where lines end in CSV text that starts at a record boundary.
pub struct QuotedLines {
    /// The last newline outside quotes.
    pub last_newline: Option<usize>,
    /// The text ends inside a quoted field (an unterminated quote, if it is the file's end).
    pub open_quote: bool,
}

/// Scans `buf` for newlines outside quoted fields, the way csv-core reads them: a `quote`
/// opens a quoted field only at the start of a field (after a `delimiter`, a newline or at
/// the start of the text), anywhere else it is an ordinary character; inside a quoted field
/// `""` is an escaped quote and a lone quote closes the field. `buf` starts at a record
/// boundary.
pub fn quoted_lines(buf: &[u8], quote: u8, delimiter: u8) -> QuotedLines {
    // One pass, a byte at a time: the obvious memchr hopping from quote to quote is slower on
    // real CSV, where a JSON column puts a `""` every few bytes (measured: 12% of a load's CPU
    // before, 3% now). `prev_starts_field` says whether a quote here would open a field.
    let mut inside = false;
    let mut last_newline = None;
    let mut prev_starts_field = true;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if inside {
            if b == quote {
                if buf.get(i + 1) == Some(&quote) {
                    i += 2;
                    continue;
                }
                inside = false;
            }
            prev_starts_field = false;
        } else if b == b'\n' {
            last_newline = Some(i);
            prev_starts_field = true;
        } else if b == quote && prev_starts_field {
            inside = true;
            prev_starts_field = false;
        } else {
            prev_starts_field = b == delimiter || b == b'\r';
        }
        i += 1;
    }
    QuotedLines { last_newline, open_quote: inside }
}

/// How many decoding threads to use.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 8)
}

/// Decodes every chunk from `chunks` with `decode` on `workers` threads and emits the batches
/// in file order on the calling thread. `first` sees the first chunk before any decoding
/// starts (schema inference). A decode error or a failed emit stops everything.
pub fn decode_ordered<R, D>(
    mut chunks: ChunkReader<R>,
    workers: usize,
    file: &str,
    first: impl FnOnce(&Chunk) -> Result<(), DecodeError>,
    decode: D,
    emit: &mut Emit<'_>,
) -> Result<Decoded, DecodeError>
where
    R: Read + Send,
    D: Fn(&Chunk) -> Result<ChunkOutput, DecodeError> + Sync,
{
    let read_error = |e: std::io::Error| DecodeError::Corrupt(format!("{file}: read failed: {e}"));
    let Some(head) = chunks.next_chunk().map_err(read_error)? else {
        return Ok(Decoded::default());
    };
    first(&head)?;
    let workers = workers.max(1);
    let stop = AtomicBool::new(false);
    // Permits bound the chunks in flight: the reader takes one per chunk, the emitter gives
    // it back once the chunk's batches are out.
    let (permit_tx, permit_rx) = sync_channel::<()>(workers + 1);
    let (work_tx, work_rx) = sync_channel::<Chunk>(0);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = channel::<(u64, Result<ChunkOutput, DecodeError>)>();
    let read_failure: Mutex<Option<DecodeError>> = Mutex::new(None);
    // Buffers of decoded chunks, for the reader to fill again.
    let spare: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        {
            let stop = &stop;
            let read_failure = &read_failure;
            let spare = &spare;
            scope.spawn(move || {
                let mut next = Some(head);
                while let Some(chunk) = next.take() {
                    if stop.load(Ordering::Relaxed) || permit_tx.send(()).is_err() || work_tx.send(chunk).is_err() {
                        return;
                    }
                    let buf = spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
                    match chunks.next_chunk_in(buf) {
                        Ok(c) => next = c,
                        Err(e) => {
                            if let Ok(mut slot) = read_failure.lock() {
                                *slot = Some(read_error(e));
                            }
                            return;
                        }
                    }
                }
            });
        }
        for _ in 0..workers {
            let (work_rx, done_tx, decode, stop, spare) = (&work_rx, done_tx.clone(), &decode, &stop, &spare);
            // A worker runs until the reader hangs up; once stopped it drains without decoding,
            // so the reader is never left blocked on a chunk nobody takes.
            scope.spawn(move || {
                loop {
                    let chunk = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(chunk) = chunk else { return };
                    if stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    let result = decode(&chunk);
                    if let Ok(mut s) = spare.lock()
                        && s.len() <= workers
                    {
                        s.push(chunk.bytes);
                    }
                    if done_tx.send((chunk.seq, result)).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
        drop(done_tx);
        let result = emit_in_order(done_rx, permit_rx, emit);
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        result
    })
    .and_then(|decoded| match read_failure.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(decoded),
    })
}

/// The emitting side: reorders finished chunks and emits them in sequence. Dropping the
/// receivers on return unblocks the reader and the workers.
fn emit_in_order(done: Receiver<(u64, Result<ChunkOutput, DecodeError>)>, permits: Receiver<()>, emit: &mut Emit<'_>) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    let mut waiting: BTreeMap<u64, ChunkOutput> = BTreeMap::new();
    let mut next = 0u64;
    // Ends when every worker has hung up: the reader finished (or failed) and all is decoded.
    while let Ok((seq, result)) = done.recv() {
        waiting.insert(seq, result?);
        while let Some(output) = waiting.remove(&next) {
            out.absorb(output.decoded);
            for batch in output.batches {
                emit(batch)?;
            }
            next += 1;
            // The reader may be waiting for this permit.
            let _ = permits.try_recv();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cut_at_newlines_and_count_lines() {
        let text = b"aaaa\nbb\ncccccccccc\nd\n\ne";
        let mut r = ChunkReader::new(&text[..], 6);
        let mut got = Vec::new();
        while let Some(c) = r.next_chunk().expect("read") {
            got.push((c.seq, c.first_line, String::from_utf8(c.bytes).expect("utf8")));
        }
        assert_eq!(got, vec![(0, 1, "aaaa\n".to_string()), (1, 2, "bb\n".to_string()), (2, 3, "cccccccccc\n".to_string()), (3, 4, "d\n\ne".to_string()),]);
    }

    #[test]
    fn csv_chunks_never_cut_inside_quotes() {
        let record = "b,\"say \"\"hi\"\"\nthere\"\n";
        let text = format!("a,\"x\ny\"\n{}c,z\n", record.repeat(5));
        let mut r = ChunkReader::new(text.as_bytes(), 4).with_quote(b'"', b',');
        let mut got = Vec::new();
        while let Some(c) = r.next_chunk().expect("read") {
            got.push(String::from_utf8(c.bytes).expect("utf8"));
        }
        assert!(got.len() > 3, "{got:?}");
        assert_eq!(got.concat(), text);
        for chunk in &got {
            assert_eq!(chunk.matches('"').count() % 2, 0, "cut inside quotes: {chunk:?}");
        }
    }

    #[test]
    fn quotes_open_fields_only_at_their_start() {
        // A 5" screen: a quote inside an unquoted field is an ordinary character.
        let scan = quoted_lines(b"a,5\" screen\nb,\"x\ny\"\n", b'"', b',');
        assert_eq!((scan.last_newline, scan.open_quote), (Some(19), false));
        let scan = quoted_lines(b"a,\"x\"\"y\nz", b'"', b',');
        assert_eq!((scan.last_newline, scan.open_quote), (None, true));
        let scan = quoted_lines(b"a;\"x\ny\"\n", b'"', b';');
        assert_eq!((scan.last_newline, scan.open_quote), (Some(7), false));
    }

    /// The memchr-hopping scan `quoted_lines` replaced (kept as the reference: it was fuzzed
    /// against arrow-csv).
    fn quoted_lines_by_hops(buf: &[u8], quote: u8, delimiter: u8) -> (Option<usize>, bool) {
        let (mut inside, mut last_newline, mut i) = (false, None, 0);
        while i < buf.len() {
            if inside {
                let Some(j) = memchr::memchr(quote, &buf[i..]) else { break };
                let k = i + j;
                if buf.get(k + 1) == Some(&quote) {
                    i = k + 2;
                } else {
                    inside = false;
                    i = k + 1;
                }
            } else {
                let Some(j) = memchr::memchr2(quote, b'\n', &buf[i..]) else { break };
                let k = i + j;
                if buf[k] == b'\n' {
                    last_newline = Some(k);
                } else if k == 0 || matches!(buf[k - 1], b'\n' | b'\r') || buf[k - 1] == delimiter {
                    inside = true;
                }
                i = k + 1;
            }
        }
        (last_newline, inside)
    }

    #[test]
    fn byte_scan_agrees_with_the_reference_on_random_text() {
        let alphabet = b"a,;\"\n\r";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..20_000 {
            let len = case % 40;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            for delimiter in [b',', b';'] {
                let scan = quoted_lines(&text, b'"', delimiter);
                assert_eq!((scan.last_newline, scan.open_quote), quoted_lines_by_hops(&text, b'"', delimiter), "{:?}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn emits_in_file_order_whatever_finishes_first() {
        let text: String = (0..2000).map(|i| format!("{i}\n")).collect();
        let decode = |c: &Chunk| {
            // Later chunks finish first.
            std::thread::sleep(std::time::Duration::from_micros(200u64.saturating_sub(c.seq * 7)));
            let values: Vec<i64> = std::str::from_utf8(&c.bytes).expect("utf8").lines().map(|l| l.parse().expect("int")).collect();
            let array = arrow_array::Int64Array::from(values);
            let batch = RecordBatch::try_from_iter([("v", std::sync::Arc::new(array) as arrow_array::ArrayRef)]).expect("batch");
            let decoded = Decoded { rows: batch.num_rows() as u64, ..Decoded::default() };
            Ok(ChunkOutput { batches: vec![batch], decoded })
        };
        let mut seen = Vec::new();
        let d = decode_ordered(ChunkReader::new(text.as_bytes(), 64), 4, "x", |_| Ok(()), decode, &mut |b| {
            let col = b.column(0).as_any().downcast_ref::<arrow_array::Int64Array>().expect("ints").clone();
            seen.extend(col.values().iter().copied());
            Ok(())
        })
        .expect("decode");
        assert_eq!(d.rows, 2000);
        assert_eq!(seen, (0..2000).collect::<Vec<i64>>());
    }

    #[test]
    fn a_failing_chunk_stops_the_file() {
        let text: String = (0..500).map(|i| format!("{i}\n")).collect();
        let decode = |c: &Chunk| {
            if c.seq == 3 { Err(DecodeError::Corrupt("bad chunk".into())) } else { Ok(ChunkOutput::default()) }
        };
        let r = decode_ordered(ChunkReader::new(text.as_bytes(), 32), 2, "x", |_| Ok(()), decode, &mut |_| Ok(()));
        assert!(matches!(r, Err(DecodeError::Corrupt(m)) if m == "bad chunk"));
    }
}
