//! Client transactions (RFC 3261 17.1) over one connection: UDP
//! retransmissions on timers A and E, responses matched to their request by
//! branch, Call-ID and CSeq, duplicates of a final response re-acknowledged
//! or dropped, and a transcript of what went over the wire.

use std::time::Duration;

use tokio::time::Instant;

use super::message::{self, Message, OutRequest, Response};
use super::transport::{Connection, Incoming};
use crate::probe::FailureReason;
use crate::probe::net::io_reason;

/// RFC 3261 17.1.1.1: round-trip estimate and the retransmission cap.
pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);

/// Longest transcript kept; a flood of stray packets must not grow it.
const MAX_EXCHANGE: usize = 64;

/// A fresh branch parameter with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

pub fn new_token() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

struct ClientTx {
    branch: String,
    method: &'static str,
    cseq: u32,
    bytes: Vec<u8>,
    line: String,
    /// Next retransmission and the interval after it (UDP only).
    timer: Option<(Instant, Duration)>,
    /// Final response seen; later copies are duplicates.
    done: bool,
    /// The ACK to send again when a final INVITE response is repeated.
    ack: Option<Vec<u8>>,
}

/// A response that belongs to one of our transactions.
#[derive(Debug)]
pub struct Matched {
    pub branch: String,
    pub method: &'static str,
    pub response: Response,
}

/// What waiting produced.
#[derive(Debug)]
pub enum Event {
    Response(Matched),
    /// The `until` instant passed.
    Deadline,
    /// The connection failed or the peer sent something unusable; the
    /// probe is over with this reason.
    Failed(FailureReason, String),
}

/// All transactions of one probe over one connection, sharing a Call-ID.
pub struct Client {
    pub conn: Connection,
    pub call_id: String,
    started: Instant,
    txs: Vec<ClientTx>,
    pub exchange: Vec<String>,
}

impl Client {
    pub fn new(conn: Connection, call_id: String, started: Instant) -> Client {
        Client {
            conn,
            call_id,
            started,
            txs: Vec::new(),
            exchange: Vec::new(),
        }
    }

    fn log(&mut self, line: String) {
        if self.exchange.len() < MAX_EXCHANGE {
            let at = self.started.elapsed().as_secs_f64();
            self.exchange.push(format!("+{at:.3}s {line}"));
        } else if self.exchange.len() == MAX_EXCHANGE {
            self.exchange.push("... (transcript truncated)".into());
        }
    }

    /// Start a client transaction: send the request and, over UDP, arm
    /// its retransmission timer.
    pub async fn send(&mut self, req: &OutRequest, branch: &str, cseq: u32) -> Result<(), Event> {
        let bytes = req.to_bytes();
        let line = req.request_line();
        self.log(format!("> {line}"));
        self.conn.send(&bytes).await.map_err(|e| send_failed(&e))?;
        let timer = (!self.conn.transport.reliable()).then(|| (Instant::now() + T1, T1));
        self.txs
            .retain(|t| !(t.branch == branch && t.method == req.method));
        self.txs.push(ClientTx {
            branch: branch.to_string(),
            method: req.method,
            cseq,
            bytes,
            line,
            timer,
            done: false,
            ack: None,
        });
        Ok(())
    }

    /// Send an ACK (never retransmitted on its own, RFC 3261 17.1.1.3)
    /// and remember it for repeated final responses to that INVITE.
    pub async fn ack(&mut self, invite_branch: &str, ack: &OutRequest) -> Result<(), Event> {
        let bytes = ack.to_bytes();
        self.log(format!("> {}", ack.request_line()));
        self.conn.send(&bytes).await.map_err(|e| send_failed(&e))?;
        if let Some(tx) = self
            .txs
            .iter_mut()
            .find(|t| t.branch == invite_branch && t.method == "INVITE")
        {
            tx.ack = Some(bytes);
        }
        Ok(())
    }

    /// Stop retransmitting a transaction whose answer no longer matters.
    pub fn abandon(&mut self, branch: &str, method: &str) {
        if let Some(tx) = self
            .txs
            .iter_mut()
            .find(|t| t.branch == branch && t.method == method)
        {
            tx.timer = None;
            tx.done = true;
        }
    }

