//! `${ENV_VAR}` expansion and secrets read from `*_file` fields, so that
//! secrets stay out of the YAML.

use std::collections::HashMap;
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

/// The environment as the map `${NAME}` references are resolved from
/// (variables whose name or value is not UTF-8 are left out: a reference
/// to one is reported as unset).
pub fn environment() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Parser options that expand `${NAME}` and `${NAME:-fallback}` inside
/// scalar values, after the YAML structure is parsed: a value is never
/// YAML, so `TOK='abc #def'` stays `abc #def` (it used to be cut at the
/// `#`, read as a comment) and a value with a newline cannot add keys.
/// `$${` writes a literal `${`, `$$` a literal `$`. Comments are not
/// values, so a reference in a comment is not expanded.
pub fn parse_options(env: HashMap<String, String>) -> serde_saphyr::Options {
    serde_saphyr::Options::default().with_properties(env)
}

/// The column of `${name` on `line` of `text` at or after `column` (the
/// value it stands in), so that an unset variable is reported where it is
/// written; `column` when it is not found there (a multi-line value).
pub fn reference_column(text: &str, line: u64, column: u64, name: &str) -> u64 {
    let Some(l) = text.lines().nth(line.saturating_sub(1) as usize) else {
        return column;
    };
    let skip = column.saturating_sub(1) as usize;
    let before: String = l.chars().take(skip).collect();
    let rest = &l[before.len()..];
    match rest.find(&format!("${{{name}")) {
        Some(i) => column + rest[..i].chars().count() as u64,
        None => column,
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
            let read = super::files::read_bytes(&path, super::files::MAX_SIDE_FILE_BYTES)
                .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8".to_string()));
            match read {
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

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        a: String,
        #[serde(default)]
        b: Option<String>,
    }

    fn parse(yaml: &str, vars: &[(&str, &str)]) -> Result<Doc, serde_saphyr::Error> {
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        serde_saphyr::from_str_with_options(yaml, parse_options(env))
    }

    #[test]
    fn expands_set_variables_fallbacks_and_escapes() {
        let d = parse(
            "a: x-${PORT}\nb: ${NOPE:-y}\n# ${UNSET}\n",
            &[("PORT", "8080")],
        )
        .unwrap();
        assert_eq!((d.a.as_str(), d.b.as_deref()), ("x-8080", Some("y")));
        let d = parse("a: $${PORT}\n", &[("PORT", "8080")]).unwrap();
        assert_eq!(d.a, "${PORT}");
    }

    #[test]
    fn a_value_with_a_hash_stays_whole() {
        let d = parse("a: ${TOK}\n", &[("TOK", "abc #def")]).unwrap();
        assert_eq!(d.a, "abc #def");
    }

    #[test]
    fn a_value_with_a_newline_cannot_add_keys() {
        let d = parse("a: ${TOK}\n", &[("TOK", "x\nb: evil")]).unwrap();
        assert_eq!(d.a, "x\nb: evil");
        assert_eq!(d.b, None);
    }

    #[test]
    fn unset_variable_is_reported_at_its_place() {
        let e = parse("b: x\na: http://${HOST}/\n", &[]).unwrap_err();
        assert!(
            matches!(e.without_snippet(), serde_saphyr::Error::UnresolvedProperty { name, .. } if name == "HOST"),
            "{e}"
        );
        assert_eq!(e.location().map(|l| l.line()), Some(2));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
