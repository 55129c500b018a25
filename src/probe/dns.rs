//! DNS probe: ask one server one question over a fresh UDP socket or TCP
//! connection (no cache, no retries) and check the response code and answers.

use std::net::{IpAddr, SocketAddr};

use crate::config::{Location, Spanned};
use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::net::io_reason;
use super::parity::{self, CompareSpec, Observed, OldSide};
use super::{
    FailureReason, ProbeContext, ProbeError, ProbeOutcome, Prober, SpecDigest, known_name, phase,
};
use crate::config::{Dur, Validator};

/// Record types a DNS check can ask for.
pub const RECORD_TYPES: [&str; 10] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "PTR", "CAA",
];
/// Response codes by the names people know them by.
const RCODES: [(&str, u16); 11] = [
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
];
/// Where the default server comes from.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// EDNS payload size offered, the DNS Flag Day 2020 value that avoids
/// fragmentation.
const EDNS_PAYLOAD: u16 = 1232;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to ask about; for `type: PTR` an IP address also works.
    pub name: Spanned<String>,
    /// Record type; `A` when absent.
    #[serde(default, rename = "type")]
    pub record_type: Option<Spanned<String>>,
    /// `ip` or `ip:port`; the first nameserver of /etc/resolv.conf when absent.
    #[serde(default)]
    pub server: Option<Spanned<String>>,
    #[serde(default)]
    pub transport: Transport,
    /// `NOERROR` when absent.
    #[serde(default)]
    pub expect_rcode: Option<Spanned<String>>,
    /// Each must be among the answers' data, e.g. `192.0.2.10` or
    /// `10 mail.gemeente.nl`.
    #[serde(default)]
    pub expect_answers: Vec<String>,
    /// At least this many answers of the asked type.
    #[serde(default)]
    pub expect_min_answers: Option<usize>,
    /// The old DNS server (`ip` or `ip:port`), asked the same question
    /// side by side with `server` while old and new run in parallel.
    #[serde(default)]
    pub compare_with: Option<Spanned<String>>,
    /// What parity compares; the answer sets when absent.
    #[serde(default)]
    pub compare: Option<Spanned<CompareSpec>>,
}

/// A compiled dns check.
#[derive(Debug)]
pub struct DnsProbe {
    digest: SpecDigest,
    name: Name,
    record_type: RecordType,
    server: Option<SocketAddr>,
    rcode: u16,
    transport: Transport,
    /// `expect_answers` in canonical form.
    answers: Vec<String>,
    min_answers: Option<usize>,
    /// The old server and what to compare with it (`compare_with`).
    parity: Option<Box<OldSide<DnsProbe>>>,
}

impl DnsProbe {
    /// The old side, for a `compare_with` check.
    pub fn parity(&self) -> Option<&OldSide<DnsProbe>> {
        self.parity.as_deref()
    }
}

impl Prober for DnsProbe {
    type Spec = DnsSpec;

