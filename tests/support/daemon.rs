//! Driving the daemon from a test: [`InProcess`] runs `continuity::run()`
//! in this process on a listener bound to port 0, [`Daemon`] runs the real
//! binary (for what only a process has: signals, exit codes, `kill -9`),
//! which binds port 0 too and says where in its log. Both are talked to in
//! plain HTTP/1.0 (no client library); helpers read metrics and wait for
//! conditions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use continuity::config::Config;
use continuity::daemon::DaemonError;

/// `continuity::run()` on a runtime of its own, serving on 127.0.0.1 at a
/// port the system picked; stopped (gracefully) when dropped.
pub struct InProcess {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), DaemonError>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Load `config` (as `continuity run --config` does) and run it.
    pub fn start(config: &Path) -> InProcess {
        Self::start_on_clock(config, continuity::clock::Clock::system())
    }

    /// As [`InProcess::start`], on `clock` (a manual clock the test moves).
    #[allow(dead_code)]
    pub fn start_on_clock(config: &Path, clock: continuity::clock::Clock) -> InProcess {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = Config::load(config).unwrap_or_else(|e| {
            let issues: Vec<String> = e.issues.iter().map(|i| i.to_string()).collect();
            panic!("test configuration rejected:\n{}", issues.join("\n"))
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = runtime.spawn(continuity::run_on_clock(config, listener, shutdown, clock));
        InProcess {
            addr,
            stop: Some(stop),
            task: Some(task),
            runtime: Some(runtime),
        }
    }

    /// Stop it as a signal would, and give what `run()` returned.
    pub fn stop(mut self) -> Result<(), DaemonError> {
        self.shut_down().expect("the daemon task ended")
    }

    fn shut_down(&mut self) -> Option<Result<(), DaemonError>> {
        let (runtime, task) = (self.runtime.take()?, self.task.take()?);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("run() returned within 30 s of the shutdown signal")
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
        match result {
            Ok(r) => Some(r),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed already: don't wait for a graceful stop.
            if let Some(runtime) = self.runtime.take() {
                runtime.shutdown_background();
            }
            return;
        }
        if let Some(Err(e)) = self.shut_down() {
            panic!("the daemon did not stop cleanly: {e}");
        }
    }
}

/// The daemon binary as a child process; killed when dropped. Its log is
/// kept, and shown when the test fails.
pub struct Daemon {
    pub child: Child,
    /// Where it serves, as it logged it.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// `continuity run --config FILE`; the configuration should listen on
    /// port 0. Returns once the daemon logged the address it serves on.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_command(Command::new(env!("CARGO_BIN_EXE_continuity")), config)
    }

    /// [`Daemon::start`] through `command` (the binary itself, or a
    /// wrapper such as `prlimit` whose last argument is the binary).
    pub fn start_command(mut command: Command, config: &Path) -> Daemon {
        let mut child = command
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn,continuity=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start continuity");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, addr) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let kept = log.clone();
        // Read to the end, always: a full pipe would stall the daemon.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line
                    .split_once("listening on http://")
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = found.send(a);
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match addr.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "continuity did not log its address; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Daemon { child, addr, log }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Send `signal` (e.g. `-HUP`, `-TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {signal} failed");
    }

    /// SIGTERM, then wait up to `limit` for a clean exit.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal("-TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` and reap it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- continuity's log:\n{}", self.log.lock().unwrap());
        }
    }
}

/// One HTTP/1.0 request; `None` when the daemon cannot be reached.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.get(9..12)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

/// One HTTP/1.0 request that must get an answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    try_request(addr, method, path, token, body)
        .unwrap_or_else(|| panic!("no answer from {addr} to {method} {path}"))
}

/// `GET path`, body only.
pub fn get(addr: SocketAddr, path: &str) -> Option<String> {
    try_request(addr, "GET", path, None, "").map(|(_, body)| body)
}

/// The value of the first sample line starting with `prefix`.
pub fn metric(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Poll `f` every 100 ms until it gives a value; panic after `limit`.
pub fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Poll `f` every 100 ms until it holds; panic after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    wait_until(what, limit, || f().then_some(()))
}

/// Answer every HTTP/1.1 request on `listener` (read whole, with its body)
/// with what `handle` makes of its text: a plain server for webhooks and
/// targets in tests about the binary.
pub fn serve(
    listener: std::net::TcpListener,
    handle: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) {
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers and, when announced, the body.
                while let Ok(n) = stream.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let (status, body) = handle(&text);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
}
