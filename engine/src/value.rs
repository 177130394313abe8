//! Attribute types and values.

use std::fmt;

/// The declared type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) enum Type {
    Bool,
    String,
    Number,
    Time,
    StringSet,
}

impl Type {
    #[cfg(feature = "compiler")]
    pub(crate) fn parse(s: &str) -> Option<Type> {
        match s.trim() {
            "bool" | "boolean" => Some(Type::Bool),
            "string" => Some(Type::String),
            "number" => Some(Type::Number),
            "time" | "datetime" => Some(Type::Time),
            "set<string>" | "[string]" => Some(Type::StringSet),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Bool => "bool",
            Type::String => "string",
            Type::Number => "number",
            Type::Time => "time",
            Type::StringSet => "set<string>",
        })
    }
}

/// A typed attribute value, as held by a prepared principal, resource or context.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Value {
    Bool(bool),
    Str(Box<str>),
    Num(f64),
    /// Unix time in nanoseconds.
    Time(i128),
    /// Sorted, deduplicated.
    Set(Box<[Box<str>]>),
}

/// Why a JSON value could not become an attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TypeMismatch {
    pub(crate) expected: Type,
    pub(crate) detail: String,
}

/// An RFC 3339 date-time (`2024-05-01T12:00:00Z`, `...T12:00:00.5+02:00`) as Unix time in
/// nanoseconds. Exactly what the `time` crate's `Rfc3339` parser accepts (a unit test compares
/// the two), written out here to keep the WebAssembly module small: any one byte between date
/// and time, any number of fraction digits (nanoseconds kept), `Z`/`z` or `±hh:mm` with hours up
/// to 23, and a leap second (`:60`) only as the last second of a month in UTC, read as
/// `23:59:59.999999999`.
pub(crate) fn parse_time(s: &str) -> Option<i128> {
    fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
        b.get(at..at.checked_add(n)?)?
            .iter()
            .try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    }
    fn lit(b: &[u8], at: usize, c: u8) -> Option<()> {
        (b.get(at) == Some(&c)).then_some(())
    }
    let b = s.as_bytes();
    let (year, month) = (i64::from(digits(b, 0, 4)?), digits(b, 5, 2)?);
    lit(b, 4, b'-')?;
    lit(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    b.get(10)?; // any one byte separates date and time
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    lit(b, 13, b':')?;
    lit(b, 16, b':')?;
    let mut second = digits(b, 17, 2)?;
    let mut at = 19;
    let mut nanos: u32 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let (start, mut scale) = (at, 100_000_000);
        while let Some(d) = b.get(at).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    let offset: i64 = match *b.get(at)? {
        b'Z' | b'z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let (h, m) = (digits(b, at + 1, 2)?, digits(b, at + 4, 2)?);
            lit(b, at + 3, b':')?;
            if h > 23 || m > 59 {
                return None;
            }
            at += 6;
            let secs = i64::from(h * 3600 + m * 60);
            if sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    if at != b.len() || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let leap = second == 60;
    if leap {
        second = 59;
        nanos = 999_999_999;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset;
    if leap {
        // Only 23:59:59 UTC on the last day of a month may carry a leap second.
        let (y, m, d) = civil_from_days(utc.div_euclid(86_400));
        if utc.rem_euclid(86_400) != 86_399 || d != days_in_month(y, m) || !(-9999..=9999).contains(&y) {
            return None;
        }
    }
    Some(i128::from(utc) * 1_000_000_000 + i128::from(nanos))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * i64::from((m + 9) % 12) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(0);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(0);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Type {
    /// Read from a bundle's compiled form (`wire.rs`).
    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Option<Type> {
        Some(match r.tag(5)? {
            0 => Type::Bool,
            1 => Type::String,
            2 => Type::Number,
            3 => Type::Time,
            _ => Type::StringSet,
        })
    }
}

impl Value {
    /// Read from a bundle's compiled form (`wire.rs`).
    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Option<Value> {
        let boxed = |r: &mut crate::wire::Reader<'_>| r.str().map(Box::<str>::from);
        Some(match r.tag(5)? {
            0 => Value::Bool(r.bool()?),
            1 => Value::Str(boxed(r)?),
            2 => Value::Num(r.f64()?),
            3 => Value::Time(r.i128()?),
            _ => Value::Set(r.seq(boxed)?.into_boxed_slice()),
        })
    }

    /// Convert a JSON value to the declared type. `null` is treated as absent by callers.
    pub(crate) fn from_json(ty: Type, v: &serde_json::Value) -> Result<Value, TypeMismatch> {
        let bad = |detail: String| TypeMismatch { expected: ty, detail };
        match (ty, v) {
            (Type::Bool, serde_json::Value::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::String, serde_json::Value::String(s)) => Ok(Value::Str(s.as_str().into())),
            (Type::Number, serde_json::Value::Number(n)) => {
                n.as_f64().map(Value::Num).ok_or_else(|| bad(format!("`{n}` is out of range")))
            }
            (Type::Time, serde_json::Value::String(s)) => {
                parse_time(s).map(Value::Time).ok_or_else(|| bad(format!("`{s}` is not an RFC 3339 time")))
            }
            (Type::StringSet, serde_json::Value::Array(items)) => {
                let mut out: Vec<Box<str>> = Vec::with_capacity(items.len());
                for it in items {
                    match it {
                        serde_json::Value::String(s) => out.push(s.as_str().into()),
                        other => return Err(bad(format!("set element `{other}` is not a string"))),
                    }
                }
                out.sort_unstable();
                out.dedup();
                Ok(Value::Set(out.into_boxed_slice()))
            }
            (_, other) => Err(bad(format!("got {}", json_kind(other)))),
        }
    }
}

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    use super::parse_time;

    fn reference(s: &str) -> Option<i128> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp_nanos)
    }

    #[test]
    fn parse_time_is_the_time_crates_rfc3339() {
        let mut inputs: Vec<String> = [
            "2024-05-01T12:00:00Z",
            "2024-05-01t12:00:00z",
            "2024-05-01 12:00:00+02:00",
            "2024-05-01T12:00:00.123456789123-07:30",
            "2024-05-01T12:00:00.-07:30",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00Z ",
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
            "2016-12-30T23:59:60Z",
            "2017-01-01T01:59:60+02:00",
            "2016-12-31T22:59:60-01:00",
            "0000-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00-23:59",
            "9999-12-31T23:59:59.999999999-23:59",
            "1969-12-31T23:59:59.999Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+00:60",
            "2024-01-01T00:00:00+0000",
            "2024-1-01T00:00:00Z",
            "+2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01\u{e9}00:00:00Z",
            "2024-01-01\u{e9}0:00:00Z",
            "",
            "now",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Month ends, leap-second positions, offsets.
        for y in [0, 1900, 1972, 2000, 2023, 2024, 9999] {
            for m in 0..=13u32 {
                for d in [0u32, 1, 28, 29, 30, 31, 32] {
                    for (t, off) in
                        [("23:59:60", "Z"), ("00:59:60", "+01:00"), ("23:29:60", "-00:30"), ("12:00:00.25", "z")]
                    {
                        inputs.push(format!("{y:04}-{m:02}-{d:02}T{t}{off}"));
                    }
                }
            }
        }
        for s in &inputs {
            assert_eq!(parse_time(s), reference(s), "{s:?}");
        }
    }
}
