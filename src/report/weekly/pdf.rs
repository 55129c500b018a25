//! The report as PDF: the HTML page printed to A4 by headless Chromium
//! (Debian package `chromium`), found at `reports.chromium` or on `PATH`.
//! Chromium runs with a throw-away profile and without network services,
//! and is killed if it has not finished in two minutes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Names Chromium goes by on Debian, Ubuntu and elsewhere.
const NAMES: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "chrome"];

const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(
        "cannot make a PDF: no Chromium {where_}; install it with `apt-get install chromium` \
         (or set reports.chromium to its path); --format html and csv work without it"
    )]
    ChromiumMissing { where_: String },
    #[error("cannot make a PDF: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot make a PDF: {chromium} failed ({status}): {stderr}")]
    Failed {
        chromium: String,
        status: String,
        stderr: String,
    },
    #[error("cannot make a PDF: {0} did not finish within 120 s and was stopped")]
    TimedOut(String),
}

/// The Chromium to print with: `configured` (a path, or a name looked up
/// on `PATH`), else the first of the usual names on `PATH`.
pub fn find_chromium(configured: Option<&Path>) -> Result<PathBuf, PdfError> {
    if let Some(c) = configured {
        if c.components().count() > 1 {
            return if c.is_file() {
                Ok(c.to_path_buf())
            } else {
                Err(PdfError::ChromiumMissing {
                    where_: format!("at {} (reports.chromium)", c.display()),
                })
            };
        }
        return on_path(&c.to_string_lossy()).ok_or_else(|| PdfError::ChromiumMissing {
            where_: format!("named '{}' on PATH (reports.chromium)", c.display()),
        });
    }
    NAMES
        .iter()
        .find_map(|n| on_path(n))
        .ok_or_else(|| PdfError::ChromiumMissing {
            where_: format!("on PATH (looked for {})", NAMES.join(", ")),
        })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A fresh directory for one run: the page, the PDF and the profile.
fn scratch() -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        std::env::temp_dir().join(format!("continuity-report-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The arguments every headless run takes: no sandbox (root in
/// containers), no GPU, no first-run UI, no background network traffic.
pub fn headless_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

/// `html` printed to A4.
pub fn html_to_pdf(html: &str, chromium: &Path) -> Result<Vec<u8>, PdfError> {
    let dir = scratch()?;
    let result = print(html, chromium, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn print(html: &str, chromium: &Path, dir: &Path) -> Result<Vec<u8>, PdfError> {
    let page = dir.join("report.html");
    let pdf = dir.join("report.pdf");
    std::fs::write(&page, html)?;
    let mut cmd = Command::new(chromium);
    cmd.args(headless_args(&dir.join("profile")))
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PdfError::TimedOut(chromium.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    match std::fs::read(&pdf) {
        Ok(bytes) if status.success() && bytes.starts_with(b"%PDF") => Ok(bytes),
        _ => Err(PdfError::Failed {
            chromium: chromium.display().to_string(),
            status: status.to_string(),
            stderr: stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_chromium_that_is_not_there_says_what_to_install() {
        let e = find_chromium(Some(Path::new("/nonexistent/chromium"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("apt-get install chromium"), "{msg}");
        assert!(msg.contains("/nonexistent/chromium"), "{msg}");
    }
}
