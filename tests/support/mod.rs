//! Real local servers for probe tests: an HTTP(S) server with the pages a
//! citizen portal has (and the ways it breaks), a test PKI, listeners that
//! never answer, a TCP line server and a DNS responder. Everything binds
//! 127.0.0.1 and lives as long as the test's runtime.
//!
//! Beside them: [`daemon`] drives the daemon (in-process or the binary),
//! [`smtp`] is a mail server for alerting tests, [`prometheus`] a real
//! Prometheus scraping the daemon, and [`ports`] starts the
//! servers that are other programs.
//!
//! Use it from a test file with `mod support;`.
#![allow(dead_code)]

pub mod daemon;
pub mod dashboards;
pub mod demo;
pub mod ports;
pub mod prometheus;
pub mod smtp;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use continuity::probe::Prober;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_rustls::TlsAcceptor;

// ------------------------------------------------------------------ specs

/// The `validate` every check kind's spec has.
/// Parse a spec from YAML as a user writes it and compile it; panics with
/// the issues when it is not valid.
pub fn spec<P: Prober>(yaml: &str) -> P
where
    P::Spec: DeserializeOwned,
{
    let s: P::Spec =
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("spec does not parse: {e}\n{yaml}"));
    continuity::probe::compile(s, "test.yaml")
        .unwrap_or_else(|e| panic!("spec is not valid: {e}\n{yaml}"))
}

/// Whether this process runs as root (raw sockets allowed).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

// ------------------------------------------------------------------- HTTP

pub type Body = BoxBody<Bytes, Infallible>;
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

pub fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into()).boxed()
}

pub fn respond(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(full(body))
        .expect("response")
}

fn redirect(status: u16, to: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("location", to)
        .body(full(""))
        .expect("response")
}

/// A body that sends `chunk` every `every`, forever.
pub fn endless(chunk: Bytes, every: Duration) -> Body {
    let stream = futures::stream::unfold((), move |()| {
        let chunk = chunk.clone();
        async move {
            tokio::time::sleep(every).await;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), ()))
        }
    });
    StreamBody::new(stream).boxed()
}

pub const WELKOM: &str = "<html><body><h1>Welkom bij de gemeente</h1></body></html>";
pub const JSON_HEALTH: &str = r#"{"status":"ok","checks":{"db":"up"},"count":3,"version":"2.4"}"#;

/// The pages of a small citizen portal and its failure modes:
/// - `/` 200 with [`WELKOM`]
/// - `/error` 500
/// - `/redirect/N` a chain of N 302s ending at `/`
/// - `/loop` redirects to itself
/// - `/slow/MS` answers after MS milliseconds
/// - `/health` JSON ([`JSON_HEALTH`])
/// - `/dribble` headers, then one byte every 100 ms forever
/// - `/flood` headers, then 16 KiB every millisecond forever
/// - `/big` a 2 MiB body with "EINDE" at its end
/// - `/echo` "METHOD host=HOST x-probe=HEADER user-agent=AGENT|AGENT"
/// - `/see-other` 302 to `/echo`, `/temporary` 307 to `/echo`
pub fn portal() -> Handler {
    Arc::new(|req: Request<Incoming>| {
        Box::pin(async move {
            let path = req.uri().path().to_string();
            if let Some(n) = path.strip_prefix("/redirect/") {
                let n: u32 = n.parse().unwrap_or(0);
                return if n == 0 {
                    redirect(302, "/")
                } else {
                    redirect(302, &format!("/redirect/{}", n - 1))
                };
            }
            if let Some(ms) = path.strip_prefix("/slow/") {
                let ms: u64 = ms.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return respond(200, WELKOM);
            }
            match path.as_str() {
                "/" => respond(200, WELKOM),
                "/error" => respond(500, "storing"),
                "/loop" => redirect(302, "/loop"),
                "/health" => Response::builder()
                    .header("content-type", "application/json")
                    .body(full(JSON_HEALTH))
                    .expect("response"),
                "/dribble" => Response::new(endless(
                    Bytes::from_static(b"."),
                    Duration::from_millis(100),
                )),
                "/flood" => Response::new(endless(
                    Bytes::from(vec![b'x'; 16 * 1024]),
                    Duration::from_millis(1),
                )),
                "/big" => {
                    let mut body = vec![b'x'; 2 * 1024 * 1024 - 5];
                    body.extend_from_slice(b"EINDE");
                    respond(200, body)
                }
                "/echo" => {
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_string()
                    };
                    let agents: Vec<_> = req
                        .headers()
                        .get_all("user-agent")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    let text = format!(
                        "{} host={} x-probe={} user-agent={}",
                        req.method(),
                        header("host"),
                        header("x-probe"),
                        agents.join("|")
                    );
                    respond(200, text)
                }
                "/see-other" => redirect(302, "/echo"),
                "/temporary" => redirect(307, "/echo"),
                _ => respond(404, "niet gevonden"),
            }
        })
    })
}

