//! The SIP probe against in-process fake servers on 127.0.0.1: scripted
//! misbehaviour (duplicates, silence, stray and broken replies) and the
//! responder for whole calls.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Location;
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;

use super::message::{self, Message, Request};
use super::responder::{self, LineBehaviour, LineState};
use super::*;
use crate::config::Validator;
use crate::probe::{FailureReason, ProbeContext, phase};

fn spec(yaml: &str) -> SipProbe {
    let s: SipSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
    crate::probe::compile(s, "/etc/continuity/phones.yaml")
        .unwrap_or_else(|e| panic!("unexpected issues: {e}"))
}

fn issues(yaml: &str) -> Vec<String> {
    let s: SipSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
    let mut v = Validator::new("/etc/continuity/phones.yaml".into());
    SipProbe::compile(s, Location::UNKNOWN, &mut v);
    v.issues.iter().map(|i| i.to_string()).collect()
}

async fn run(s: &SipProbe, timeout: Duration) -> ProbeOutcome {
    let ctx = ProbeContext::new(timeout);
    let mut o = s.probe(&ctx).await.expect("probe runs");
    o.duration = ctx.started.elapsed();
    o
}

/// A UDP fake server driven by a script that gets each request and the
/// socket to answer on.
struct Fake {
    port: u16,
    task: tokio::task::JoinHandle<Vec<Request>>,
}

async fn fake<F, Fut>(script: F) -> Fake
where
    F: FnOnce(Arc<UdpSocket>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Vec<Request>> + Send + 'static,
{
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let port = socket.local_addr().unwrap().port();
    let task = tokio::spawn(script(socket));
    Fake { port, task }
}

/// Receive the next request and who sent it.
async fn recv(s: &UdpSocket) -> (Request, std::net::SocketAddr) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = s.recv_from(&mut buf).await.unwrap();
        if let Ok(Message::Request(r)) = message::parse(&buf[..n]) {
            return (r, from);
        }
    }
}

async fn reply(s: &UdpSocket, to: std::net::SocketAddr, bytes: &[u8]) {
    s.send_to(bytes, to).await.unwrap();
}

fn options_spec(port: u16) -> SipProbe {
    spec(&format!("uri: sip:ping@127.0.0.1:{port}\n"))
}

#[tokio::test]
async fn options_succeeds_on_200_with_a_transcript() {
    let f = fake(|s| async move {
        let (r, from) = recv(&s).await;
        reply(&s, from, &message::response_to(&r, 200, "OK", Some("t"))).await;
        vec![r]
    })
    .await;
    let o = run(&options_spec(f.port), Duration::from_secs(2)).await;
    assert!(o.success(), "{:?}", o.failure);
    assert_eq!(o.sip_code, Some(200));
    assert!(o.phases.iter().any(|(p, _)| *p == phase::RESPONSE));
    assert!(o.exchange[0].starts_with("+0.0"), "{:?}", o.exchange);
    assert!(o.exchange[0].ends_with(&format!("> OPTIONS sip:ping@127.0.0.1:{} SIP/2.0", f.port)));
    assert!(
        o.exchange[1].ends_with("< SIP/2.0 200 OK"),
        "{:?}",
        o.exchange
    );

    let sent = f.task.await.unwrap();
    let h = &sent[0].headers;
    let via = h.get("via").unwrap();
    assert!(via.starts_with("SIP/2.0/UDP 127.0.0.1:"), "{via}");
    assert!(
        message::param(via, "branch")
            .unwrap()
            .starts_with("z9hG4bK")
    );
    assert!(via.ends_with(";rport"), "{via}");
    assert!(message::param(h.get("from").unwrap(), "tag").is_some());
    assert_eq!(h.get("max-forwards"), Some("70"));
    assert_eq!(h.get("cseq"), Some("1 OPTIONS"));
    assert!(h.get("call-id").is_some() && h.get("user-agent").is_some());
    assert_eq!(h.get("content-length"), Some("0"));
}

