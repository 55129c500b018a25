//! Configuration errors that say what is wrong, where (`file:line:column`)
//! and how to fix it.

use std::fmt;
use std::sync::Arc;

use crate::config::Location;

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: Arc<str>,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub place: Place,
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// Every problem found while loading a configuration; the load fails whole.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Collects issues while validating one file, so that every error is
/// reported at once instead of only the first.
#[derive(Debug)]
pub struct Validator {
    file: Arc<str>,
    pub issues: Vec<ConfigIssue>,
}

impl Validator {
    pub fn new(file: Arc<str>) -> Self {
        Validator {
            file,
            issues: Vec::new(),
        }
    }

    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    pub fn place(&self, at: Location) -> Place {
        Place {
            file: self.file.clone(),
            line: at.line(),
            column: at.column(),
        }
    }

    /// Record an error at a location in the current file.
    pub fn error(&mut self, at: Location, message: impl Into<String>, hint: Option<String>) {
        let place = self.place(at);
        self.issues.push(ConfigIssue {
            place,
            message: message.into(),
            hint,
        });
    }

    pub fn is_ok(&self) -> bool {
        self.issues.is_empty()
    }
}

/// The known word closest to `word`, for "did you mean" hints.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
