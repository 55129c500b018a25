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

/// Printed issues go to logs, to `check`'s output and to the body of the
/// reload endpoint: URL passwords are masked and a message is never
/// longer than [`MAX_MESSAGE`] characters, whoever built it.
impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = shorten(&redact_userinfo(&self.message), MAX_MESSAGE);
        write!(f, "{}: {message}", self.place)?;
        if let Some(h) = &self.hint {
            write!(f, " ({})", shorten(&redact_userinfo(h), MAX_MESSAGE))?;
        }
        Ok(())
    }
}

/// The longest message printed for one issue, in characters.
pub const MAX_MESSAGE: usize = 500;

/// `scheme://user:password@host` with the password replaced by `***`,
/// wherever a URL appears in `s`.
pub fn redact_userinfo(s: &str) -> String {
    if !s.contains("://") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first of these; userinfo is what
        // stands before its last '@'.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '\'' || c == '"'
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***")),
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
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
            message: redact_userinfo(&message.into()),
            hint: hint.map(|h| redact_userinfo(&h)),
        });
    }

    pub fn is_ok(&self) -> bool {
        self.issues.is_empty()
    }
}

/// `s` cut to at most `max` characters, saying how long it was, for
/// messages that echo what a user wrote: a 100 kB id must not come back
/// whole in an error (or in a log line).
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_in_messages() {
        assert_eq!(
            redact_userinfo("url 'http://admin:PASSWORD@portal.example/x' is bad"),
            "url 'http://admin:***@portal.example/x' is bad"
        );
        assert_eq!(
            redact_userinfo("sip:x and https://a.example/p@q"),
            "sip:x and https://a.example/p@q"
        );
        assert_eq!(redact_userinfo("ftp://u@h"), "ftp://u@h");
    }

    #[test]
    fn long_values_are_cut_and_measured() {
        let id = "a".repeat(100_000);
        let shown = shorten(&id, 64);
        assert!(shown.len() < 100, "{shown}");
        assert!(shown.ends_with("(100000 bytes)"), "{shown}");
    }
}
