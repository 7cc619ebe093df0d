//! PostgreSQL's binary formats: the `COPY … (FORMAT binary)` stream and the binary `send`
//! form of each supported type, decoded straight into Arrow builders.
//!
//! Binary COPY is the fastest way out of PostgreSQL (no text formatting on the server, no
//! parsing here); each field is a length-prefixed big-endian value in the type's `send`
//! format. Everything that arrives from the server is checked: a short or malformed value is
//! an error, never a panic.

use super::columns::{BatchBuilder, Cell, Col};

/// How a column's binary value is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    /// `oid`: an unsigned 4-byte integer.
    Oid,
    Float4,
    Float8,
    /// `numeric` with a known scale, to Decimal128.
    Numeric(i8),
    /// UTF-8 text: text, varchar, char, name, json, enum labels, and columns cast to text.
    Text,
    /// `jsonb`: a version byte (1) then the JSON text.
    Jsonb,
    Bytea,
    Date,
    Time,
    Timestamp,
    Uuid,
    /// A one-dimensional array of the element layout.
    Array(Box<Wire>),
}

/// The 11-byte signature that opens a binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// Why a value could not be decoded: the column's index and a description.
#[derive(Debug)]
pub struct DecodeError {
    pub column: usize,
    pub message: String,
}

fn err(column: usize, message: impl Into<String>) -> DecodeError {
    DecodeError { column, message: message.into() }
}

/// What [`CopyParser::feed`] did with the bytes it was given.
pub struct Fed {
    /// Bytes used; the rest is an incomplete row to feed again with more data.
    pub consumed: usize,
    /// The trailer was seen: the stream is complete.
    pub done: bool,
}

/// Parses a binary COPY stream row by row into a [`BatchBuilder`].
pub struct CopyParser {
    wires: Vec<Wire>,
    header_done: bool,
}

impl CopyParser {
    pub fn new(wires: Vec<Wire>) -> CopyParser {
        CopyParser { wires, header_done: false }
    }

    /// Decode complete rows from `buf` into `batch` until the batch is full or only a partial
    /// row is left. Errors use column index `usize::MAX` for stream-level problems.
    pub fn feed(&mut self, buf: &[u8], batch: &mut BatchBuilder) -> Result<Fed, DecodeError> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(Fed { consumed: 0, done: false });
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(err(usize::MAX, "the server's COPY output is not in binary format"));
            }
            let ext = be_i32(&buf[SIGNATURE.len() + 4..]).unwrap_or(0);
            let ext = usize::try_from(ext).map_err(|_| err(usize::MAX, "bad COPY header"))?;
            let end = SIGNATURE.len() + 8 + ext;
            if buf.len() < end {
                return Ok(Fed { consumed: 0, done: false });
            }
            pos = end;
            self.header_done = true;
        }
        while !batch.is_full() {
            let rest = &buf[pos..];
            let Some(count) = be_i16(rest) else { break };
            if count == -1 {
                return Ok(Fed { consumed: pos + 2, done: true });
            }
            if usize::try_from(count).ok() != Some(self.wires.len()) {
                return Err(err(usize::MAX, format!("the server sent {count} fields, expected {}", self.wires.len())));
            }
            // Check the whole row is here before decoding any of it.
            let Some(len) = row_len(rest, self.wires.len()) else { break };
            let mut p = 2;
            for (i, wire) in self.wires.iter().enumerate() {
                let n = be_i32(&rest[p..]).unwrap_or(-1);
                p += 4;
                let col = &mut batch.cols[i];
                if n < 0 {
                    col.push(Cell::Null).map_err(|m| err(i, m.0))?;
                } else {
                    let n = n as usize;
                    decode(wire, &rest[p..p + n], col).map_err(|m| err(i, m))?;
                    p += n;
                }
            }
            batch.row_done();
            pos += len;
        }
        Ok(Fed { consumed: pos, done: false })
    }
}

/// The byte length of the row at the start of `buf`, if it is complete.
fn row_len(buf: &[u8], fields: usize) -> Option<usize> {
    let mut p = 2;
    for _ in 0..fields {
        let n = be_i32(buf.get(p..)?)?;
        p += 4;
        if n > 0 {
            p = p.checked_add(n as usize)?;
        }
    }
    (p <= buf.len()).then_some(p)
}

fn be_i16(b: &[u8]) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}

fn be_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn exact<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], String> {
    raw.try_into().map_err(|_| format!("a {what} value of {} bytes (expected {N})", raw.len()))
}

