//! Durations as people write them in YAML: `500ms`, `30s`, `5m`, `1h30m`, `35d`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written `30s`, `5m`, `1h`, `1h30m`, `250ms` or `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

/// The longest duration any field accepts: 100 years (36,500 days). Every
/// duration is added to or subtracted from "now" somewhere (a retention
/// cut-off, a notification's expiry, a restore window), and instants end
/// at the year 9999; a bound here keeps every such sum representable, so
/// no value a user writes can overflow a timestamp at run time. Fields
/// with a tighter sensible range check it where they are validated.
pub const MAX: Duration = Duration::from_secs(36_500 * 86_400);

impl Dur {
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration; write it like 30s, 5m or 1h".into());
        }
        if s.starts_with('-') {
            return Err(format!(
                "duration '{s}' is negative; write a positive duration like 30s"
            ));
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "duration '{s}' must start with a number; write it like 30s, 5m or 1h"
                ));
            }
            let number: f64 = rest[..digits]
                .parse()
                .map_err(|_| format!("duration '{}' has a malformed number", shown(s)))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let secs = match unit {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                "w" => 7.0 * 86400.0,
                "" => {
                    return Err(format!(
                        "duration '{s}' has no unit; add one of ms, s, m, h, d (e.g. {number}s)"
                    ));
                }
                other => {
                    return Err(format!(
                        "duration '{}' has unknown unit '{}'; use ms, s, m, h, d or w",
                        shown(s),
                        shown(other)
                    ));
                }
            };
            // Checked all the way: `99999999999999999999s` must be an
            // error at its place in the file, not a panic in from_secs_f64.
            total = Duration::try_from_secs_f64(number * secs)
                .ok()
                .and_then(|d| total.checked_add(d))
                .filter(|t| *t <= MAX)
                .ok_or_else(|| {
                    format!(
                        "duration '{}' is longer than the longest accepted, 100 years (36500d)",
                        shown(s)
                    )
                })?;
        }
        Ok(Dur(total))
    }
}

/// A written value as it may appear in a message: a 100 kB duration is
/// not echoed whole.
fn shown(s: &str) -> String {
    super::error::shorten(s, 40)
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut s = ms / 1000;
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= size {
                write!(f, "{}{unit}", s / size)?;
                s %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_units_people_write() {
        assert_eq!(Dur::parse("30s").unwrap().0, Duration::from_secs(30));
        assert_eq!(Dur::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(Dur::parse("1h30m").unwrap().0, Duration::from_secs(5400));
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(
            Dur::parse("35d").unwrap().0,
            Duration::from_secs(35 * 86400)
        );
    }

    #[test]
    fn rejects_missing_units_and_negatives() {
        assert!(Dur::parse("30").unwrap_err().contains("no unit"));
        assert!(Dur::parse("-5s").unwrap_err().contains("negative"));
        assert!(Dur::parse("5x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn durations_too_long_for_a_timestamp_are_rejected_not_a_panic() {
        for written in ["99999999999999999999s", "999999999d", "36501d", "36500d1s"] {
            let err = Dur::parse(written).expect_err(written);
            assert!(
                err.contains("longer than the longest accepted") || err.contains("malformed"),
                "{written}: {err}"
            );
        }
        assert_eq!(Dur::parse("36500d").unwrap().0, MAX);
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Dur::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Dur::parse("1500ms").unwrap().to_string(), "1500ms");
    }
}
