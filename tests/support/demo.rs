//! `continuity demo` as a user starts it, on a free port: the simulated
//! citizen services, the demo catalogue and a daemon probing them. Tests
//! that need every metric family alive (dashboards, Prometheus rules)
//! scrape it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `continuity demo`; killed when dropped.
pub struct Demo {
    child: Child,
    /// Where it serves /metrics and the API.
    pub addr: SocketAddr,
}

impl Demo {
    /// `continuity demo --listen 127.0.0.1:0`; returns once it printed the
    /// address of its metrics.
    pub fn start() -> Demo {
        Demo::start_with(None)
    }

    /// The same with `--catalogue FILE` when given.
    pub fn start_with(catalogue: Option<&Path>) -> Demo {
        let mut command = Command::new(env!("CARGO_BIN_EXE_continuity"));
        command.args(["demo", "--listen", "127.0.0.1:0"]);
        if let Some(c) = catalogue {
            command.arg("--catalogue").arg(c);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start continuity demo");
        let stdout = child.stdout.take().expect("stdout");
        let (found, addr) = std::sync::mpsc::channel();
        // Read to the end, always: a full pipe would stall the demo.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line
                    .trim()
                    .strip_prefix("metrics: http://")
                    .and_then(|rest| rest.strip_suffix("/metrics"))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = found.send(a);
                }
            }
        });
        match addr.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Demo { child, addr },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("continuity demo did not print the address of its metrics");
            }
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