/// A running HTTP(S) server.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    scheme: &'static str,
    host: String,
}

impl HttpServer {
    /// A URL on this server, by the host name it was started for.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}:{}{path}", self.scheme, self.host, self.addr.port())
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve_one<S>(io: S, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let h = handler.clone();
        async move { Ok::<_, Infallible>(h(req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Serve `handler` over plain HTTP on 127.0.0.1.
pub async fn http_server(handler: Handler) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_one(stream, handler.clone()));
        }
    });
    HttpServer {
        addr,
        connections,
        scheme: "http",
        host: "127.0.0.1".into(),
    }
}

/// Serve `handler` over HTTPS with `cert` on 127.0.0.1; URLs use `localhost`.
pub async fn https_server(handler: Handler, cert: &TestCert) -> HttpServer {
    let acceptor = tls_acceptor(cert);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_one(tls, handler).await;
                }
            });
        }
    });
    HttpServer {
        addr,
        connections,
        scheme: "https",
        host: "localhost".into(),
    }
}

// -------------------------------------------------------------------- PKI

/// A private CA for tests, whose certificate can be given as `ca_file`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// A server certificate chain and its key.
pub struct TestCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    /// The leaf's notAfter, Unix seconds.
    pub not_after: i64,
}

/// When a test certificate is valid.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// From a year ago to a year ahead.
    Current,
    /// Only during 2020.
    Expired,
    /// From yesterday until this many days ahead.
    DaysLeft(i64),
}

fn ymd(days_from_today: i64) -> (i32, u8, u8, i64) {
    let now = jiff::Timestamp::now().as_second();
    let unix = now - now.rem_euclid(86400) + days_from_today * 86400;
    let day = jiff::Timestamp::from_second(unix)
        .expect("date in range")
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    (
        i32::from(day.year()),
        day.month() as u8,
        day.day() as u8,
        unix,
    )
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (y, m, d, _) = ymd(-400);
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d, _) = ymd(4000);
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Write the CA certificate as PEM into `dir`; the path is a `ca_file`.
    pub fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.pem).expect("write CA");
        path
    }

    /// A server certificate for `names`, signed by this CA.
    pub fn leaf(&self, names: &[&str], validity: Validity) -> TestCert {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (from, until) = match validity {
            Validity::Current => (ymd(-365), ymd(365)),
            Validity::Expired => {
                let from = (2020, 1, 1, 1_577_836_800);
                let until = (2021, 1, 1, 1_609_459_200);
                (from, until)
            }
            Validity::DaysLeft(days) => (ymd(-1), ymd(days)),
        };
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        TestCert {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            not_after: until.3,
        }
    }
}

/// A TLS acceptor on the ring provider serving `cert`.
pub fn tls_acceptor(cert: &TestCert) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// A bare TLS server: handshakes and then holds the connection.
pub async fn tls_server(cert: &TestCert) -> SocketAddr {
    let acceptor = tls_acceptor(cert);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buf = [0u8; 1024];
                    while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    addr
}

// -------------------------------------------------------------------- TCP

/// Accepts connections and never says a word (nor closes them).
pub async fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A local port with nothing listening on it: bound, so that no one else
/// takes it, but not listening, so that connections are refused.
pub async fn closed_port() -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let _held = socket;
        std::future::pending::<()>().await
    });
    addr
}

