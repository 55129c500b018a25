//! `${ENV_VAR}` expansion and secrets read from `*_file` fields, so that
//! secrets stay out of the YAML.

use std::fmt;
use std::path::Path;

use crate::config::Spanned;

use super::Validator;

/// A secret value (password, token, webhook URL). Never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One expansion problem: line, column, message, hint.
pub type ExpandIssue = (u64, u64, String, String);

/// Replace `${NAME}` (and `${NAME:-fallback}`) with environment values.
/// `$${` writes a literal `${`. Unset variables without a fallback are
/// errors, reported at their place in the file.
pub fn expand_env(text: &str) -> Result<String, Vec<ExpandIssue>> {
    expand_with(text, |name| std::env::var(name).ok())
}

pub fn expand_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<ExpandIssue>> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut issues = Vec::new();
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        // Comment lines are documentation: `${NAME}` there is not expanded.
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        let mut col = 1u64;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            col += rest[..i].chars().count() as u64;
            let after = &rest[i..];
            if let Some(stripped) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = stripped;
                col += 3;
            } else if let Some(body) = after.strip_prefix("${") {
                let Some(end) = body.find('}') else {
                    issues.push((
                        line_no as u64 + 1,
                        col,
                        "unterminated ${ in value".to_string(),
                        "close it with }, or write $${ for a literal ${".to_string(),
                    ));
                    out.push_str(after);
                    rest = "";
                    continue;
                };
                let inner = &body[..end];
                let (name, fallback) = match inner.split_once(":-") {
                    Some((n, f)) => (n, Some(f)),
                    None => (inner, None),
                };
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    issues.push((
                        line_no as u64 + 1,
                        col,
                        format!("'${{{inner}}}' is not a valid environment variable reference"),
                        "write ${NAME} with letters, digits and _".to_string(),
                    ));
                } else {
                    match (lookup(name), fallback) {
                        (Some(v), _) => out.push_str(&v),
                        (None, Some(f)) => out.push_str(f),
                        (None, None) => issues.push((
                            line_no as u64 + 1,
                            col,
                            format!("environment variable {name} is not set"),
                            format!("set {name}, or write ${{{name}:-default}} to give a fallback"),
                        )),
                    }
                }
                col += 3 + inner.chars().count() as u64;
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
                col += 1;
            }
        }
        out.push_str(rest);
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// Resolve a secret given inline (`name`) or in a file (`name_file`,
/// relative to the configuration file). Both at once is an error.
pub fn secret(
    name: &str,
    inline: Option<String>,
    file: Option<&Spanned<String>>,
    base: &Path,
    v: &mut Validator,
) -> Option<Secret> {
    match (inline, file) {
        (Some(_), Some(f)) => {
            v.error(
                f.referenced,
                format!("both {name} and {name}_file are set"),
                Some(format!(
                    "keep only one; {name}_file keeps the secret out of the YAML"
                )),
            );
            None
        }
        (Some(s), None) => Some(Secret(s)),
        (None, Some(f)) => {
            let path = base.join(&f.value);
            match std::fs::read_to_string(&path) {
                Ok(s) => Some(Secret(s.trim_end_matches(['\n', '\r']).to_string())),
                Err(e) => {
                    v.error(
                        f.referenced,
                        format!("cannot read {name}_file {}: {e}", path.display()),
                        Some("the path is relative to the configuration file".into()),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PORT").then(|| "8080".to_string())
    }

    #[test]
    fn expands_set_variables_and_fallbacks() {
        let out = expand_with(
            "a: ${PORT}\nb: ${NOPE:-x}\nc: $${PORT}\nd: $5\n# ${UNSET}",
            env,
        )
        .unwrap();
        assert_eq!(out, "a: 8080\nb: x\nc: ${PORT}\nd: $5\n# ${UNSET}");
    }

    #[test]
    fn unset_variable_is_reported_at_its_place() {
        let err = expand_with("a: 1\nurl: http://${HOST}/\n", env).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!((err[0].0, err[0].1), (2, 13));
        assert!(err[0].2.contains("HOST is not set"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
