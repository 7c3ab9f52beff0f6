//! UTC timestamps written as ISO-8601 with milliseconds (`2023-11-07T10:31:02.692Z`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::ParseError;

/// A point in time with millisecond precision, always UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The current time, truncated to milliseconds.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self::from_datetime(now).unwrap_or(Timestamp(now))
    }

    /// In UTC, truncated to milliseconds; `None` outside the years 0000-9999 in UTC (which
    /// could not be printed in the form [`Timestamp::parse`] reads back).
    fn from_datetime(dt: OffsetDateTime) -> Option<Self> {
        let dt = dt.checked_to_offset(UtcOffset::UTC)?;
        if !(0..=9999).contains(&dt.year()) {
            return None;
        }
        let millis = dt.millisecond();
        Some(Timestamp(dt.replace_millisecond(millis).unwrap_or(dt)))
    }

    /// From Unix milliseconds.
    pub fn from_unix_millis(ms: i64) -> Result<Self, ParseError> {
        OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .map(Timestamp)
            .map_err(|_| ParseError(format!("{ms} is out of the supported time range")))
    }

    /// Unix milliseconds.
    pub fn unix_millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Parses RFC 3339 (any offset) and normalizes to UTC milliseconds.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let parsed = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            ParseError(format!(
                "'{}' is not an RFC 3339 timestamp",
                crate::error::truncate(s)
            ))
        })?;
        Self::from_datetime(parsed).ok_or_else(|| {
            ParseError(format!(
                "'{}' is outside the years 0000-9999 in UTC",
                crate::error::truncate(s)
            ))
        })
    }
}

impl Timestamp {
    /// The first instant of this timestamp's calendar month (UTC).
    pub fn month_start(&self) -> Timestamp {
        let date = self.0.date().replace_day(1).unwrap_or(self.0.date());
        Timestamp(self.0.replace_date(date).replace_time(time::Time::MIDNIGHT))
    }

    /// The first instant of the next calendar month (UTC).
    pub fn next_month_start(&self) -> Timestamp {
        let later = self.month_start().0 + time::Duration::days(32);
        Timestamp(later).month_start()
    }

    /// Its calendar month (UTC) as `YYYY-MM`.
    pub fn month(&self) -> String {
        format!("{:04}-{:02}", self.0.year(), u8::from(self.0.month()))
    }

    /// Whole seconds from `earlier` to this instant (0 if `earlier` is not before it).
    pub fn whole_seconds_since(&self, earlier: Timestamp) -> u64 {
        u64::try_from((self.unix_millis() - earlier.unix_millis()) / 1000).unwrap_or(0)
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` written digit by digit (every response and item carries
    /// several), or `None` for a year without four digits (only `from_unix_millis` makes one).
    fn fixed_text(&self) -> Option<[u8; 24]> {
        let dt = self.0;
        let year = u16::try_from(dt.year()).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, value: u16, width: usize| {
            let mut v = value;
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year, 4);
        put(5, u16::from(u8::from(dt.month())), 2);
        put(8, u16::from(dt.day()), 2);
        put(11, u16::from(dt.hour()), 2);
        put(14, u16::from(dt.minute()), 2);
        put(17, u16::from(dt.second()), 2);
        put(20, dt.millisecond(), 3);
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.fixed_text() {
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        match self.0.format(&format) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.fixed_text() {
            Some(text) => serializer
                .serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?),
            None => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
crate::newtype::named_schema!(
    Timestamp => {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "ISO-8601 date-time: written in UTC with milliseconds (`2023-11-07T10:31:02.692Z`); read as RFC 3339 with any offset and normalized to UTC milliseconds. Years 0000-9999.",
            ))
            // In the future, so the example also fits the fields that must be (`expiresAt`).
            .examples(["2099-11-07T10:31:02.692Z"])
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_begin_at_midnight_on_the_first_in_utc() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let at = t("2024-02-29T23:59:59.999+00:00");
        assert_eq!(at.month_start(), t("2024-02-01T00:00:00Z"));
        assert_eq!(at.next_month_start(), t("2024-03-01T00:00:00Z"));
        assert_eq!(at.month(), "2024-02");
        assert_eq!(
            t("2026-12-31T10:00:00Z").next_month_start(),
            t("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            t("2027-01-01T00:00:00Z").month_start(),
            t("2027-01-01T00:00:00Z")
        );
        // An offset is converted first: this is still January in UTC.
        assert_eq!(t("2027-02-01T00:30:00+01:00").month(), "2027-01");
        assert_eq!(
            t("2027-01-01T00:00:10.999Z").whole_seconds_since(t("2027-01-01T00:00:00Z")),
            10
        );
        assert_eq!(
            t("2027-01-01T00:00:00Z").whole_seconds_since(t("2027-01-01T00:00:10Z")),
            0
        );
    }

    #[test]
    fn the_fixed_text_is_what_the_time_crate_writes() {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        // Every month and day boundary of a few years, odd milliseconds, and the range ends.
        let mut samples = vec![0i64, 1, 999, -1, 253_402_300_799_999, -62_167_219_200_000];
        let mut ms = 946_684_799_999i64; // 1999-12-31T23:59:59.999Z
        while ms < 1_735_689_600_000 {
            samples.push(ms);
            ms += 86_399_937;
        }
        for ms in samples {
            let t = Timestamp::from_unix_millis(ms).unwrap();
            let reference = t.0.format(&format).unwrap();
            assert_eq!(t.to_string(), reference, "{ms}");
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{reference}\"")
            );
        }
        // Before year 0 (only `from_unix_millis` makes one) the time crate's text is kept.
        let far = Timestamp::from_unix_millis(-62_167_219_200_001).unwrap();
        assert!(far.fixed_text().is_none());
        assert_eq!(far.to_string(), far.0.format(&format).unwrap());
    }

    #[test]
    fn round_trips_the_spec_form() {
        let t = Timestamp::parse("2023-11-07T10:31:02.692Z").unwrap();
        assert_eq!(t.to_string(), "2023-11-07T10:31:02.692Z");
        assert_eq!(Timestamp::from_unix_millis(t.unix_millis()).unwrap(), t);
    }

    #[test]
    fn normalizes_offsets_and_precision() {
        let t = Timestamp::parse("2023-11-07T12:31:02.692345+02:00").unwrap();
        assert_eq!(t.to_string(), "2023-11-07T10:31:02.692Z");
        assert_eq!(
            Timestamp::parse("2023-11-07T10:31:02Z")
                .unwrap()
                .to_string(),
            "2023-11-07T10:31:02.000Z"
        );
        assert!(Timestamp::parse("yesterday").is_err());
        // Found by fuzzing: out of range in UTC must be an error, not a panic or a value that
        // prints in a form that does not parse back.
        assert!(Timestamp::parse("9999-12-31T23:59:59-01:00").is_err());
        assert!(Timestamp::parse("0000-01-01T00:00:00+05:00").is_err());
        let edge = Timestamp::parse("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(Timestamp::parse(&edge.to_string()).unwrap(), edge);
    }

    #[test]
    fn now_sorts_as_text() {
        let a = Timestamp::from_unix_millis(1_000).unwrap();
        let b = Timestamp::from_unix_millis(20_000).unwrap();
        assert!(a.to_string() < b.to_string());
    }
}
