//! Hostile and clumsy configurations (issue 16, findings 4, 5, 7, 8 and
//! the configuration items of 15): each is refused by the loader that
//! `check`, `run` and every reload share, with an error at its place that
//! says what to do, and never a panic, a hang, a leaked secret or a
//! quoted system file.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use continuity::config::{Config, LoadOptions};

mod support;
use support::daemon::{InProcess, request};

const CHECK: &str = "services:\n  - id: portal\n    checks:\n      - id: home\n        tcp: {target: 127.0.0.1:9}\n";

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The printed errors of loading `path`, on a thread of its own: a load
/// that hangs (a FIFO) or walks forever (a symlink loop) fails the test
/// after 20 s instead of hanging it.
fn errors(path: &Path) -> String {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Config::load(&path).map(|_| ()).map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => panic!("the configuration loaded, but it must be refused"),
        Ok(Err(e)) => e,
        Err(_) => panic!("loading the configuration did not finish within 20 s"),
    }
}

fn errors_of(yaml: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "continuity.yaml", yaml);
    (errors(&path), path.display().to_string())
}

#[test]
fn an_interval_of_a_million_years_is_refused_at_its_place() {
    let (e, file) = errors_of(&format!("defaults: {{ interval: 999999999d }}\n{CHECK}"));
    assert!(
        e.contains(&format!(
            "{file}:1:23: duration '999999999d' is longer than"
        )),
        "{e}"
    );
    let (e, file) = errors_of(&format!("defaults: {{ interval: 400d }}\n{CHECK}"));
    assert!(
        e.contains(&format!("{file}:1:23: interval 400d is longer than a day")),
        "{e}"
    );
}

#[test]
fn a_duration_beyond_any_timestamp_is_an_error_not_a_panic() {
    let (e, file) = errors_of(&format!(
        "defaults:\n  interval: 99999999999999999999s\n{CHECK}"
    ));
    assert!(
        e.contains(&format!("{file}:2:13")) && e.contains("longer than the longest accepted"),
        "{e}"
    );
}

#[test]
fn a_threshold_of_four_billion_is_refused() {
    let (e, _) = errors_of(&format!(
        "defaults:\n  failure_threshold: 4294967295\n{CHECK}"
    ));
    assert!(
        e.contains("failure_threshold 4294967295 is more than 100"),
        "{e}"
    );
}

#[test]
fn a_notification_ttl_that_would_expire_every_alert_is_refused() {
    let (e, _) = errors_of(&format!(
        "alerting:\n  notification_ttl: 999999999d\n{CHECK}"
    ));
    assert!(
        e.contains("2:21: duration '999999999d' is longer than"),
        "{e}"
    );
    let (e, _) = errors_of(&format!("alerting:\n  notification_ttl: 30d\n{CHECK}"));
    assert!(
        e.contains("notification_ttl 30d is longer than a week"),
        "{e}"
    );
}

#[test]
fn a_duplicate_key_is_named_without_library_jargon() {
    let (e, file) = errors_of(&format!("location: a\nlocation: b\n{CHECK}"));
    assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    assert!(
        e.contains(&format!("{file}:2:1: key 'location' is written twice")),
        "{e}"
    );
}

#[test]
fn invalid_utf8_is_reported_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "continuity.yaml",
        [b"location: caf\xe9\n".as_slice(), CHECK.as_bytes()].concat(),
    );
    let e = errors(&path);
    assert!(
        e.contains(&format!("{}:1:14: this byte is not UTF-8", path.display())),
        "{e}"
    );
}

#[test]
fn a_100_kb_id_is_not_echoed_whole() {
    let id = "X".repeat(100_000);
    let (e, _) = errors_of(&format!(
        "services:\n  - id: {id}\n    checks:\n      - id: {id}\n        tcp: {{target: 127.0.0.1:9}}\n"
    ));
    assert!(
        e.contains("is not a valid id"),
        "{}",
        &e[..e.len().min(300)]
    );
    assert!(e.len() < 2_000, "{} bytes of errors", e.len());
}

#[test]
fn a_file_too_large_for_one_document_says_to_split_it() {
    let mut yaml = String::from("services:\n  - id: portal\n    labels: {");
    for i in 0..130_000 {
        yaml.push_str(&format!("k{i}: v,"));
    }
    yaml.push_str("}\n    checks:\n      - id: home\n        tcp: {target: 127.0.0.1:9}\n");
    let (e, _) = errors_of(&yaml);
    assert!(!e.contains("Nodes {"), "{e}");
    assert!(
        e.contains("too large to read as one YAML document") && e.contains("include:"),
        "{e}"
    );
}

#[test]
fn check_refuses_a_store_path_that_run_cannot_open() {
    let (e, file) = errors_of(&format!("store:\n  path: /etc\n{CHECK}"));
    assert!(
        e.contains(&format!("{file}:2:9: store.path /etc is a directory")),
        "{e}"
    );
    let (e, _) = errors_of(&format!("store:\n  path: /etc/hostname/x.db\n{CHECK}"));
    assert!(e.contains("/etc/hostname is not a directory"), "{e}");
}