#[tokio::test]
async fn options_retransmits_over_udp_and_ignores_a_duplicate_200() {
    let f = fake(|s| async move {
        let (first, _) = recv(&s).await;
        // Lost: answer only the retransmission, twice.
        let (again, from) = recv(&s).await;
        let ok = message::response_to(&again, 200, "OK", Some("t"));
        reply(&s, from, &ok).await;
        reply(&s, from, &ok).await;
        vec![first, again]
    })
    .await;
    let o = run(&options_spec(f.port), Duration::from_secs(3)).await;
    assert!(o.success(), "{:?}", o.failure);
    assert!(
        o.exchange.iter().any(|l| l.ends_with("(retransmission)")),
        "{:?}",
        o.exchange
    );
    let sent = f.task.await.unwrap();
    // Same transaction: same branch and CSeq.
    assert_eq!(
        message::ids(&sent[0].headers),
        message::ids(&sent[1].headers)
    );
}

#[tokio::test]
async fn options_times_out_within_the_timeout_after_100_trying() {
    let f = fake(|s| async move {
        let (r, from) = recv(&s).await;
        reply(&s, from, &message::response_to(&r, 100, "Trying", None)).await;
        let mut all = vec![r];
        // Retransmissions keep coming (every T2 now); never answer.
        while let Ok((r, _)) = tokio::time::timeout(Duration::from_secs(3), recv(&s)).await {
            all.push(r);
        }
        all
    })
    .await;
    let started = Instant::now();
    let o = run(&options_spec(f.port), Duration::from_millis(1500)).await;
    assert_eq!(o.reason(), Some(FailureReason::Timeout));
    let detail = &o.failure.as_ref().unwrap().detail;
    assert!(detail.contains("100 Trying"), "{detail}");
    assert!(started.elapsed() < Duration::from_millis(1800));
    assert_eq!(o.sip_code, None);
}

#[tokio::test]
async fn a_response_with_another_branch_is_ignored_and_the_right_one_accepted() {
    let f = fake(|s| async move {
        let (r, from) = recv(&s).await;
        let stray = message::response_to(&r, 503, "Service Unavailable", Some("x"));
        let stray = String::from_utf8(stray)
            .unwrap()
            .replace("branch=z9hG4bK", "branch=z9hG4bKold");
        reply(&s, from, stray.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        reply(&s, from, &message::response_to(&r, 200, "OK", Some("t"))).await;
        vec![r]
    })
    .await;
    let o = run(&options_spec(f.port), Duration::from_secs(2)).await;
    assert!(o.success(), "{:?}", o.failure);
    assert_eq!(o.sip_code, Some(200));
    assert!(
        o.exchange
            .iter()
            .any(|l| l.contains("503") && l.contains("ignored")),
        "{:?}",
        o.exchange
    );
}

#[tokio::test]
async fn only_stray_responses_end_in_a_timeout() {
    let f = fake(|s| async move {
        let (r, from) = recv(&s).await;
        let wrong_call = message::response_to(&r, 200, "OK", Some("x"));
        let wrong_call = String::from_utf8(wrong_call)
            .unwrap()
            .replace("Call-ID: ", "Call-ID: other-");
        reply(&s, from, wrong_call.as_bytes()).await;
        let wrong_cseq = String::from_utf8(message::response_to(&r, 200, "OK", Some("x")))
            .unwrap()
            .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        reply(&s, from, wrong_cseq.as_bytes()).await;
        // Stay open: a closed port would make this "refused".
        let _ = tokio::time::timeout(Duration::from_secs(2), std::future::pending::<()>()).await;
        vec![r]
    })
    .await;
    let o = run(&options_spec(f.port), Duration::from_millis(800)).await;
    assert_eq!(o.reason(), Some(FailureReason::Timeout), "{:?}", o.exchange);
    assert_eq!(o.sip_code, None);
}

#[tokio::test]
async fn an_unparseable_reply_is_malformed_with_escaped_bytes() {
    let f = fake(|s| async move {
        let (r, from) = recv(&s).await;
        reply(
            &s,
            from,
            b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n\r\n\x00\xff",
        )
        .await;
        vec![r]
    })
    .await;
    let o = run(&options_spec(f.port), Duration::from_secs(2)).await;
    assert_eq!(o.reason(), Some(FailureReason::Malformed));
    let detail = &o.failure.as_ref().unwrap().detail;
    assert!(
        detail.contains("HTTP/1.1 400 Bad Request\\r\\n"),
        "{detail}"
    );
    assert!(detail.len() < 400, "{detail}");
}

#[tokio::test]
async fn a_huge_reply_is_malformed_not_buffered() {
    let f = fake(|s| async move {
        let (r, from) = recv(&s).await;
        let mut big = message::response_to(&r, 200, "OK", Some("t"));
        big.truncate(big.len() - 4);
        big.extend_from_slice(format!("\r\nX-Pad: {}\r\n\r\n", "a".repeat(60_000)).as_bytes());
        reply(&s, from, &big).await;
        vec![r]
    })
    .await;
    let o = run(&options_spec(f.port), Duration::from_secs(2)).await;
    assert_eq!(o.reason(), Some(FailureReason::Malformed));
    assert!(o.failure.as_ref().unwrap().detail.contains("exceeds"));
}

#[tokio::test]
async fn a_closed_udp_port_is_refused() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap().port()
    };
    let o = run(&options_spec(port), Duration::from_secs(2)).await;
    assert_eq!(o.reason(), Some(FailureReason::Refused), "{:?}", o.failure);
    assert!(o.duration < Duration::from_secs(1));
}

