//! A configuration value with the line and column it was written at, for
//! error messages. serde-saphyr's own `Spanned` keeps two full locations
//! (56 bytes); a spec has a dozen such fields and there is one spec per
//! check, so with 10,000 checks that alone was megabytes. This keeps the
//! one location the messages use, in 8 bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a value was written: 1-based line and column; 0 when unknown
/// (a default, or a value made in code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Location {
    line: u32,
    column: u32,
}

impl Location {
    pub const UNKNOWN: Location = Location { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Location {
        Location { line, column }
    }

    pub fn line(&self) -> u64 {
        self.line.into()
    }

    pub fn column(&self) -> u64 {
        self.column.into()
    }
}

impl From<serde_saphyr::Location> for Location {
    fn from(l: serde_saphyr::Location) -> Location {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Location {
            line: clamp(l.line()),
            column: clamp(l.column()),
        }
    }
}

/// A value and where it was written (where it is referenced, for values
/// that come through YAML anchors).
///
/// Two spanned values are equal when their values are: a check moved to
/// another line of its file still probes the same way, so specs that hold
/// spanned fields can derive their equality (a reload compares them).
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub referenced: Location,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: std::hash::Hash> std::hash::Hash for Spanned<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Consistent with the equality above: the place is not hashed.
        self.value.hash(state);
    }
}

impl<T> Spanned<T> {
    pub fn new(value: T, referenced: Location) -> Spanned<T> {
        Spanned { value, referenced }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde-saphyr recognises its own type and fills in the location.
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Spanned {
            value: s.value,
            referenced: s.referenced.into(),
        })
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[allow(dead_code)]
        a: u32,
        b: Spanned<String>,
    }

    #[test]
    fn keeps_line_and_column_of_the_value() {
        let d: Doc = serde_saphyr::from_str("a: 1\nb:   hello\n").unwrap();
        assert_eq!(d.b.value, "hello");
        assert_eq!((d.b.referenced.line(), d.b.referenced.column()), (2, 6));
        assert!(std::mem::size_of::<Spanned<String>>() <= 32);
    }

    #[test]
    fn equality_ignores_where_the_value_was_written() {
        let here = Spanned::new("a.nl".to_string(), Location::new(3, 9));
        let there = Spanned::new("a.nl".to_string(), Location::new(12, 1));
        assert_eq!(here, there);
        assert_ne!(here, Spanned::new("b.nl".to_string(), Location::new(3, 9)));
    }
}