    /// Wait for the next response to one of our transactions, doing
    /// retransmissions meanwhile, until `until`.
    pub async fn next(&mut self, until: Instant) -> Event {
        loop {
            let timer = self
                .txs
                .iter()
                .filter_map(|t| t.timer.map(|(at, _)| at))
                .min();
            let wake = timer.map_or(until, |t| t.min(until));
            let incoming = tokio::select! {
                r = self.conn.recv() => Some(r),
                _ = tokio::time::sleep_until(wake) => None,
            };
            match incoming {
                None if Instant::now() >= until => return Event::Deadline,
                None => {
                    if let Err(e) = self.retransmit_due().await {
                        return e;
                    }
                }
                Some(Err(e)) => return recv_failed(&e),
                Some(Ok(Incoming::Malformed { error, bytes })) => {
                    self.log(format!("< (unparseable: {error})"));
                    return Event::Failed(
                        FailureReason::Malformed,
                        format!("{error}; received: {}", message::escape(&bytes, 200)),
                    );
                }
                Some(Ok(Incoming::Message(Message::Request(r)))) => {
                    // The server asking us something (keep-alive OPTIONS,
                    // a BYE for a call we already ended) is not an answer.
                    self.log(format!(
                        "< {} {} SIP/2.0 (request, ignored)",
                        r.method, r.uri
                    ));
                }
                Some(Ok(Incoming::Message(Message::Response(r)))) => {
                    if let Some(event) = self.on_response(r).await {
                        return event;
                    }
                }
            }
        }
    }

    async fn retransmit_due(&mut self) -> Result<(), Event> {
        let now = Instant::now();
        let mut due = Vec::new();
        for tx in &mut self.txs {
            if let Some((at, interval)) = tx.timer
                && at <= now
            {
                // Timer A doubles without bound; timer E stops at T2
                // (RFC 3261 17.1.1.2 and 17.1.2.2).
                let next = if tx.method == "INVITE" {
                    interval * 2
                } else {
                    (interval * 2).min(T2)
                };
                tx.timer = Some((now + interval, next));
                due.push((tx.bytes.clone(), tx.line.clone()));
            }
        }
        for (bytes, line) in due {
            self.log(format!("> {line} (retransmission)"));
            self.conn.send(&bytes).await.map_err(|e| send_failed(&e))?;
        }
        Ok(())
    }

    async fn on_response(&mut self, r: Response) -> Option<Event> {
        let status = format!("SIP/2.0 {} {}", r.code, r.reason);
        let Some(ids) = message::ids(&r.headers) else {
            self.log(format!("< {status} (no Via branch, Call-ID or CSeq)"));
            return Some(Event::Failed(
                FailureReason::Malformed,
                format!("response '{status}' lacks a Via branch, Call-ID or CSeq to match it by"),
            ));
        };
        let found = self.txs.iter().position(|t| {
            t.branch == ids.branch
                && t.method.eq_ignore_ascii_case(ids.method)
                && t.cseq == ids.cseq
                && ids.call_id == self.call_id
        });
        let Some(i) = found else {
            self.log(format!("< {status} (ignored: not for an open request)"));
            return None;
        };
        let tx = &mut self.txs[i];
        if tx.done {
            let resend = if r.code >= 200 { tx.ack.clone() } else { None };
            self.log(format!("< {status} (repeated)"));
            if let Some(ack) = resend {
                self.log("> ACK (again, for the repeated response)".into());
                if let Err(e) = self.conn.send(&ack).await {
                    return Some(send_failed(&e));
                }
            }
            return None;
        }
        if r.code >= 200 {
            tx.done = true;
            tx.timer = None;
        } else if tx.method == "INVITE" {
            tx.timer = None;
        } else if let Some((at, _)) = tx.timer {
            // A provisional answer to a non-INVITE: keep retransmitting,
            // but only every T2 (RFC 3261 17.1.2.2, Proceeding state).
            tx.timer = Some((at.max(Instant::now() + T2), T2));
        }
        let (branch, method) = (tx.branch.clone(), tx.method);
        self.log(format!("< {status}"));
        Some(Event::Response(Matched {
            branch,
            method,
            response: r,
        }))
    }
}

fn send_failed(e: &std::io::Error) -> Event {
    Event::Failed(io_reason(e), format!("sending failed: {e}"))
}

fn recv_failed(e: &std::io::Error) -> Event {
    let reason = io_reason(e);
    let detail = match reason {
        FailureReason::Refused => format!("refused: {e} (nothing listens on the SIP port)"),
        _ => format!("receiving failed: {e}"),
    };
    Event::Failed(reason, detail)
}