#[tokio::test]
async fn a_status_outside_accept_fails_with_the_code_and_accept_widens_it() {
    let script = |s: Arc<UdpSocket>| async move {
        let (r, from) = recv(&s).await;
        reply(
            &s,
            from,
            &message::response_to(&r, 404, "Not Found", Some("t")),
        )
        .await;
        vec![r]
    };
    let f = fake(script).await;
    let o = run(&options_spec(f.port), Duration::from_secs(2)).await;
    assert_eq!(o.reason(), Some(FailureReason::Status));
    assert_eq!(o.sip_code, Some(404));
    assert!(o.failure.unwrap().detail.contains("404 Not Found"));

    let f = fake(script).await;
    let wide = spec(&format!(
        "uri: sip:ping@127.0.0.1:{}\naccept: [200, 404]\n",
        f.port
    ));
    assert!(run(&wide, Duration::from_secs(2)).await.success());
}

/// A registrar that challenges with SHA-256 and checks the answer with
/// the password it knows.
async fn sha256_registrar(s: Arc<UdpSocket>, password: &'static str) -> Vec<Request> {
    let mut seen = Vec::new();
    let mut nonce_n = 0;
    loop {
        let Ok((r, from)) = tokio::time::timeout(Duration::from_secs(2), recv(&s)).await else {
            return seen;
        };
        seen.push(r.clone());
        let Some(auth) = r.headers.get("authorization") else {
            nonce_n += 1;
            let challenge = format!(
                "Digest realm=\"example.org\", nonce=\"n{nonce_n}\", qop=\"auth\", algorithm=SHA-256"
            );
            let resp = message::response_with(
                &r,
                401,
                "Unauthorized",
                Some("t"),
                &[("WWW-Authenticate", challenge)],
                None,
            );
            reply(&s, from, &resp).await;
            continue;
        };
        let field = |name: &str| {
            let at = auth.find(&format!("{name}=")).unwrap() + name.len() + 1;
            let rest = &auth[at..];
            let end = rest.find(',').unwrap_or(rest.len());
            rest[..end].trim_matches('"').to_string()
        };
        let ch = digest::parse_challenge(&format!(
            "Digest realm=\"example.org\", nonce=\"{}\", qop=\"auth\", algorithm=SHA-256",
            field("nonce")
        ))
        .unwrap();
        let want = digest::response(
            &ch,
            &digest::Answer {
                username: &field("username"),
                password,
                method: "REGISTER",
                uri: &field("uri"),
                body: b"",
                nc: u32::from_str_radix(&field("nc"), 16).unwrap(),
                cnonce: &field("cnonce"),
            },
        );
        let ok = field("response") == want && field("uri") == r.uri;
        let resp = if ok {
            message::response_with(
                &r,
                200,
                "OK",
                Some("t"),
                &[(
                    "Contact",
                    format!("{};expires=60", r.headers.get("contact").unwrap()),
                )],
                None,
            )
        } else {
            message::response_to(&r, 403, "Forbidden", Some("t"))
        };
        reply(&s, from, &resp).await;
    }
}

