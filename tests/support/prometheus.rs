//! A real Prometheus (the Debian `prometheus` binary) for tests: it scrapes
//! the given continuity instances every second, keeps its storage in a
//! temporary folder, listens on 127.0.0.1 only, and answers PromQL through
//! its HTTP API as Grafana would ask it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::try_request;
use super::ports::free_port;

/// A scrape target: the address of a continuity instance and the
/// `location` label Prometheus adds to its series, as a deployment does.
pub struct Target {
    pub addr: SocketAddr,
    pub location: &'static str,
}

/// A running Prometheus; stopped (and its storage removed) when dropped.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The `prometheus` binary, when installed (scripts/test installs it).
pub fn binary() -> Option<&'static str> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (job `continuity`) every second,
    /// with `rule_files` loaded; returns once it reports ready.
    pub fn start(targets: &[Target], rule_files: &[&Path]) -> Prometheus {
        let binary = binary().expect("prometheus is not installed (apt-get install prometheus)");
        let dir = tempfile::tempdir().expect("tempdir");
        let static_configs: String = targets
            .iter()
            .map(|t| {
                format!(
                    "      - targets: ['{}']\n        labels: {{ location: '{}' }}\n",
                    t.addr, t.location
                )
            })
            .collect();
        let rules: String = rule_files
            .iter()
            .map(|p| format!("  - '{}'\n", p.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{rules}\
             scrape_configs:\n  - job_name: continuity\n    static_configs:\n{static_configs}"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        // The port is handed over on the command line, so another process
        // may take it first: then Prometheus exits and another is tried.
        for _ in 0..3 {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if matches!(
                    try_request(addr, "GET", "/-/ready", None, ""),
                    Some((200, _))
                ) {
                    return Prometheus {
                        child,
                        addr,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("prometheus did not come up on {addr}; trying another port");
        }
        panic!("prometheus did not start in 3 attempts");
    }

    /// `GET path?query` on the HTTP API; the parsed JSON answer, which must
    /// have `"status": "success"`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("{path}?{}", query.join("&"));
        let (status, body) = try_request(self.addr, "GET", &url, None, "")
            .unwrap_or_else(|| panic!("no answer from prometheus to {url}"));
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("prometheus answered {status} with no JSON ({e}): {body}"));
        assert_eq!(
            json["status"], "success",
            "prometheus rejected {path} {params:?}: {body}"
        );
        json
    }

    /// Seconds since the Unix epoch, as Prometheus's API takes time.
    pub fn now() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encoding for a query-string component.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