    fn compile(spec: DnsSpec, at: Location, v: &mut Validator) -> Option<DnsProbe> {
        let parity = parity::compile_old_side(
            parity::DNS,
            spec.compare_with.as_ref(),
            spec.compare.as_ref(),
            spec.server.as_ref().map_or("", |s| s.value.as_str()),
            |with| DnsSpec {
                server: Some(with),
                compare_with: None,
                compare: None,
                ..spec.clone()
            },
            at,
            v,
        );
        let record_type = match &spec.record_type {
            None => Some(RecordType::A),
            Some(t) => known_name(t, &RECORD_TYPES, "DNS record type", v)
                .and_then(|name| name.parse::<RecordType>().ok()),
        };

        let raw = spec.name.value.trim();
        let name = match raw.parse::<IpAddr>() {
            Ok(ip) if record_type == Some(RecordType::PTR) => Some(Name::from(ip)),
            _ => match Name::from_utf8(raw) {
                Ok(mut n) if !raw.is_empty() => {
                    n.set_fqdn(true);
                    Some(n)
                }
                Ok(_) | Err(_) => {
                    v.error(
                        spec.name.referenced,
                        format!("'{raw}' is not a valid DNS name"),
                        Some("write a name like portal.gemeente.nl".into()),
                    );
                    None
                }
            },
        };

        let server = match &spec.server {
            None => Some(None),
            Some(s) => match parse_server(&s.value) {
                Some(addr) => Some(Some(addr)),
                None => {
                    v.error(
                        s.referenced,
                        format!("server '{}' is not an IP address or ip:port", s.value),
                        Some("a DNS check asks one server directly, e.g. server: 192.0.2.53 or [2001:db8::53]:53".into()),
                    );
                    None
                }
            },
        };

        let rcode = match &spec.expect_rcode {
            None => Some(0),
            Some(r) => known_name(r, &RCODES.map(|(n, _)| n), "DNS response code", v)
                .and_then(|name| RCODES.iter().find(|(n, _)| *n == name))
                .map(|(_, code)| *code),
        };

        let (name, record_type, server, rcode, parity) =
            (name?, record_type?, server?, rcode?, parity?);
        let answers = spec
            .expect_answers
            .iter()
            .map(|a| canonical(record_type, a))
            .collect();
        Some(DnsProbe {
            digest: SpecDigest::of(&spec),
            name,
            record_type,
            server,
            rcode,
            transport: spec.transport,
            answers,
            min_answers: spec.expect_min_answers,
            parity,
        })
    }

    fn digest(&self) -> SpecDigest {
        self.digest
    }

    async fn probe(&self, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
        ask(self, ctx).await
    }
}

