//! A small SIP phone line (user agent server) for the demo and for tests:
//! OPTIONS gets 200, an INVITE rings (100, 180) and is answered with 200
//! and an SDP answer, CANCEL gets 200 and the INVITE 487, BYE gets 200.
//! What it does at a given moment ([`LineState`]) is decided by the caller,
//! so a simulation can take the line down and bring it back.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::message::{self, Frame, MAX_MESSAGE, Message, Request};
use super::transaction::new_token;

/// How the line behaves right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    Up,
    /// Nothing comes back, as when the trunk or its SBC is gone.
    Silent,
    /// Every request gets 503 Service Unavailable, as from an SBC whose
    /// upstream is down.
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct LineBehaviour {
    /// How long an INVITE rings before it is answered; `None` rings until
    /// the caller gives up (CANCEL).
    pub answer_after: Option<Duration>,
}

impl Default for LineBehaviour {
    fn default() -> Self {
        LineBehaviour {
            answer_after: Some(Duration::from_millis(300)),
        }
    }
}

/// Decides the line's state for each request.
pub type StateFn = Arc<dyn Fn() -> LineState + Send + Sync>;

/// Where a response goes: back over the UDP socket to the sender, or into
/// the writer of a stream connection.
#[derive(Clone)]
enum Replier {
    Udp(Arc<UdpSocket>, SocketAddr),
    Stream(mpsc::UnboundedSender<Vec<u8>>),
}

impl Replier {
    fn send(&self, bytes: Vec<u8>) {
        match self {
            // A full socket buffer drops the reply, as UDP would anyway.
            Replier::Udp(s, to) => {
                let _ = s.try_send_to(&bytes, *to);
            }
            Replier::Stream(tx) => {
                let _ = tx.send(bytes);
            }
        }
    }
}

/// A call that is ringing, keyed by Call-ID.
struct Ringing {
    invite: Request,
    to_tag: String,
    answer: Option<AbortHandle>,
}

/// Forgotten calls (callers that vanished) must not pile up forever.
const MAX_CALLS: usize = 1024;

struct Line {
    behaviour: LineBehaviour,
    state: StateFn,
    local: SocketAddr,
    ringing: Mutex<HashMap<String, Ringing>>,
    /// Final responses to INVITEs not yet acknowledged, to repeat when
    /// the INVITE is retransmitted.
    answered: Mutex<HashMap<String, Vec<u8>>>,
}

impl Line {
    fn handle(self: &Arc<Self>, req: Request, reply: &Replier) {
        let state = (self.state)();
        if state == LineState::Silent || (req.method == "ACK" && state != LineState::Up) {
            return;
        }
        if state == LineState::Unavailable {
            reply.send(message::response_to(
                &req,
                503,
                "Service Unavailable",
                Some(&new_token()),
            ));
            return;
        }
        let call_id = req.headers.get("call-id").unwrap_or_default().to_string();
        match req.method.as_str() {
            "OPTIONS" => {
                let allow = [("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS".to_string())];
                reply.send(message::response_with(
                    &req,
                    200,
                    "OK",
                    Some(&new_token()),
                    &allow,
                    None,
                ));
            }
            "INVITE" => self.invite(req, call_id, reply),
            "CANCEL" => {
                let pending = lock(&self.ringing).remove(&call_id);
                match pending {
                    Some(call) => {
                        if let Some(a) = &call.answer {
                            a.abort();
                        }
                        reply.send(message::response_to(&req, 200, "OK", None));
                        let terminated = message::response_to(
                            &call.invite,
                            487,
                            "Request Terminated",
                            Some(&call.to_tag),
                        );
                        remember(&self.answered, call_id, terminated.clone());
                        reply.send(terminated);
                    }
                    None => reply.send(message::response_to(
                        &req,
                        481,
                        "Call/Transaction Does Not Exist",
                        None,
                    )),
                }
            }
            "ACK" => {
                lock(&self.answered).remove(&call_id);
            }
            "BYE" => {
                lock(&self.answered).remove(&call_id);
                reply.send(message::response_to(&req, 200, "OK", None));
            }
            _ => {
                let allow = [("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS".to_string())];
                reply.send(message::response_with(
                    &req,
                    405,
                    "Method Not Allowed",
                    Some(&new_token()),
                    &allow,
                    None,
                ));
            }
        }
    }