#[tokio::test]
async fn register_answers_a_sha256_challenge_and_unregisters() {
    let f = fake(|s| sha256_registrar(s, "s3cret")).await;
    let s = spec(&format!(
        "uri: sip:127.0.0.1:{}\nmethod: register\nusername: alice\npassword: s3cret\n",
        f.port
    ));
    let o = run(&s, Duration::from_secs(3)).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert_eq!(o.sip_code, Some(200));
    let unregister = o.details.iter().find(|(k, _)| k == "unregister").unwrap();
    assert!(unregister.1.starts_with("removed"), "{unregister:?}");
    let sent = f.task.await.unwrap();
    assert!(sent.len() >= 3, "challenge, register, unregister: {sent:?}");
    let last = sent.last().unwrap();
    assert_eq!(last.headers.get("expires"), Some("0"));
    assert!(last.headers.get("authorization").is_some());
    let cseqs: Vec<u32> = sent
        .iter()
        .map(|r| message::ids(&r.headers).unwrap().cseq)
        .collect();
    assert!(cseqs.windows(2).all(|w| w[0] < w[1]), "{cseqs:?}");
    assert!(sent[0].headers.get("contact").is_some());
    assert_eq!(sent[0].uri, format!("sip:127.0.0.1:{}", f.port));
    assert!(
        sent[0]
            .headers
            .get("to")
            .unwrap()
            .contains("sip:alice@127.0.0.1")
    );
}

#[tokio::test]
async fn register_with_a_wrong_password_fails_with_auth() {
    let f = fake(|s| sha256_registrar(s, "other")).await;
    let s = spec(&format!(
        "uri: sip:127.0.0.1:{}\nmethod: register\nusername: alice\npassword: s3cret\n",
        f.port
    ));
    let o = run(&s, Duration::from_secs(3)).await;
    assert_eq!(o.reason(), Some(FailureReason::Auth), "{:?}", o.exchange);
    assert_eq!(o.sip_code, Some(403));
}

fn line(
    behaviour: LineBehaviour,
) -> impl FnOnce(
    Arc<UdpSocket>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Request>> + Send>> {
    move |s| {
        Box::pin(async move {
            let socket = Arc::try_unwrap(s).expect("only owner");
            let up: responder::StateFn = Arc::new(|| LineState::Up);
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                responder::serve_udp(socket, behaviour, up, std::future::pending()),
            )
            .await;
            Vec::new()
        })
    }
}