/// A line server: sends `greeting` on connect (when not empty), then
/// answers each line with `reply(line)`.
pub async fn line_server(greeting: &'static str, reply: fn(&str) -> String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !greeting.is_empty() && stream.write_all(greeting.as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=i).collect();
                        let line = String::from_utf8_lossy(&line).trim_end().to_string();
                        if stream.write_all(reply(&line).as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Sends `reply` (may be empty) to each connection and closes it.
pub async fn one_shot_server(reply: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    addr
}

// -------------------------------------------------------------------- DNS

/// How the test DNS server behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DnsMode {
    /// Answers from its small zone (NXDOMAIN for other names).
    Normal,
    /// First a reply with the wrong id, then the right one.
    WrongIdFirst,
    /// Never answers.
    Silent,
    /// Answers with bytes that are not a DNS message.
    Garbage,
}

/// The zone the test DNS server knows.
pub mod zone {
    pub const PORTAL: &str = "portal.gemeente.nl";
    pub const PORTAL_A: [&str; 2] = ["192.0.2.10", "192.0.2.11"];
    pub const WWW: &str = "www.gemeente.nl";
    pub const DOMAIN: &str = "gemeente.nl";
    pub const MX: &str = "10 mail.gemeente.nl";
    pub const TXT: &str = "v=spf1 -all";
}

fn dns_answer(query: &[u8], mode: DnsMode) -> Vec<Vec<u8>> {
    use hickory_proto::op::{Message, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    if mode == DnsMode::Garbage {
        return vec![b"this is not DNS".to_vec()];
    }
    let Ok(q) = Message::from_vec(query) else {
        return Vec::new();
    };
    let Some(question) = q.queries.first().cloned() else {
        return Vec::new();
    };
    let mut m = Message::response(q.metadata.id, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_query(question.clone());
    let qname = question
        .name()
        .to_string()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let name = |s: &str| Name::from_ascii(format!("{s}.")).expect("name");
    let a_records = |owner: &str| {
        zone::PORTAL_A
            .iter()
            .map(|ip| Record::from_rdata(name(owner), 300, RData::A(A(ip.parse().expect("ip")))))
            .collect::<Vec<_>>()
    };
    match (qname.as_str(), question.query_type()) {
        (zone::PORTAL, RecordType::A) => {
            for r in a_records(zone::PORTAL) {
                m.add_answer(r);
            }
        }
        (zone::WWW, RecordType::A) => {
            m.add_answer(Record::from_rdata(
                name(zone::WWW),
                300,
                RData::CNAME(CNAME(name(zone::PORTAL))),
            ));
            for r in a_records(zone::PORTAL) {
                m.add_answer(r);
            }
        }
        (zone::DOMAIN, RecordType::MX) => {
            m.add_answer(Record::from_rdata(
                name(zone::DOMAIN),
                300,
                RData::MX(MX::new(10, name("mail.gemeente.nl"))),
            ));
        }
        (zone::DOMAIN, RecordType::TXT) => {
            m.add_answer(Record::from_rdata(
                name(zone::DOMAIN),
                300,
                RData::TXT(TXT::new(vec![zone::TXT.to_string()])),
            ));
        }
        (zone::PORTAL | zone::WWW | zone::DOMAIN, _) => {}
        _ => m.metadata.response_code = ResponseCode::NXDomain,
    }
    let right = m.to_vec().expect("encode");
    if mode == DnsMode::WrongIdFirst {
        let mut wrong = m.clone();
        wrong.metadata.id = q.metadata.id.wrapping_add(1);
        return vec![wrong.to_vec().expect("encode"), right];
    }
    vec![right]
}

/// A DNS server on 127.0.0.1, UDP and TCP on the same port.
pub async fn dns_server(mode: DnsMode) -> SocketAddr {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            if mode == DnsMode::Silent {
                continue;
            }
            for reply in dns_answer(&buf[..n], mode) {
                let _ = udp.send_to(&reply, from).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).await.is_err() || mode == DnsMode::Silent {
                    // Hold the connection open without answering.
                    let _ = stream.read(&mut len).await;
                    return;
                }
                for reply in dns_answer(&query, mode) {
                    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&reply);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A UDP port on 127.0.0.1 where nothing listens. Released, unlike
/// [`closed_port`]: only a port with no socket at all answers "port
/// unreachable"; another process would have to take it within the
/// milliseconds the test runs.
pub async fn closed_udp_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    addr
}
