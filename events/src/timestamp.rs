//! Points in time as the events record them: microseconds since the Unix epoch, in UTC.
//!
//! JSON (and any other human-readable format) shows them as RFC 3339 strings; bincode stores the
//! plain integer, so a record stays small and its encoding never depends on a formatting rule.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A string that is not an RFC 3339 time, or a time outside the range events can hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an RFC 3339 time: {0:?}")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// The current time of the system clock.
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp(micros)
    }

    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This time plus `d`, saturating at the end of the representable range.
    pub fn plus(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    /// RFC 3339 in UTC with microsecond precision, e.g. `2026-11-27T22:55:15.123456Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
                let (h, mi, s, us) = (t.hour(), t.minute(), t.second(), t.microsecond());
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
            }
            // Unreachable for times produced by `now`; keep the value visible rather than panic.
            Err(_) => format!("@{}us", self.0),
        }
    }

    /// Parses any RFC 3339 time (any offset); the result is in UTC.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimestampError(s.to_owned()))?;
        let micros = t.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros)
            .map(Timestamp)
            .map_err(|_| TimestampError(s.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_microseconds() {
        let t = Timestamp::parse_rfc3339("2026-11-27T22:55:15.123456Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T22:55:15.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-28T00:55:15+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T22:55:15.000000Z");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
        assert!(Timestamp::parse_rfc3339("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn json_uses_strings_and_bincode_uses_integers() {
        let t = Timestamp::from_micros(1_000_000);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"1970-01-01T00:00:01.000000Z\""
        );
        let bytes = bincode::serde::encode_to_vec(t, bincode::config::standard()).unwrap();
        let (back, _): (Timestamp, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, t);
    }
}