#[tokio::test]
async fn a_test_call_that_is_answered_reports_ringing_and_answer_and_hangs_up() {
    let f = fake(line(LineBehaviour {
        answer_after: Some(Duration::from_millis(100)),
    }))
    .await;
    let s = spec(&format!(
        "uri: sip:1400@127.0.0.1:{}\nmethod: invite\n",
        f.port
    ));
    let o = run(&s, Duration::from_secs(3)).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert_eq!(o.sip_code, Some(200));
    let ringing = o
        .phases
        .iter()
        .find(|(p, _)| *p == phase::RINGING)
        .unwrap()
        .1;
    let answer = o
        .phases
        .iter()
        .find(|(p, _)| *p == phase::ANSWER)
        .unwrap()
        .1;
    assert!(ringing < answer, "{ringing:?} {answer:?}");
    assert!(answer >= Duration::from_millis(100));
    let hangup = o.details.iter().find(|(k, _)| k == "hangup").unwrap();
    assert_eq!(hangup.1, "BYE answered 200 OK");
    let lines: Vec<&str> = o
        .exchange
        .iter()
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("> ACK sip:line@127.0.0.1:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("> BYE sip:line@127.0.0.1:")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_test_call_that_only_rings_is_up_and_is_cancelled() {
    let f = fake(line(LineBehaviour { answer_after: None })).await;
    let s = spec(&format!(
        "uri: sip:1400@127.0.0.1:{}\nmethod: invite\nring_time: 200ms\n",
        f.port
    ));
    let o = run(&s, Duration::from_secs(3)).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert_eq!(o.sip_code, Some(180));
    assert!(o.phases.iter().all(|(p, _)| *p != phase::ANSWER));
    let hangup = o.details.iter().find(|(k, _)| k == "hangup").unwrap();
    assert_eq!(
        hangup.1, "cancelled (487 Request Terminated)",
        "{:?}",
        o.exchange
    );
    assert!(o.exchange.iter().any(|l| l.contains("> CANCEL ")));
    assert!(o.exchange.iter().any(|l| l.contains("> ACK ")));
    assert!(o.duration < Duration::from_secs(1));
}

#[tokio::test]
async fn a_busy_line_fails_with_status_and_the_486_is_acknowledged() {
    let f = fake(|s| async move {
        let (invite, from) = recv(&s).await;
        reply(
            &s,
            from,
            &message::response_to(&invite, 100, "Trying", None),
        )
        .await;
        reply(
            &s,
            from,
            &message::response_to(&invite, 486, "Busy Here", Some("b")),
        )
        .await;
        let (ack, _) = recv(&s).await;
        vec![invite, ack]
    })
    .await;
    let s = spec(&format!(
        "uri: sip:1400@127.0.0.1:{}\nmethod: invite\n",
        f.port
    ));
    let o = run(&s, Duration::from_secs(2)).await;
    assert_eq!(o.reason(), Some(FailureReason::Status));
    assert_eq!(o.sip_code, Some(486));
    assert!(o.failure.unwrap().detail.contains("486 Busy Here"));
    let sent = f.task.await.unwrap();
    let (invite, ack) = (&sent[0], &sent[1]);
    assert_eq!(ack.method, "ACK");
    let (i, a) = (
        message::ids(&invite.headers).unwrap(),
        message::ids(&ack.headers).unwrap(),
    );
    assert_eq!((i.branch, i.cseq), (a.branch, a.cseq));
    assert_eq!(
        message::param(ack.headers.get("to").unwrap(), "tag"),
        Some("b")
    );
    assert_eq!(invite.headers.get("content-type"), Some("application/sdp"));
    let sdp = String::from_utf8_lossy(&invite.body);
    assert!(
        sdp.contains("m=audio ") && sdp.contains("RTP/AVP 8 0"),
        "{sdp}"
    );
    assert!(sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");
    assert!(invite.headers.get("contact").is_some());
}

#[tokio::test]
async fn a_repeated_200_to_invite_is_acknowledged_again_not_taken_for_the_bye_answer() {
    let f = fake(|s| async move {
        let (invite, from) = recv(&s).await;
        let ok = message::response_with(&invite, 200, "OK", Some("a"), &[], None);
        reply(
            &s,
            from,
            &message::response_to(&invite, 180, "Ringing", Some("a")),
        )
        .await;
        reply(&s, from, &ok).await;
        let mut seen = vec![invite];
        let (ack, _) = recv(&s).await;
        seen.push(ack);
        let (bye, _) = recv(&s).await;
        // As if our ACK was lost: the 200 comes again before the BYE's answer.
        reply(&s, from, &ok).await;
        let (ack2, _) = recv(&s).await;
        seen.push(ack2);
        reply(&s, from, &message::response_to(&bye, 200, "OK", None)).await;
        seen.push(bye);
        seen
    })
    .await;
    let s = spec(&format!(
        "uri: sip:1400@127.0.0.1:{}\nmethod: invite\n",
        f.port
    ));
    let o = run(&s, Duration::from_secs(3)).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    let hangup = o.details.iter().find(|(k, _)| k == "hangup").unwrap();
    assert_eq!(hangup.1, "BYE answered 200 OK", "{:?}", o.exchange);
    let sent = f.task.await.unwrap();
    let methods: Vec<&str> = sent.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["INVITE", "ACK", "ACK", "BYE"]);
}

#[tokio::test]
async fn no_response_to_invite_is_a_timeout_that_leaves_room_for_nothing_else() {
    let f = fake(|s| async move {
        let mut seen = Vec::new();
        while let Ok((r, _)) = tokio::time::timeout(Duration::from_secs(3), recv(&s)).await {
            seen.push(r);
        }
        seen
    })
    .await;
    let s = spec(&format!(
        "uri: sip:1400@127.0.0.1:{}\nmethod: invite\n",
        f.port
    ));
    let started = Instant::now();
    let o = run(&s, Duration::from_millis(2000)).await;
    assert_eq!(o.reason(), Some(FailureReason::Timeout));
    assert!(started.elapsed() < Duration::from_millis(2100));
    let sent = f.task.await.unwrap();
    // Timer A: 0, 0.5 s, 1.5 s.
    assert!(
        sent.len() >= 2 && sent.iter().all(|r| r.method == "INVITE"),
        "{sent:?}"
    );
}

#[tokio::test]
async fn options_over_tcp_frames_split_and_joined_messages() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let req = loop {
            let mut chunk = [0u8; 2048];
            let n = conn.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Ok(message::Frame::Complete(n)) = message::frame(&buf) {
                let Ok(Message::Request(r)) = message::parse(&buf[..n]) else {
                    panic!("not a request")
                };
                break r;
            }
        };
        let mut both = message::response_to(&req, 100, "Trying", None);
        both.extend(message::response_with(
            &req,
            200,
            "OK",
            Some("t"),
            &[],
            Some(("text/plain", b"hello")),
        ));
        let (a, b) = both.split_at(both.len() - 30);
        conn.write_all(a).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.write_all(b).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let s = spec(&format!("uri: sip:ping@127.0.0.1:{port}\ntransport: tcp\n"));
    let o = run(&s, Duration::from_secs(2)).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert!(o.phases.iter().any(|(p, _)| *p == phase::CONNECT));
    assert_eq!(
        o.exchange
            .iter()
            .filter(|l| l.contains("< SIP/2.0"))
            .count(),
        2,
        "{:?}",
        o.exchange
    );
    assert!(
        o.exchange[0].contains(";transport=tcp SIP/2.0"),
        "{:?}",
        o.exchange
    );
}