/// `ip`, `ip:port`, `[v6]` or `[v6]:port`; port 53 when absent.
fn parse_server(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

/// The first `nameserver` line of a resolv.conf.
fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines()
        .map(|l| l.split(['#', ';']).next().unwrap_or("").trim())
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|rest| {
            // Drop an IPv6 zone (`fe80::1%eth0`); the probe cannot use it.
            let ip = rest.trim().split('%').next()?;
            ip.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
}

/// Answer data as compared with `expect_answers`: names lowercase without
/// the trailing dot, addresses in their shortest form, TXT as is.
fn canonical(record_type: RecordType, text: &str) -> String {
    let text = text.trim();
    match record_type {
        RecordType::TXT => text.to_string(),
        RecordType::A | RecordType::AAAA => match text.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => text.to_ascii_lowercase(),
        },
        _ => text
            .split_whitespace()
            .map(|w| {
                let w = w.to_ascii_lowercase();
                match w.strip_suffix('.') {
                    Some(s) if !s.is_empty() => s.to_string(),
                    _ => w,
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn rcode_name(code: u16) -> String {
    RCODES
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("RCODE{code}"))
}

/// What came back for our question.
enum Reply {
    Answer(Box<Message>),
    Failed(FailureReason, String),
    /// The monitor ran out of its own descriptors, buffers or memory.
    Shortage(super::Shortage),
}

/// An I/O error on the way to the server: the monitor's shortage, or the
/// server's failure.
fn io_failed(e: &std::io::Error, detail: String) -> Reply {
    match super::Shortage::of(e, || detail.clone()) {
        Some(s) => Reply::Shortage(s),
        None => Reply::Failed(io_reason(e), detail),
    }
}

/// Is `m` the response to `q`? Stray or late packets are not.
fn answers_query(m: &Message, q: &Message) -> bool {
    m.metadata.id == q.metadata.id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && q.queries.len() == 1
        && m.queries[0].name().eq_ignore_root_case(q.queries[0].name())
        && m.queries[0].query_type() == q.queries[0].query_type()
        && m.queries[0].query_class() == q.queries[0].query_class()
}

async fn ask_udp(server: SocketAddr, query: &Message, wire: &[u8], ctx: &ProbeContext) -> Reply {
    let within = Dur(ctx.timeout);
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            return match io_failed(&e, format!("cannot open a UDP socket: {e}")) {
                Reply::Failed(_, detail) => Reply::Failed(FailureReason::Network, detail),
                other => other,
            };
        }
    };
    // A connected socket only hears the server, and hears ICMP port
    // unreachable as ECONNREFUSED.
    if let Err(e) = socket.connect(server).await {
        return io_failed(&e, format!("cannot reach {server}: {e}"));
    }
    if let Err(e) = socket.send(wire).await {
        return io_failed(&e, format!("cannot send to {server}: {e}"));
    }
    let mut buf = vec![0u8; 65535];
    let mut malformed: Option<String> = None;
    loop {
        match tokio::time::timeout_at(ctx.deadline(), socket.recv(&mut buf)).await {
            Ok(Ok(n)) => match Message::from_vec(&buf[..n]) {
                Ok(m) if answers_query(&m, query) => return Reply::Answer(Box::new(m)),
                Ok(_) => {}
                Err(e) => malformed = Some(format!("unparsable reply from {server}: {e}")),
            },
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Reply::Failed(
                    FailureReason::Refused,
                    format!("{server} refused (ICMP port unreachable): no DNS server listening"),
                );
            }
            Ok(Err(e)) => {
                return Reply::Failed(
                    io_reason(&e),
                    format!("receiving from {server} failed: {e}"),
                );
            }
            Err(_) => {
                return match malformed {
                    Some(m) => Reply::Failed(FailureReason::Malformed, m),
                    None => Reply::Failed(
                        FailureReason::Timeout,
                        format!("no answer from {server} within {within}"),
                    ),
                };
            }
        }
    }
}

async fn ask_tcp(
    server: SocketAddr,
    query: &Message,
    wire: &[u8],
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Reply {
    let within = Dur(ctx.timeout);
    let started = Instant::now();
    let connected = tokio::time::timeout_at(ctx.deadline(), TcpStream::connect(server)).await;
    outcome.phase(phase::CONNECT, started.elapsed());
    let mut stream = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return io_failed(&e, format!("cannot connect to {server}: {e}"));
        }
        Err(_) => {
            return Reply::Failed(
                FailureReason::Timeout,
                format!("no TCP connection to {server} within {within}"),
            );
        }
    };
    let exchange = async {
        let Ok(len) = u16::try_from(wire.len()) else {
            return Reply::Failed(FailureReason::Network, "query too long for TCP".into());
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(wire);
        if let Err(e) = stream.write_all(&framed).await {
            return io_failed(&e, format!("cannot send to {server}: {e}"));
        }
        loop {
            let mut len = [0u8; 2];
            if let Err(e) = stream.read_exact(&mut len).await {
                return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Reply::Failed(
                        FailureReason::Network,
                        format!("{server} closed the connection without answering"),
                    )
                } else {
                    Reply::Failed(
                        io_reason(&e),
                        format!("receiving from {server} failed: {e}"),
                    )
                };
            }
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if let Err(e) = stream.read_exact(&mut buf).await {
                return Reply::Failed(
                    FailureReason::Malformed,
                    format!("truncated reply from {server}: {e}"),
                );
            }
            match Message::from_vec(&buf) {
                Ok(m) if answers_query(&m, query) => return Reply::Answer(Box::new(m)),
                Ok(_) => {}
                Err(e) => {
                    return Reply::Failed(
                        FailureReason::Malformed,
                        format!("unparsable reply from {server}: {e}"),
                    );
                }
            }
        }
    };
    match tokio::time::timeout_at(ctx.deadline(), exchange).await {
        Ok(reply) => reply,
        Err(_) => Reply::Failed(
            FailureReason::Timeout,
            format!("no answer from {server} within {within}"),
        ),
    }
}