    fn invite(self: &Arc<Self>, req: Request, call_id: String, reply: &Replier) {
        if let Some(call) = lock(&self.ringing).get(&call_id) {
            // A retransmission: still ringing.
            reply.send(message::response_to(
                &call.invite,
                180,
                "Ringing",
                Some(&call.to_tag),
            ));
            return;
        }
        if let Some(final_response) = lock(&self.answered).get(&call_id) {
            reply.send(final_response.clone());
            return;
        }
        let to_tag = new_token();
        reply.send(message::response_to(&req, 100, "Trying", None));
        reply.send(message::response_to(&req, 180, "Ringing", Some(&to_tag)));
        let answer = self.behaviour.answer_after.map(|after| {
            let line = self.clone();
            let reply = reply.clone();
            let call_id = call_id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                line.answer(&call_id, &reply);
            })
            .abort_handle()
        });
        let mut ringing = lock(&self.ringing);
        if ringing.len() >= MAX_CALLS {
            ringing.clear();
        }
        ringing.insert(
            call_id,
            Ringing {
                invite: req,
                to_tag,
                answer,
            },
        );
    }

    fn answer(&self, call_id: &str, reply: &Replier) {
        let Some(call) = lock(&self.ringing).remove(call_id) else {
            return;
        };
        let ip = self.local.ip();
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let sdp = format!(
            "v=0\r\no=line 1 1 IN {family} {ip}\r\ns=phone line\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        );
        let contact = [(
            "Contact",
            format!(
                "<sip:line@{}:{}>",
                message::bracket_host(&ip.to_string()),
                self.local.port()
            ),
        )];
        let ok = message::response_with(
            &call.invite,
            200,
            "OK",
            Some(&call.to_tag),
            &contact,
            Some(("application/sdp", sdp.as_bytes())),
        );
        remember(&self.answered, call_id.to_string(), ok.clone());
        reply.send(ok);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remember(map: &Mutex<HashMap<String, Vec<u8>>>, key: String, bytes: Vec<u8>) {
    let mut map = lock(map);
    if map.len() >= MAX_CALLS {
        map.clear();
    }
    map.insert(key, bytes);
}

/// Serve the line on a UDP socket until `shutdown` completes.
pub async fn serve_udp(
    socket: UdpSocket,
    behaviour: LineBehaviour,
    state: StateFn,
    shutdown: impl Future<Output = ()>,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let socket = Arc::new(socket);
    let line = Arc::new(Line {
        behaviour,
        state,
        local,
        ringing: Mutex::new(HashMap::new()),
        answered: Mutex::new(HashMap::new()),
    });
    let serve = async {
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                // ICMP errors from vanished callers surface here; they
                // say nothing about the next datagram.
                continue;
            };
            if let Ok(Message::Request(req)) = message::parse(&buf[..n]) {
                line.handle(req, &Replier::Udp(socket.clone(), from));
            }
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = shutdown => {}
    }
    for call in lock(&line.ringing).drain() {
        if let Some(a) = call.1.answer {
            a.abort();
        }
    }
}

/// Serve the line on one stream connection (TCP, or TLS already
/// accepted) until the peer closes it or sends something that is not SIP.
pub async fn serve_stream<S>(stream: S, local: SocketAddr, behaviour: LineBehaviour, state: StateFn)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let line = Arc::new(Line {
        behaviour,
        state,
        local,
        ringing: Mutex::new(HashMap::new()),
        answered: Mutex::new(HashMap::new()),
    });
    let reply = Replier::Stream(tx);
    let mut buf = Vec::new();
    'conn: loop {
        loop {
            match message::frame(&buf) {
                Ok(Frame::Complete(n)) => {
                    if let Ok(Message::Request(req)) = message::parse(&buf[..n]) {
                        line.handle(req, &reply);
                    }
                    buf.drain(..n);
                }
                Ok(Frame::Incomplete) => break,
                Err(_) => break 'conn,
            }
        }
        let mut chunk = [0u8; 4096];
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    for call in lock(&line.ringing).drain() {
        if let Some(a) = call.1.answer {
            a.abort();
        }
    }
    drop(reply);
    let _ = writer_task.await;
}
