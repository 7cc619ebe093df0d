//! Value conversions shared by the databases: decimal text to a scaled integer, calendar
//! dates and times to the Arrow epoch units, and the incremental cursor to SQL parameters.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// `10^n` as i128, for n ≤ 38.
pub fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Parse decimal text (`-12.340`, `+5`, `.5`, `1e3` is refused) to an integer at `scale`:
/// `"1.5"` at scale 2 is 150. Digits past the scale must be zeros (the value would change
/// otherwise); None when the text is not a plain decimal, loses digits or overflows.
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = u32::try_from(scale).ok()?;
    let mut acc: i128 = 0;
    for b in int.bytes() {
        acc = acc.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let fb = frac.as_bytes();
    for i in 0..scale as usize {
        let d = fb.get(i).map_or(0, |b| b - b'0');
        acc = acc.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    if fb.iter().skip(scale as usize).any(|b| *b != b'0') {
        return None;
    }
    Some(if neg { -acc } else { acc })
}

/// Days since 1970-01-01 of a calendar date.
pub fn epoch_days(date: NaiveDate) -> i32 {
    use chrono::Datelike;
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// Microseconds since 1970-01-01 00:00 of a date and time.
pub fn epoch_micros(dt: NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_micros()
}

/// Microseconds since midnight.
pub fn day_micros(t: NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000)
}

/// A timestamp written as text (`2024-01-02 03:04:05.123456`, `T` also accepted, optional
/// `Z` or `±HH:MM` offset): microseconds since the epoch in UTC (a text without an offset is
/// taken as it stands).
pub fn parse_timestamp_text(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_micros());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Some(dt.timestamp_micros());
        }
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(epoch_micros(dt));
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(epoch_micros)
}

/// A date written as text (`2024-01-02`): days since the epoch.
pub fn parse_date_text(text: &str) -> Option<i32> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok().map(epoch_days)
}

/// A time of day written as text (`13:04`, `13:04:05`, `13:04:05.25`): microseconds.
pub fn parse_time_text(text: &str) -> Option<i64> {
    let t = text.trim();
    ["%H:%M:%S%.f", "%H:%M"].iter().find_map(|f| NaiveTime::parse_from_str(t, f).ok()).map(day_micros)
}

/// The cursor as SQL text (what a server casts to the column's type).
pub fn cursor_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The cursor as microseconds in UTC, when it is a timestamp (RFC 3339 text or a number of
/// microseconds, as the engine stores it).
pub fn cursor_micros(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_timestamp_text(s),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (what MySQL and SQLite parse).
pub fn micros_to_sql_text(us: i64) -> Option<String> {
    DateTime::from_timestamp_micros(us).map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(parse_decimal("1.5", 2), Some(150));
        assert_eq!(parse_decimal("-12.340", 3), Some(-12340));
        assert_eq!(parse_decimal("-0.01", 2), Some(-1));
        assert_eq!(parse_decimal("7", 0), Some(7));
        assert_eq!(parse_decimal(".5", 1), Some(5));
        assert_eq!(parse_decimal("1.25", 1), None, "a digit would be lost");
        assert_eq!(parse_decimal("1.20", 1), Some(12));
        assert_eq!(parse_decimal("abc", 1), None);
        assert_eq!(parse_decimal("1e3", 0), None);
        assert_eq!(parse_decimal("99999999999999999999999999999999999999", 0), Some(99_999_999_999_999_999_999_999_999_999_999_999_999));
        assert_eq!(parse_decimal("999999999999999999999999999999999999999999", 0), None);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date_text("1970-01-02"), Some(1));
        assert_eq!(parse_date_text("1969-12-31"), Some(-1));
        assert_eq!(parse_timestamp_text("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(parse_timestamp_text("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_timestamp_text("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp_text("2024-01-01"), Some(1_704_067_200_000_000));
        assert_eq!(parse_time_text("01:00:00.000001"), Some(3_600_000_001));
        assert_eq!(micros_to_sql_text(1_500_000).as_deref(), Some("1970-01-01 00:00:01.500000"));
        assert_eq!(cursor_micros(&Value::from("2024-01-01T00:00:00Z")), Some(1_704_067_200_000_000));
    }
}