/// Decode one non-null value and append it to `col`.
pub fn decode(wire: &Wire, raw: &[u8], col: &mut Col) -> Result<(), String> {
    let cell = match wire {
        Wire::Bool => Cell::Bool(exact::<1>(raw, "boolean")?[0] != 0),
        Wire::Int2 => Cell::I16(i16::from_be_bytes(exact(raw, "smallint")?)),
        Wire::Int4 => Cell::I32(i32::from_be_bytes(exact(raw, "integer")?)),
        Wire::Int8 => Cell::I64(i64::from_be_bytes(exact(raw, "bigint")?)),
        Wire::Oid => Cell::I64(i64::from(u32::from_be_bytes(exact(raw, "oid")?))),
        Wire::Float4 => Cell::F32(f32::from_be_bytes(exact(raw, "real")?)),
        Wire::Float8 => Cell::F64(f64::from_be_bytes(exact(raw, "double precision")?)),
        Wire::Numeric(scale) => Cell::Decimal(numeric(raw, *scale)?),
        Wire::Text => Cell::Str(std::str::from_utf8(raw).map_err(|_| "text that is not valid UTF-8".to_string())?),
        Wire::Jsonb => match raw.split_first() {
            Some((1, json)) => Cell::Str(std::str::from_utf8(json).map_err(|_| "jsonb that is not valid UTF-8".to_string())?),
            _ => return Err("a jsonb value of an unknown version".into()),
        },
        Wire::Bytea => Cell::Bytes(raw),
        Wire::Date => {
            let d = i32::from_be_bytes(exact(raw, "date")?);
            if d == i32::MAX || d == i32::MIN {
                return Err("an infinite date, which has no Arrow form (map the column to string with type_overrides)".into());
            }
            Cell::Date(d.checked_add(PG_EPOCH_DAYS).ok_or("a date out of range")?)
        }
        Wire::Time => Cell::Time(i64::from_be_bytes(exact(raw, "time")?)),
        Wire::Timestamp => {
            let t = i64::from_be_bytes(exact(raw, "timestamp")?);
            if t == i64::MAX || t == i64::MIN {
                return Err("an infinite timestamp, which has no Arrow form (map the column to string with type_overrides)".into());
            }
            Cell::Micros(t.checked_add(PG_EPOCH_MICROS).ok_or("a timestamp out of range")?)
        }
        Wire::Uuid => {
            let b: [u8; 16] = exact(raw, "uuid")?;
            let mut buf = [0u8; 36];
            let text = format_uuid(&b, &mut buf);
            return col.push(Cell::Str(text)).map_err(|m| m.0);
        }
        Wire::Array(item) => return array(item, raw, col),
    };
    col.push(cell).map_err(|m| m.0)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case, written into `buf`.
fn format_uuid<'a>(b: &[u8; 16], buf: &'a mut [u8; 36]) -> &'a str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut o = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[o] = b'-';
            o += 1;
        }
        buf[o] = HEX[usize::from(byte >> 4)];
        buf[o + 1] = HEX[usize::from(byte & 0xf)];
        o += 2;
    }
    // Only ASCII hex digits and dashes were written.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// An array value: `ndim`, `has_null`, element oid, then per dimension (length, lower bound),
/// then each element length-prefixed.
fn array(item: &Wire, raw: &[u8], col: &mut Col) -> Result<(), String> {
    let short = || "a truncated array value".to_string();
    let ndim = be_i32(raw).ok_or_else(short)?;
    let list = col.list().map_err(|m| m.0)?;
    if ndim == 0 {
        list.close(true);
        return Ok(());
    }
    if ndim != 1 {
        return Err(format!("a {ndim}-dimensional array; only one-dimensional arrays load as lists (map the column to string with type_overrides)"));
    }
    let len = be_i32(raw.get(12..).ok_or_else(short)?).ok_or_else(short)?;
    let mut p = 20;
    for _ in 0..len.max(0) {
        let n = be_i32(raw.get(p..).ok_or_else(short)?).ok_or_else(short)?;
        p += 4;
        if n < 0 {
            list.items.push(Cell::Null).map_err(|m| m.0)?;
        } else {
            let end = p.checked_add(n as usize).ok_or_else(short)?;
            decode(item, raw.get(p..end).ok_or_else(short)?, &mut list.items)?;
            p = end;
        }
    }
    list.close(true);
    Ok(())
}

