//! `continuity demo`: simulated citizen services on loopback, so that a
//! newcomer sees real probes, metrics and state changes within a minute
//! with no setup. The catalogue is `probes/demo.yaml`; its `${DEMO_*}`
//! variables are filled with the ports the simulations got.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

pub mod dns;
pub mod history;
pub mod phone;

/// The demo catalogue, built in so that `continuity demo` works anywhere.
pub const DEMO_CATALOGUE: &str = include_str!("../../probes/demo.yaml");

/// How the hosted application's scheduled outage repeats: down for
/// `OUTAGE` out of every `CYCLE`.
pub const CYCLE: Duration = Duration::from_secs(180);
pub const OUTAGE: Duration = Duration::from_secs(45);

/// Addresses of the running simulations, exported as `DEMO_*` variables.
#[derive(Debug, Clone)]
pub struct DemoServices {
    pub portal: SocketAddr,
    pub hosted_app: SocketAddr,
    pub slow_app: SocketAddr,
    pub tcp: SocketAddr,
    pub dns: SocketAddr,
    pub phone: SocketAddr,
    /// The permit application at its old supplier and at the new one,
    /// running side by side before their cutover.
    pub permits_old: SocketAddr,
    pub permits_new: SocketAddr,
}

impl DemoServices {
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.addresses();
        env.extend(cutover_env(jiff::Timestamp::now()));
        env
    }

    /// The simulations' addresses, one `DEMO_*` variable each.
    pub fn addresses(&self) -> Vec<(&'static str, String)> {
        [
            ("DEMO_PORTAL", self.portal),
            ("DEMO_HOSTED_APP", self.hosted_app),
            ("DEMO_SLOW_APP", self.slow_app),
            ("DEMO_TCP", self.tcp),
            ("DEMO_DNS", self.dns),
            ("DEMO_PHONE", self.phone),
            ("DEMO_PERMITS_OLD", self.permits_old),
            ("DEMO_PERMITS_NEW", self.permits_new),
        ]
        .into_iter()
        .map(|(k, a)| (k, a.to_string()))
        .collect()
    }
}

/// `text` with every `${NAME}` and `${NAME:-fallback}` of `vars` replaced
/// by its value, so the catalogue the demo writes to disk loads by itself:
/// `continuity report`, `sla` and `migration status` work on it while the
/// demo runs, without the demo's variables in the environment. Only the
/// demo's own variables are filled (addresses and instants it made);
/// anything else stays for the loader to expand.
pub fn fill(text: &str, vars: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in vars {
        let pattern = format!(r"\$\{{{}(:-[^}}]*)?\}}", regex::escape(name));
        if let Ok(re) = regex::Regex::new(&pattern) {
            out = re.replace_all(&out, regex::NoExpand(value)).into_owned();
        }
    }
    out
}

/// The demo's cutovers, relative to when it starts: the portal cut over
/// yesterday (a night window, now in hypercare), and the queue system's
/// window opens two minutes from now and lasts one, so a newcomer watches
/// a cutover, its verification round and the start of hypercare
/// (`continuity migration status`, `/api/v1/migrations`). The permit
/// application runs old and new side by side until its cutover in two
/// weeks.
pub fn cutover_env(now: jiff::Timestamp) -> Vec<(&'static str, String)> {
    let at = |minutes: i64| {
        let t = now + jiff::SignedDuration::from_mins(minutes);
        // Whole seconds read better in the catalogue and the status.
        jiff::Timestamp::from_second(t.as_second())
            .unwrap_or(t)
            .to_string()
    };
    vec![
        ("DEMO_CUTOVER_DONE_START", at(-30 * 60)),
        ("DEMO_CUTOVER_DONE_END", at(-26 * 60)),
        ("DEMO_CUTOVER_NEXT_START", at(2)),
        ("DEMO_CUTOVER_NEXT_END", at(3)),
        ("DEMO_CUTOVER_PARALLEL_START", at(14 * 24 * 60)),
        ("DEMO_CUTOVER_PARALLEL_END", at(14 * 24 * 60 + 6 * 60)),
    ]
}

/// Start every simulated service on 127.0.0.1; they stop when `stop` flips.
pub async fn start(stop: watch::Receiver<bool>) -> std::io::Result<DemoServices> {
    let portal = serve_http(stop.clone(), |_path| async {
        (
            StatusCode::OK,
            "<html><body><h1>Welkom bij de gemeente</h1></body></html>".to_string(),
        )
    })
    .await?;
    let hosted_app = serve_http(stop.clone(), |path| async move {
        if in_outage() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Scheduled outage (demo)".to_string(),
            );
        }
        // Fails now and then, as real hosted applications do.
        if rand::random_ratio(1, 12) {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error".to_string(),
            );
        }
        if path == "/api/health" {
            (
                StatusCode::OK,
                r#"{"status":"ok","version":"4.2.1"}"#.to_string(),
            )
        } else {
            (StatusCode::OK, "Afspraak maken".to_string())
        }
    })
    .await?;
    let slow_app = serve_http(stop.clone(), |_path| async {
        let ms = rand::random_range(200..2600);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        (StatusCode::OK, "Belastingzaken".to_string())
    })
    .await?;
    let tcp = serve_tcp(stop.clone()).await?;
    let dns_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let dns = dns_socket.local_addr()?;
    tokio::spawn(dns::serve(dns_socket, stop.clone()));
    let phone_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let phone = phone_socket.local_addr()?;
    let mut phone_stop = stop.clone();
    tokio::spawn(phone::serve_phone_line(phone_socket, async move {
        let _ = phone_stop.wait_for(|s| *s).await;
    }));
    // Old and new answer alike but for a build stamp that differs on
    // every answer, which parity learns as noise. Now and then the new
    // side reports itself degraded: a `json_fields` mismatch on `/status`.
    let permits_old = serve_http(stop.clone(), |_path| async {
        (StatusCode::OK, permits_status("ok"))
    })
    .await?;
    let permits_new = serve_http(stop.clone(), |_path| async {
        let status = if rand::random_ratio(1, 8) {
            "degraded"
        } else {
            "ok"
        };
        (StatusCode::OK, permits_status(status))
    })
    .await?;
    Ok(DemoServices {
        portal,
        hosted_app,
        slow_app,
        tcp,
        dns,
        phone,
        permits_old,
        permits_new,
    })
}

