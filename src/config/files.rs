//! Reading configuration files and resolving `include:` globs without
//! letting a file system hang, exhaust or fool the loader: a FIFO, a
//! device (`/dev/zero`), a directory symlink loop (`self -> .` under
//! `cat/**/*.yaml`), a huge file or a million matches each become one
//! clear error at the include, at load and on SIGHUP alike (one loader).

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};

/// Largest configuration file read: 32 MiB. 100,000 checks written one
/// line each (the largest catalogue we have seen, bench/probe_load) are
/// about 10 MB; anything larger is not a catalogue someone wrote.
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// Most files one configuration may include: 10,000 (a file per service
/// of the largest municipality catalogue is under 2,000).
pub const MAX_FILES: usize = 10_000;
/// Most directory entries one include pattern may look at, so that `**`
/// over a large tree (or `/`) ends with an error instead of a long walk.
pub const MAX_ENTRIES_SEEN: usize = 1_000_000;

/// A problem reading one file, said for a person: what and how to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProblem {
    /// 1-based place of the problem in the file, when it has one
    /// (invalid UTF-8), else 0.
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: String,
}

impl ReadProblem {
    fn whole(message: String, hint: &str) -> ReadProblem {
        ReadProblem {
            line: 0,
            column: 0,
            message,
            hint: hint.to_string(),
        }
    }
}

/// Largest secret (`*_file`) or CA file (`ca_file`) read: 1 MiB, some
/// thousand certificates; `api_token_file: /dev/zero` must not read for
/// ever.
pub const MAX_SIDE_FILE_BYTES: u64 = 1 << 20;

/// Read a file a configuration names (a secret, a CA bundle): a regular
/// file (or a symlink to one) of at most `max` bytes. The error says why,
/// without the path (the caller names the file and its field).
pub fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("it is not a regular file ({})", kind(&meta)));
    }
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("it is larger than {} KiB", max >> 10));
    }
    Ok(bytes)
}

/// Read a configuration file as UTF-8 text: only a regular file (a
/// symlink to one is fine), at most [`MAX_FILE_BYTES`], with the line and
/// column of the first byte that is not UTF-8.
pub fn read_text(path: &Path) -> Result<String, ReadProblem> {
    let shown = path.display();
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(|e| {
        ReadProblem::whole(
            format!("cannot read {shown}: {e}"),
            "check the path and that the daemon's user may read it",
        )
    })?;
    if !meta.is_file() {
        return Err(ReadProblem::whole(
            format!("{shown} is not a regular file ({})", kind(&meta)),
            "configuration files must be regular files",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    let file = File::open(path).map_err(|e| {
        ReadProblem::whole(
            format!("cannot read {shown}: {e}"),
            "check that the daemon's user may read it",
        )
    })?;
    // The file may have been swapped or grown since the check: read one
    // byte past the cap and look again.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            ReadProblem::whole(
                format!("cannot read {shown}: {e}"),
                "check that the daemon's user may read it",
            )
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    text(bytes)
}

fn too_large(path: &Path) -> ReadProblem {
    ReadProblem::whole(
        format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_FILE_BYTES >> 20
        ),
        "split the services over several catalogue files with include:",
    )
}

/// The bytes as text, or where the first invalid byte is.
pub fn text(bytes: Vec<u8>) -> Result<String, ReadProblem> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Safe to decode: this prefix is the valid part.
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() as u64 + 1;
        let column = good.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
        ReadProblem {
            line,
            column,
            message: "this byte is not UTF-8".into(),
            hint: "save the file as UTF-8 (iconv -f latin1 -t utf-8 converts a Latin-1 file)"
                .into(),
        }
    })
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Why an include pattern could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobProblem {
    pub message: String,
    pub hint: String,
}