#[tokio::test]
async fn a_tcp_server_that_closes_without_answering_is_a_network_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        drop(conn);
    });
    let s = spec(&format!("uri: sip:ping@127.0.0.1:{port}\ntransport: tcp\n"));
    let o = run(&s, Duration::from_secs(2)).await;
    assert!(
        matches!(
            o.reason(),
            Some(FailureReason::Network | FailureReason::Refused)
        ),
        "{:?}",
        o.failure
    );
}

#[test]
fn valid_specs_compile_with_their_defaults() {
    let s = spec("uri: sip:ping@sbc.example.org\n");
    let c = s;
    assert_eq!(c.dest.transport, Transport::Udp);
    assert_eq!(
        (c.dest.host.as_str(), c.dest.port),
        ("sbc.example.org", 5060)
    );
    assert_eq!(c.accept, [200]);
    assert_eq!(c.from.to_string(), "sip:continuity@sbc.example.org");

    let s = spec(
        "uri: sips:pbx.example.org\nmethod: register\nusername: alice\npassword: x\nexpires: 5m\n",
    );
    let c = s;
    assert_eq!(
        (c.dest.transport, c.dest.port, c.expires),
        (Transport::Tls, 5061, 300)
    );
    assert_eq!(c.to.to_string(), "sips:alice@pbx.example.org");

    let s = spec(
        "uri: sip:1400@gemeente.nl;transport=tcp\nmethod: invite\nproxy: sbc.example.org:5080\n",
    );
    let c = s;
    assert_eq!(c.dest.transport, Transport::Tcp);
    assert_eq!(
        (c.dest.host.as_str(), c.dest.port),
        ("sbc.example.org", 5080)
    );
    assert_eq!(c.accept, [180, 183, 200]);
    assert_eq!(
        c.request_uri.to_string(),
        "sip:1400@gemeente.nl;transport=tcp"
    );
}