/// Ask the question once and check the response.
async fn ask(c: &DnsProbe, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    let server = match c.server {
        Some(s) => s,
        None => {
            let text = std::fs::read_to_string(RESOLV_CONF).map_err(|source| ProbeError::File {
                path: RESOLV_CONF.into(),
                source,
            })?;
            first_nameserver(&text).ok_or_else(|| {
                ProbeError::Setup(format!(
                    "no nameserver in {RESOLV_CONF}; give the dns check a server"
                ))
            })?
        }
    };

    let mut query = Message::query();
    query.metadata.id = rand::random::<u16>();
    query.metadata.recursion_desired = true;
    let mut q = Query::query(c.name.clone(), c.record_type);
    q.set_query_class(DNSClass::IN);
    query.add_query(q);
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    query.set_edns(edns);
    let wire = query
        .to_vec()
        .map_err(|e| ProbeError::Setup(format!("cannot encode DNS query for {}: {e}", c.name)))?;

    let mut outcome = ProbeOutcome::default();
    outcome.detail("server", server.to_string());
    outcome.detail("question", format!("{} {}", c.name, c.record_type));
    let reply = match c.transport {
        Transport::Udp => {
            let started = Instant::now();
            let reply = ask_udp(server, &query, &wire, ctx).await;
            outcome.phase(phase::RESPONSE, started.elapsed());
            reply
        }
        Transport::Tcp => {
            let started = Instant::now();
            let reply = ask_tcp(server, &query, &wire, ctx, &mut outcome).await;
            let connect = outcome.phases.iter().map(|(_, d)| *d).sum();
            outcome.phase(phase::RESPONSE, started.elapsed().saturating_sub(connect));
            reply
        }
    };
    let response = match reply {
        Reply::Answer(m) => m,
        Reply::Failed(reason, detail) => {
            outcome.fail(reason, detail);
            return Ok(outcome);
        }
        Reply::Shortage(s) => return Err(ProbeError::Resource(s)),
    };
    check_response(c, &response, &mut outcome, ctx.observe);
    Ok(outcome)
}

impl DnsProbe {
    /// What this check makes of a reply's bytes, without the network: the
    /// parse and every check a probe runs on an answer (the `dns_answer`
    /// fuzz target drives it).
    pub fn judge_reply(&self, bytes: &[u8]) -> ProbeOutcome {
        let mut outcome = ProbeOutcome::default();
        match Message::from_vec(bytes) {
            Ok(m) => check_response(self, &m, &mut outcome, false),
            Err(e) => outcome.fail(FailureReason::Malformed, format!("unparsable reply: {e}")),
        }
        outcome
    }
}