/// The files an include pattern matches, sorted. Directories are walked
/// by their entries' own types, so a symlink to a directory is never
/// entered by a wildcard (a link the user wrote literally in the pattern
/// is followed, as the shell does); only regular files, or symlinks to
/// them, are returned. More than `max_files` matches is an error.
pub fn glob_files(pattern: &Path, max_files: usize) -> Result<Vec<PathBuf>, GlobProblem> {
    let mut start = PathBuf::new();
    let mut parts: Vec<Pattern> = Vec::new();
    for c in pattern.components() {
        let s = c.as_os_str().to_string_lossy();
        let wild = !parts.is_empty() || s.contains(['*', '?', '[']);
        match c {
            Component::Normal(_) if wild => {
                parts.push(Pattern::new(&s).map_err(|e| GlobProblem {
                    message: format!("not a valid glob: {e}"),
                    hint: "write a path or a pattern like probes/*.yaml".into(),
                })?);
            }
            _ if wild => {
                return Err(GlobProblem {
                    message: "'..' or '.' after a wildcard is not supported".into(),
                    hint: "put the directory part before the wildcard, e.g. ../probes/*.yaml"
                        .into(),
                });
            }
            _ => start.push(c.as_os_str()),
        }
    }
    let mut walk = Walk {
        out: Vec::new(),
        seen: 0,
        max_files,
    };
    if parts.is_empty() {
        // A literal path: the file itself (its type is checked on read).
        if std::fs::symlink_metadata(&start).is_ok() {
            walk.out.push(start);
        }
        return Ok(walk.out);
    }
    if start.as_os_str().is_empty() {
        start.push(".");
    }
    walk.dir(&start, &parts)?;
    walk.out.sort();
    walk.out.dedup();
    Ok(walk.out)
}

struct Walk {
    out: Vec<PathBuf>,
    seen: usize,
    max_files: usize,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Walk {
    fn dir(&mut self, dir: &Path, parts: &[Pattern]) -> Result<(), GlobProblem> {
        let Some((first, rest)) = parts.split_first() else {
            return Ok(());
        };
        let recursive = first.as_str() == "**";
        if recursive {
            // `**` matches no directory too.
            self.dir(dir, rest)?;
        }
        // An unreadable directory matches nothing, as in the shell.
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            self.seen += 1;
            if self.seen > MAX_ENTRIES_SEEN {
                return Err(GlobProblem {
                    message: format!(
                        "the pattern looked at more than {MAX_ENTRIES_SEEN} directory entries"
                    ),
                    hint: "narrow it to the folder of your catalogues, e.g. probes/*.yaml".into(),
                });
            }
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let path = entry.path();
            if recursive {
                if file_type.is_dir() {
                    self.dir(&path, parts)?;
                }
                continue;
            }
            if !first.matches_with(&name.to_string_lossy(), OPTIONS) {
                continue;
            }
            if rest.is_empty() {
                // A symlink to a file is a file; anything else that is
                // not a regular file is reported when it is read.
                self.out.push(path);
                if self.out.len() > self.max_files {
                    return Err(GlobProblem {
                        message: format!("matches more than {} files", self.max_files),
                        hint: format!(
                            "a configuration may include at most {MAX_FILES} files in all: narrow the pattern"
                        ),
                    });
                }
            } else if file_type.is_dir() {
                self.dir(&path, rest)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_reported_at_its_line_and_column() {
        let p = text(b"a: 1\nname: caf\xe9\n".to_vec()).unwrap_err();
        assert_eq!((p.line, p.column), (2, 10));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let p = read_text(&fifo).unwrap_err();
        assert!(p.message.contains("named pipe"), "{p:?}");
    }

    #[test]
    fn a_device_is_refused_without_reading_it() {
        let p = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(p.message.contains("a device"), "{p:?}");
    }

    #[test]
    fn wildcards_do_not_enter_directory_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path().join("cat");
        std::fs::create_dir_all(cat.join("sub")).unwrap();
        std::fs::write(cat.join("a.yaml"), "").unwrap();
        std::fs::write(cat.join("sub/b.yaml"), "").unwrap();
        std::os::unix::fs::symlink(".", cat.join("self")).unwrap();
        std::os::unix::fs::symlink("..", cat.join("sub/up")).unwrap();
        let found = glob_files(&cat.join("**/*.yaml"), MAX_FILES).unwrap();
        assert_eq!(found, vec![cat.join("a.yaml"), cat.join("sub/b.yaml")]);
    }

    #[test]
    fn too_many_matches_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("{i}.yaml")), "").unwrap();
        }
        let e = glob_files(&dir.path().join("*.yaml"), 4).unwrap_err();
        assert!(e.message.contains("more than 4 files"), "{e:?}");
    }
}
