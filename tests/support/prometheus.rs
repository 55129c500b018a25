//! A real Prometheus (the Debian `prometheus` package) for tests: it scrapes
//! the given continuity instances every second, each with its `location`
//! target label, evaluates the given rule files every second, listens on
//! 127.0.0.1 and keeps its TSDB in a temporary folder; killed when dropped.
//! [`Prometheus::query`] runs an instant query through its HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::try_request;
use super::ports::free_port;

/// Scrape and rule evaluation interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// One series of an instant query's result: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: serde_json::Map<String, serde_json::Value>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).and_then(|v| v.as_str()).unwrap_or("")
    }
}

/// The `prometheus` binary, when installed (scripts/test installs it).
pub fn binary() -> Option<&'static str> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// A query string's percent-encoding of `s`.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (address, location) as job
    /// `continuity`, with `rule_files` loaded. Panics with Prometheus's own
    /// output when it does not become ready.
    pub fn start(targets: &[(SocketAddr, &str)], rule_files: &[PathBuf]) -> Prometheus {
        let mut dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = format!(
            "global:\n  scrape_interval: {s}s\n  evaluation_interval: {s}s\nrule_files:\n",
            s = INTERVAL.as_secs()
        );
        for f in rule_files {
            cfg.push_str(&format!("  - {}\n", f.display()));
        }
        cfg.push_str("scrape_configs:\n  - job_name: continuity\n    static_configs:\n");
        for (addr, location) in targets {
            cfg.push_str(&format!(
                "      - targets: ['{addr}']\n        labels: {{ location: {location} }}\n"
            ));
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, cfg).expect("write prometheus.yml");
        // Another process may take the port between our check and
        // Prometheus binding it: then try another (see ports.rs).
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = dir.path().join(format!("prometheus-{port}.log"));
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("prometheus is needed for this test: apt-get install --no-install-recommends prometheus (scripts/test installs it)");
            let mut p = Prometheus {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
                dir,
            };
            if p.wait_ready(Duration::from_secs(30)) {
                return p;
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            dir = std::mem::replace(&mut p.dir, tempfile::tempdir().expect("temp dir"));
        }
        panic!("prometheus did not become ready in 3 attempts; its log:\n{last_log}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Some((200, _)) = try_request(self.addr, "GET", "/-/ready", None, "") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The folder Prometheus keeps its configuration, log and TSDB in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
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

    /// An instant query; panics when Prometheus rejects it (a query that
    /// does not parse is a test failure, not an empty result).
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        let v = self.api("/api/v1/query", &[("query", expr)]);
        v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Sample {
                labels: r["metric"].as_object().cloned().unwrap_or_default(),
                value: r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN),
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