/// The permit application's status document, with a build stamp that
/// changes on every answer.
fn permits_status(status: &str) -> String {
    format!(
        r#"{{"status":"{status}","version":"7.4.0","served_at":"{}","request":"{:016x}"}}"#,
        jiff::Timestamp::now(),
        rand::random::<u64>()
    )
}

/// Whether the hosted application is in its scheduled outage right now.
pub fn in_outage() -> bool {
    let now = jiff::Timestamp::now().as_second() as u64;
    now % CYCLE.as_secs() >= CYCLE.as_secs() - OUTAGE.as_secs()
}

async fn serve_http<F, Fut>(
    mut stop: watch::Receiver<bool>,
    respond: F,
) -> std::io::Result<SocketAddr>
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (StatusCode, String)> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let respond = respond.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let respond = respond.clone();
                    async move {
                        let (status, body) = respond(req.uri().path().to_string()).await;
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = status;
                        Ok::<_, Infallible>(resp)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A line-based TCP service: answers `PING` with `PONG`.
async fn serve_tcp(mut stop: watch::Receiver<bool>) -> std::io::Result<SocketAddr> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"+OK gemeente-queue ready\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if line.trim() == "PING" {
                        b"PONG\r\n"
                    } else {
                        b"-ERR\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The demo catalogue loaded as `continuity demo` loads it, with its
/// cutovers around `now`, made-up ports and its store in `dir`.
#[cfg(test)]
pub(crate) fn catalogue_for_tests(
    now: jiff::Timestamp,
    dir: &std::path::Path,
) -> crate::config::Config {
    // A port of its own per simulation, as `start` gives them: the old and
    // new sides of a parallel run must differ.
    let port = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let services = DemoServices {
        portal: port(20000),
        hosted_app: port(20001),
        slow_app: port(20002),
        tcp: port(20003),
        dns: port(20004),
        phone: port(20005),
        permits_old: port(20006),
        permits_new: port(20007),
    };
    let vars: Vec<(String, String)> = services
        .addresses()
        .into_iter()
        .chain(cutover_env(now))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let path = dir.join("demo.yaml");
    std::fs::write(&path, DEMO_CATALOGUE).unwrap();
    let options = crate::config::LoadOptions {
        env: vars,
        ..Default::default()
    };
    crate::config::Config::load_with(&path, options)
        .unwrap_or_else(|e| panic!("the demo catalogue loads: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::{Phase, position};

    #[test]
    fn the_written_catalogue_has_the_demo_variables_filled_in() {
        let vars = vec![
            ("DEMO_TCP".to_string(), "127.0.0.1:4000".to_string()),
            ("DEMO_START".to_string(), "2026-12-07T01:00:00Z".to_string()),
        ];
        let text =
            "target: ${DEMO_TCP}\nstart: ${DEMO_START:-2027-01-01T00:00:00Z}\nother: ${HOME}\n";
        assert_eq!(
            fill(text, &vars),
            "target: 127.0.0.1:4000\nstart: 2026-12-07T01:00:00Z\nother: ${HOME}\n"
        );
    }

    #[test]
    fn the_demo_shows_one_service_in_hypercare_one_in_parallel_run_and_one_cutover_minutes_away() {
        let now = jiff::Timestamp::now();
        let dir = tempfile::tempdir().unwrap();
        let config = catalogue_for_tests(now, dir.path());
        let portal = config.service("citizen-portal").unwrap();
        let at = position(portal, now);
        assert_eq!((at.phase, at.supplier), (Phase::Hypercare, "northhost"));
        let queue = config.service("queue-service").unwrap();
        assert_eq!(position(queue, now).phase, Phase::Baseline);
        let soon = now + jiff::SignedDuration::from_mins(2) + jiff::SignedDuration::from_secs(30);
        assert_eq!(position(queue, soon).phase, Phase::Cutover);
        let permits = config.service("permits").unwrap();
        assert_eq!(position(permits, now).phase, Phase::Baseline);
        let after = now + jiff::SignedDuration::from_mins(4);
        assert_eq!(
            (
                position(queue, after).phase,
                position(queue, after).supplier
            ),
            (Phase::Hypercare, "queuecorp")
        );
    }
}