#[test]
fn invalid_specs_are_rejected_with_a_reason_and_a_fix() {
    let cases = [
        (
            "uri: http://sbc.example.org\n",
            "is not a sip: or sips: URI",
        ),
        (
            "uri: sip:a@b\nmethod: register\n",
            "registrar, whose URI has no user part",
        ),
        (
            "uri: sip:b\nmethod: register\n",
            "method register needs credentials",
        ),
        (
            "uri: sip:b\nmethod: register\nusername: a\n",
            "method register needs credentials",
        ),
        ("uri: sip:b\npassword: x\n", "a password without a username"),
        (
            "uri: sip:b\nmethod: register\nusername: a\npassword: ''\n",
            "the password is empty",
        ),
        (
            "uri: sip:b.example.org\nmethod: invite\n",
            "needs a number to call",
        ),
        ("uri: sip:a@b\naccept: [100]\n", "100 Trying only says"),
        ("uri: sip:a@b\naccept: [180]\n", "180 is provisional"),
        ("uri: sip:a@b\naccept: [999]\n", "not a SIP response code"),
        ("uri: sip:a@b\naccept: []\n", "accept is empty"),
        (
            "uri: sips:a@b\ntransport: udp\n",
            "a sips: URI needs transport tls",
        ),
        (
            "uri: sip:a@b;transport=tcp\ntransport: udp\n",
            "contradicts the URI",
        ),
        (
            "uri: sip:a@b\nca_file: ca.pem\n",
            "ca_file only applies to transport tls",
        ),
        (
            "uri: sip:a@b\ntls_verify: false\n",
            "tls_verify only applies to transport tls",
        ),
        (
            "uri: sip:a@b\nexpires: 60s\n",
            "expires only applies to method register",
        ),
        (
            "uri: sip:a@b\nring_time: 2s\n",
            "ring_time only applies to method invite",
        ),
        ("uri: sip:a@b\nproxy: 'sbc:99999'\n", "is not host[:port]"),
        ("uri: sip:a@b\nproxy: 'ü:5060'\n", "is not host[:port]"),
        ("uri: sip:a@b\nusername: 'a b'\n", "cannot be the user part"),
        ("uri: sip:a@b\nfrom: alice\n", "from: "),
        (
            "uri: sip:b\nmethod: register\nusername: a\npassword_file: nope.txt\n",
            "cannot read password_file /etc/continuity/nope.txt",
        ),
    ];
    for (yaml, want) in cases {
        let got = issues(yaml);
        assert!(
            got.iter().any(|i| i.contains(want)),
            "{yaml:?}: want {want:?}, got {got:?}"
        );
    }
    let err = serde_saphyr::from_str::<SipSpec>("uri: sip:a@b\ntransport: sctp\n").unwrap_err();
    assert!(err.to_string().contains("sctp"), "{err}");
    let err = serde_saphyr::from_str::<SipSpec>("uri: sip:a@b\nmethod: subscribe\n").unwrap_err();
    assert!(err.to_string().contains("subscribe"), "{err}");
}

#[test]
fn password_file_is_read_relative_to_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    let s: SipSpec =
        serde_saphyr::from_str("uri: sip:b\nmethod: register\nusername: a\npassword_file: pw\n")
            .unwrap();
    let config = dir.path().join("phones.yaml").display().to_string();
    let s: SipProbe = crate::probe::compile(s, &config).unwrap_or_else(|e| panic!("{e}"));
    let creds = s.credentials.as_ref().unwrap();
    assert_eq!(creds.password.expose(), "s3cret");
    assert!(!format!("{s:?}").contains("s3cret"));
}

#[test]
fn a_rotated_password_file_changes_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("phones.yaml").display().to_string();
    let compile = |password: &str| -> SipProbe {
        std::fs::write(dir.path().join("pw"), password).unwrap();
        let s: SipSpec = serde_saphyr::from_str(
            "uri: sip:b\nmethod: register\nusername: a\npassword_file: pw\n",
        )
        .unwrap();
        crate::probe::compile(s, &config).unwrap_or_else(|e| panic!("{e}"))
    };
    let (old, again, rotated) = (compile("old\n"), compile("old\n"), compile("new\n"));
    assert_eq!(old.digest(), again.digest());
    assert_ne!(old.digest(), rotated.digest());
}

#[test]
fn the_documented_check_loads_as_written() {
    let yaml = "services:
  - id: sip-trunk
    checks:
      - id: trunk-options
        sip:
          uri: sip:ping@sbc.example.org:5060
          transport: udp          # udp | tcp | tls
          method: options         # options | register | invite
          accept: [200]           # codes that count as up; e.g. add 401, 403, 404, 405, 407
";
    let config = crate::config::Config::from_str("continuity.yaml", yaml).expect("loads");
    let crate::config::CheckKind::Sip(s) = &config.services[0].checks[0].kind else {
        panic!("not a sip check")
    };
    let c = s;
    assert_eq!(
        (c.method, c.dest.transport, c.dest.port),
        (Method::Options, Transport::Udp, 5060)
    );
    assert_eq!(c.accept, [200]);
}