#[test]
fn an_empty_file_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "continuity.yaml", "");
    let e = errors(&path);
    assert!(
        e.contains("defines no service") && e.contains("--allow-empty"),
        "{e}"
    );
    let cfg = Config::load_with(
        &path,
        LoadOptions {
            allow_empty: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert!(cfg.services.is_empty());
}

#[test]
fn a_url_password_is_not_echoed_in_an_error() {
    let (e, _) = errors_of(
        "services:\n  - id: portal\n    checks:\n      - id: home\n        http: {url: \"http://admin:PASSWORD@portal.example/\"}\n",
    );
    assert!(e.contains("carries credentials"), "{e}");
    assert!(!e.contains("PASSWORD"), "{e}");
    assert!(e.contains("admin:***@portal.example"), "{e}");
}

#[test]
fn a_symlink_loop_under_a_recursive_include_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    std::fs::create_dir_all(cat.join("a")).unwrap();
    write(&cat, "a/portal.yaml", CHECK);
    std::os::unix::fs::symlink(".", cat.join("self")).unwrap();
    std::os::unix::fs::symlink("..", cat.join("a/up")).unwrap();
    let main = write(
        dir.path(),
        "continuity.yaml",
        "include: [\"cat/**/*.yaml\"]\n",
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            Config::load(&main)
                .map(|c| c.files.len())
                .map_err(|e| e.to_string()),
        );
    });
    let loaded = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the include finishes");
    assert_eq!(loaded, Ok(2), "main file and cat/a/portal.yaml, once");
}

#[test]
fn a_device_or_a_fifo_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    // Not a catalogue by its name; nor by its type behind a YAML name.
    let e = errors(&write(
        dir.path(),
        "zero.yaml",
        format!("include: ['/dev/zero']\n{CHECK}"),
    ));
    assert!(e.contains("not YAML catalogues, e.g. /dev/zero"), "{e}");
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("dev.yaml")).unwrap();
    let e = errors(&write(
        dir.path(),
        "link.yaml",
        format!("include: ['dev.yaml']\n{CHECK}"),
    ));
    assert!(
        e.contains("dev.yaml is not a regular file (a device)"),
        "{e}"
    );
    let fifo = dir.path().join("fifo.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let e = errors(&write(
        dir.path(),
        "main.yaml",
        format!("include: ['fifo.yaml']\n{CHECK}"),
    ));
    assert!(e.contains("is not a regular file (a named pipe)"), "{e}");
}

#[test]
fn a_file_that_is_not_a_catalogue_is_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    write(&etc, "shadow", "root:$6$s3cr3thash:19000:0:99999:7:::\n");
    // A catalogue named like one, holding a scalar, is not quoted either.
    write(&etc, "fake.yaml", "root:$6$s3cr3thash:19000:0:99999:7:::\n");
    let e = errors(&write(
        dir.path(),
        "continuity.yaml",
        format!("include: ['etc/*']\n{CHECK}"),
    ));
    assert!(e.contains("not YAML catalogues"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
}

#[test]
fn an_environment_value_stays_one_scalar() {
    // Names of their own: tests run in parallel in one process.
    // SAFETY: no other thread reads these variables.
    unsafe {
        std::env::set_var("HCONFIG_TEST_TOKEN", "abc #def");
        std::env::set_var(
            "HCONFIG_TEST_LOCATION",
            "inside\nstore: {path: /tmp/evil.db}",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "continuity.yaml",
        format!(
            "location: ${{HCONFIG_TEST_LOCATION}}\nserver:\n  api_token: ${{HCONFIG_TEST_TOKEN}}\n{CHECK}"
        ),
    );
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.server.api_token.as_ref().map(|t| t.expose()),
        Some("abc #def")
    );
    assert_eq!(cfg.location, "inside\nstore: {path: /tmp/evil.db}");
    assert_eq!(cfg.store.path, dir.path().join("continuity.db"));
}

#[test]
fn an_api_time_beyond_any_timestamp_is_a_bad_request_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "continuity.yaml",
        format!("server:\n  listen: 127.0.0.1:0\n{CHECK}"),
    );
    let daemon = InProcess::start(&cfg);
    let (status, body) = request(
        daemon.addr,
        "GET",
        "/api/v1/incidents?from=-99999999999999999999d",
        None,
        "",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("longer than the longest accepted"), "{body}");
    let (status, _) = request(daemon.addr, "GET", "/api/v1/incidents?from=-1d", None, "");
    assert_eq!(status, 200);
}

#[test]
fn a_secret_or_ca_file_that_is_a_device_is_refused_without_reading_it() {
    let (e, _) = errors_of(&format!("server:\n  api_token_file: /dev/zero\n{CHECK}"));
    assert!(
        e.contains("cannot read api_token_file /dev/zero: it is not a regular file (a device)"),
        "{e}"
    );
    let (e, _) = errors_of(
        "services:\n  - id: portal\n    checks:\n      - id: home\n        tls: {target: 127.0.0.1:443, ca_file: /dev/zero}\n",
    );
    assert!(e.contains("/dev/zero: it is not a regular file"), "{e}");
}