/// A binary `numeric` to an integer at `scale`: `ndigits`, `weight`, `sign`, `dscale`, then
/// `ndigits` base-10000 digits, the first worth 10000^weight.
pub fn numeric(raw: &[u8], scale: i8) -> Result<i128, String> {
    let short = || "a truncated numeric value".to_string();
    let ndigits = be_i16(raw).ok_or_else(short)?;
    let weight = i32::from(be_i16(raw.get(2..).ok_or_else(short)?).ok_or_else(short)?);
    let sign = be_i16(raw.get(4..).ok_or_else(short)?).ok_or_else(short)? as u16;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN, which a decimal cannot hold (map the column to string with type_overrides)".into()),
        _ => return Err("an infinite numeric, which a decimal cannot hold (map the column to string with type_overrides)".into()),
    }
    let overflow = || format!("a numeric value too large for decimal at scale {scale}");
    let inexact = || format!("a numeric value with more than {scale} decimal places");
    let bottom = -i32::from(scale); // the lowest decimal position kept
    let mut acc: i128 = 0;
    let mut low = 4 * weight + 4; // lowest decimal position accumulated so far
    for i in 0..i32::from(ndigits.max(0)) {
        let at = 8 + 2 * i as usize;
        let d = i128::from(be_i16(raw.get(at..).ok_or_else(short)?).ok_or_else(short)?);
        let group_low = 4 * (weight - i);
        if group_low >= bottom {
            acc = acc.checked_mul(10_000).and_then(|a| a.checked_add(d)).ok_or_else(overflow)?;
            low = group_low;
        } else if group_low + 3 >= bottom {
            // The group straddles the scale: keep its top digits, the rest must be zero.
            let keep = (group_low + 3 - bottom + 1) as u32;
            let div = 10i128.pow(4 - keep);
            if d % div != 0 {
                return Err(inexact());
            }
            acc = acc.checked_mul(10i128.pow(keep)).and_then(|a| a.checked_add(d / div)).ok_or_else(overflow)?;
            low = bottom;
        } else if d != 0 {
            return Err(inexact());
        }
    }
    if low > bottom {
        let shift = u32::try_from(low - bottom).map_err(|_| overflow())?;
        acc = super::values::pow10(shift).and_then(|p| acc.checked_mul(p)).ok_or_else(overflow)?;
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(weight: i16, negative: bool, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(digits.len() as i16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend_from_slice(&0i16.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_to_scaled_integers() {
        assert_eq!(numeric(&num(0, false, &[1, 5000]), 2).unwrap(), 150); // 1.5
        assert_eq!(numeric(&num(0, true, &[12, 3400]), 3).unwrap(), -12340); // -12.34
        assert_eq!(numeric(&num(1, false, &[12, 3456]), 0).unwrap(), 123_456); // 123456
        assert_eq!(numeric(&num(1, false, &[1]), 2).unwrap(), 1_000_000); // 10000
        assert_eq!(numeric(&num(-1, true, &[100]), 2).unwrap(), -1); // -0.01
        assert_eq!(numeric(&num(-2, false, &[500]), 6).unwrap(), 5); // 0.000005
        assert_eq!(numeric(&num(-2, false, &[5000]), 6).unwrap(), 50); // 0.00005
        assert_eq!(numeric(&num(0, false, &[]), 4).unwrap(), 0); // 0
        assert!(numeric(&num(0, false, &[1, 2500]), 1).is_err()); // 1.25 at scale 1
        let mut nan = num(0, false, &[]);
        nan[4] = 0xC0;
        assert!(numeric(&nan, 2).unwrap_err().contains("NaN"));
    }

    #[test]
    fn uuids_are_hyphenated() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
        let mut buf = [0u8; 36];
        assert_eq!(format_uuid(&b, &mut buf), "12345678-9abc-def0-0123-456789abcdef");
    }

    #[test]
    fn copy_stream_in_pieces() {
        use super::super::columns::Kind;
        let mut stream = SIGNATURE.to_vec();
        stream.extend_from_slice(&0i32.to_be_bytes());
        stream.extend_from_slice(&0i32.to_be_bytes());
        for (i, name) in [(1i64, Some("a")), (2, None)] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&8i32.to_be_bytes());
            stream.extend_from_slice(&i.to_be_bytes());
            match name {
                Some(n) => {
                    stream.extend_from_slice(&(n.len() as i32).to_be_bytes());
                    stream.extend_from_slice(n.as_bytes());
                }
                None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let mut batch = BatchBuilder::new(&[("id".into(), Kind::I64), ("name".into(), Kind::Text)], 10);
        let mut parser = CopyParser::new(vec![Wire::Int8, Wire::Text]);
        // Feed one byte more each time, as a network might deliver it.
        let mut pending: Vec<u8> = Vec::new();
        let mut done = false;
        for b in &stream {
            pending.push(*b);
            let fed = parser.feed(&pending, &mut batch).unwrap();
            pending.drain(..fed.consumed);
            done |= fed.done;
        }
        assert!(done);
        let rb = batch.finish().unwrap();
        assert_eq!(rb.num_rows(), 2);
        assert_eq!(rb.column(1).null_count(), 1);
    }
}
