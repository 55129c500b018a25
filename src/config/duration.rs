//! Durations as people write them in YAML: `500ms`, `30s`, `5m`, `1h30m`, `35d`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written `30s`, `5m`, `1h`, `1h30m`, `250ms` or `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

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
                .map_err(|_| format!("duration '{s}' has a malformed number"))?;
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
                        "duration '{s}' has unknown unit '{other}'; use ms, s, m, h, d or w"
                    ));
                }
            };
            total += Duration::from_secs_f64(number * secs);
        }
        Ok(Dur(total))
    }
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
    fn displays_compactly() {
        assert_eq!(Dur::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Dur::parse("1500ms").unwrap().to_string(), "1500ms");
    }
}
