//! Human-readable durations for settings: `500ms`, `30s`, `15m`, `2h`, `7d`, and combinations
//! such as `1h30m`.
//!
//! A duration is one or more `<whole number><unit>` parts, units in decreasing order, each unit
//! at most once. A bare number is rejected: `30` could mean seconds or minutes, and a setting
//! that guesses wrong is worse than one that refuses to start. Zero (`0s`) parses; whether zero
//! makes sense is decided by the setting that uses it.

use std::time::Duration;

use thiserror::Error;

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    /// The text was empty (or only whitespace).
    #[error("empty duration")]
    Empty,
    /// A number with no unit after it, e.g. `30`.
    #[error("missing unit after {0}: use ms, s, m, h or d")]
    MissingUnit(u64),
    /// A unit with no number before it, or a character that is neither digit nor unit.
    #[error("expected a whole number at {0:?}")]
    MissingNumber(String),
    /// A character that belongs to neither a number nor a unit, e.g. the `.` of `1.5h`.
    #[error("unexpected {0:?}: write whole numbers, each followed by its unit")]
    Unexpected(char),
    /// A unit that is not one of `ms`, `s`, `m`, `h`, `d`.
    #[error("unknown unit {0:?}: use ms, s, m, h or d")]
    UnknownUnit(String),
    /// Units out of order or repeated, e.g. `30m1h` or `1m1m`.
    #[error("unit {0:?} out of order: write larger units first, each once, like 1h30m")]
    UnitOrder(String),
    /// The value does not fit in a `Duration`.
    #[error("duration too large")]
    Overflow,
}

/// The units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration such as `500ms`, `30s`, `15m`, `2h`, `7d` or `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total_ms: u64 = 0;
    // Index into UNITS of the smallest unit seen so far; the next must be strictly smaller.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(DurationError::MissingNumber(rest.to_owned()));
        }
        let number: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| DurationError::Overflow)?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Err(match rest.chars().next() {
                Some(c) => DurationError::Unexpected(c),
                None => DurationError::MissingUnit(number),
            });
        }
        let index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
        if last_unit.is_some_and(|last| index <= last) {
            return Err(DurationError::UnitOrder(unit.to_owned()));
        }
        last_unit = Some(index);
        let part = number
            .checked_mul(UNITS[index].1)
            .ok_or(DurationError::Overflow)?;
        total_ms = total_ms.checked_add(part).ok_or(DurationError::Overflow)?;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the shortest form [`parse_duration`] reads back: `90s` becomes `1m30s`,
/// `168h` becomes `7d`, zero is `0s`. Precision below one millisecond is dropped.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, unit_ms) in UNITS {
        let unit_ms = u128::from(unit_ms);
        let count = ms / unit_ms;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(name);
            ms %= unit_ms;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(2 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn parses_combinations_and_trims() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1d2h3m4s5ms"),
            Ok(Duration::from_millis(93_784_005))
        );
        assert_eq!(parse_duration("  30s "), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        assert_eq!(parse_duration("30"), Err(DurationError::MissingUnit(30)));
        assert_eq!(parse_duration("1h30"), Err(DurationError::MissingUnit(30)));
        assert_eq!(
            parse_duration("abc"),
            Err(DurationError::MissingNumber("abc".into()))
        );
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::MissingNumber("-5s".into()))
        );
        assert_eq!(parse_duration("1.5h"), Err(DurationError::Unexpected('.')));
        assert_eq!(
            parse_duration("10w"),
            Err(DurationError::UnknownUnit("w".into()))
        );
        assert_eq!(
            parse_duration("10S"),
            Err(DurationError::UnknownUnit("S".into()))
        );
        assert_eq!(
            parse_duration("30m1h"),
            Err(DurationError::UnitOrder("h".into()))
        );
        assert_eq!(
            parse_duration("1m1m"),
            Err(DurationError::UnitOrder("m".into()))
        );
        assert_eq!(parse_duration("1 h"), Err(DurationError::Unexpected(' ')));
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("9999999999999999d"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn formats_shortest_form() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(168 * 3600)), "7d");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
    }

    #[test]
    fn format_then_parse_round_trips() {
        for ms in [
            1,
            999,
            1_000,
            59_999,
            60_000,
            5_400_000,
            93_784_005,
            604_800_000,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms} ms");
        }
    }
}
