//! `continuity healthcheck [URL]`: asks a running daemon's `/healthz` and
//! exits 0 only on `200`. A container image without a shell or curl (the
//! distroless runtime image in `deploy/Dockerfile`) runs it as its
//! `HEALTHCHECK`. Plain HTTP/1.0 over a blocking socket: it runs once,
//! for a second, and needs no runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use thiserror::Error;

/// Where the daemon listens by default (`server.listen`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:9464/healthz";

#[derive(Debug, Error)]
pub enum HealthError {
    #[error("'{0}' is not an http:// URL with a host (write it like {DEFAULT_URL})")]
    BadUrl(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("no answer from {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} answered '{1}', not 200")]
    Unhealthy(String, String),
}

/// `GET url` once within `timeout`; `Ok` when it answers 200.
pub fn check(url: &str, timeout: Duration) -> Result<(), HealthError> {
    let bad = || HealthError::BadUrl(url.to_string());
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") {
        return Err(bad());
    }
    let host = uri.host().ok_or_else(bad)?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = format!("{host}:{port}");
    let addr = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| HealthError::Resolve(authority.clone(), e))?
        .next()
        .ok_or_else(|| {
            HealthError::Resolve(authority.clone(), std::io::ErrorKind::NotFound.into())
        })?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| HealthError::Connect(authority.clone(), e))?;
    let io = |e| HealthError::Io(authority.clone(), e);
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").map_err(io)?;
    // The status line is all that matters; /healthz answers in one packet.
    let mut buf = [0u8; 256];
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..]).map_err(io)?;
        if n == 0 || buf[..got + n].contains(&b'\n') {
            got += n;
            break;
        }
        got += n;
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    let status = head.lines().next().unwrap_or("").trim().to_string();
    match status.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(HealthError::Unhealthy(url.to_string(), status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        for url in ["https://127.0.0.1/healthz", "127.0.0.1:9464", "http:///x"] {
            assert!(
                matches!(
                    check(url, Duration::from_millis(100)),
                    Err(HealthError::BadUrl(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn a_closed_port_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = check(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_millis(500),
        );
        assert!(matches!(e, Err(HealthError::Connect(..))), "{e:?}");
    }

    #[test]
    fn a_non_200_answer_is_unhealthy_and_200_is_healthy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for reply in [
                "HTTP/1.1 503 Service Unavailable\r\n\r\n",
                "HTTP/1.1 200 OK\r\n\r\nok",
            ] {
                let (mut s, _) = l.accept().unwrap();
                // The whole request first: answering and closing while the
                // client still writes would break its pipe.
                let mut req = Vec::new();
                let mut buf = [0u8; 512];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        let url = format!("http://{addr}/healthz");
        let e = check(&url, Duration::from_secs(2));
        assert!(
            matches!(&e, Err(HealthError::Unhealthy(_, s)) if s.contains("503")),
            "{e:?}"
        );
        check(&url, Duration::from_secs(2)).unwrap();
        server.join().unwrap();
    }
}