fn check_response(c: &DnsProbe, m: &Message, outcome: &mut ProbeOutcome, observe: bool) {
    let rcode = u16::from(m.metadata.response_code);
    outcome.detail("rcode", rcode_name(rcode));
    if m.metadata.truncation {
        outcome.detail(
            "truncated",
            "the answer did not fit in UDP; use transport: tcp for all of it",
        );
    }
    let answers: Vec<(RecordType, String)> = m
        .answers
        .iter()
        .map(|r: &Record| {
            (
                r.record_type(),
                canonical(r.record_type(), &r.data.to_string()),
            )
        })
        .collect();
    if observe {
        let mut set: Vec<String> = answers.iter().map(|(t, a)| format!("{t} {a}")).collect();
        set.sort();
        set.dedup();
        outcome.observed = Some(Box::new(Observed {
            answers: Some(set),
            ..Observed::default()
        }));
    }
    outcome.detail(
        "answers",
        answers
            .iter()
            .map(|(t, a)| format!("{t} {a}"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    if rcode != c.rcode {
        let expected = rcode_name(c.rcode);
        let got = rcode_name(rcode);
        let meaning = m.metadata.response_code.to_str();
        outcome.fail(
            FailureReason::Dns,
            format!(
                "{} {}: rcode {got} ({meaning}), expected {expected}",
                c.name, c.record_type
            ),
        );
        return;
    }
    for want in &c.answers {
        if !answers.iter().any(|(_, a)| a == want) {
            let got: Vec<&str> = answers.iter().map(|(_, a)| a.as_str()).collect();
            outcome.fail(
                FailureReason::Expectation,
                format!(
                    "answer '{want}' not among the answers for {} {} ({})",
                    c.name,
                    c.record_type,
                    if got.is_empty() {
                        "none".to_string()
                    } else {
                        got.join(", ")
                    }
                ),
            );
            return;
        }
    }
    if let Some(min) = c.min_answers {
        let n = answers.iter().filter(|(t, _)| *t == c.record_type).count();
        if n < min {
            outcome.fail(
                FailureReason::Expectation,
                format!(
                    "{n} {} answers for {}, expected at least {min}",
                    c.record_type, c.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(yaml: &str) -> (Option<DnsProbe>, Vec<String>) {
        crate::probe::compile_yaml("checks.yaml", yaml)
    }

    #[test]
    fn defaults_ask_for_a_records_expecting_noerror() {
        let (spec, issues) = validated("name: portal.gemeente.nl\n");
        assert!(issues.is_empty(), "{issues:?}");
        let c = spec.unwrap();
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(c.record_type, RecordType::A);
        assert_eq!(c.rcode, 0);
        assert_eq!(c.server, None);
        assert_eq!(c.name.to_string(), "portal.gemeente.nl.");
    }

    #[test]
    fn unknown_record_type_suggests_the_closest() {
        let (_, issues) = validated("name: a.nl\ntype: AAA\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].starts_with("checks.yaml:2:7: unknown DNS record type 'AAA'"),
            "{issues:?}"
        );
        assert!(issues[0].contains("did you mean A"), "{issues:?}");
    }

    #[test]
    fn server_must_be_an_address() {
        let (_, issues) = validated("name: a.nl\nserver: ns1.gemeente.nl\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].contains("is not an IP address or ip:port"),
            "{issues:?}"
        );
        assert_eq!(
            parse_server("192.0.2.1"),
            Some("192.0.2.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("192.0.2.1:5353"),
            Some("192.0.2.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_server("::1"), Some("[::1]:53".parse().unwrap()));
    }

    #[test]
    fn unknown_rcode_and_transport_are_rejected() {
        let (_, issues) = validated("name: a.nl\nexpect_rcode: NXDOMIAN\n");
        assert!(issues[0].contains("did you mean NXDOMAIN?"), "{issues:?}");
        let err = serde_saphyr::from_str::<DnsSpec>("name: a.nl\ntransport: tpc\n").unwrap_err();
        assert!(err.to_string().contains("tpc"), "{err}");
    }

    #[test]
    fn ptr_accepts_an_ip_address() {
        let (spec, issues) = validated("name: 192.0.2.10\ntype: ptr\n");
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(spec.unwrap().name.to_string(), "10.2.0.192.in-addr.arpa.");
    }

    #[test]
    fn resolv_conf_first_nameserver_wins() {
        let text =
            "# generated\nsearch gemeente.nl\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\n";
        assert_eq!(
            first_nameserver(text),
            Some("[fe80::1]:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("search x\n"), None);
    }

    #[test]
    fn answers_compare_in_canonical_form() {
        assert_eq!(
            canonical(RecordType::MX, "10 Mail.Gemeente.nl."),
            "10 mail.gemeente.nl"
        );
        assert_eq!(
            canonical(RecordType::AAAA, "2001:0DB8::0001"),
            "2001:db8::1"
        );
        assert_eq!(canonical(RecordType::TXT, "v=spf1 -all"), "v=spf1 -all");
        assert_eq!(canonical(RecordType::CNAME, "www.a.nl."), "www.a.nl");
    }
}
