//! The probe's user agent client: the OPTIONS, REGISTER and INVITE
//! conversations, digest challenges answered on the way, and the clean-up
//! that leaves nothing behind at the server (unregister, CANCEL, BYE).

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::digest::{self, Answer, Challenge};
use super::message::{self, OutRequest, Response, SipUri, bracket_host};
use super::transaction::{Client, Event, Matched, T1, new_branch, new_token};
use super::transport;
use super::{Method, SipProbe};
use crate::config::Dur;
use crate::probe::{FailureReason, ProbeContext, ProbeError, ProbeOutcome, phase};

pub(super) async fn run(c: &SipProbe, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    let mut outcome = ProbeOutcome::default();
    let Some(conn) = transport::open(&c.dest, ctx, &mut outcome).await? else {
        return Ok(outcome);
    };
    let call_id = format!("{}{}@continuity", new_token(), new_token());
    let mut ua = Uac {
        c,
        ctx,
        from_tag: new_token(),
        cseq: 0,
        challenge: None,
        nc: 0,
        client: Client::new(conn, call_id, ctx.started),
    };
    match c.method {
        Method::Options => ua.options(&mut outcome).await,
        Method::Register => ua.register(&mut outcome).await,
        Method::Invite => ua.invite(&mut outcome).await,
    }
    outcome.exchange = std::mem::take(&mut ua.client.exchange);
    Ok(outcome)
}

/// How a non-INVITE request ended.
enum Ended {
    Final {
        response: Response,
        /// The request that got this answer carried credentials.
        with_credentials: bool,
    },
    NoFinal {
        provisional: Option<String>,
    },
    Failed(FailureReason, String),
}

/// The challenge being answered and whether it came from a proxy (407).
struct Held {
    challenge: Challenge,
    proxy: bool,
}

struct Uac<'a> {
    c: &'a SipProbe,
    ctx: &'a ProbeContext,
    client: Client,
    from_tag: String,
    cseq: u32,
    challenge: Option<Held>,
    nc: u32,
}

/// RFC 3261 timers B and F.
const TRANSACTION_TIMEOUT: Duration = T1.saturating_mul(64);

/// Time kept back from the timeout to end a call or registration cleanly.
fn cleanup_reserve(timeout: Duration) -> Duration {
    (timeout / 5).min(Duration::from_secs(2))
}

fn status(r: &Response) -> String {
    format!("{} {}", r.code, r.reason)
}

impl Uac<'_> {
    /// When setting up a call or registration must end, so that undoing
    /// it still fits in the timeout.
    fn setup_deadline(&self) -> Instant {
        let deadline = self.ctx.deadline();
        deadline
            .checked_sub(cleanup_reserve(self.ctx.timeout))
            .unwrap_or(deadline)
    }

    fn via(&self, branch: &str) -> String {
        let local = self.client.conn.local;
        format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            self.client.conn.transport.via_token(),
            bracket_host(&local.ip().to_string()),
            local.port()
        )
    }

    fn contact(&self) -> String {
        let local = self.client.conn.local;
        let transport = match self.client.conn.transport {
            transport::Transport::Udp => String::new(),
            t => format!(";transport={}", t.name()),
        };
        format!(
            "<sip:{}@{}:{}{transport}>",
            self.c.contact_user,
            bracket_host(&local.ip().to_string()),
            local.port()
        )
    }

    fn local_party(&self) -> String {
        format!("<{}>;tag={}", self.c.from, self.from_tag)
    }

    /// The headers every request of this probe carries, in RFC 3261 8.1.1 order.
    fn request(
        &self,
        method: &'static str,
        uri: &str,
        branch: &str,
        cseq: u32,
        to: &str,
        extra: Vec<(&'static str, String)>,
    ) -> OutRequest {
        let mut headers = vec![
            ("Via", self.via(branch)),
            ("Max-Forwards", "70".to_string()),
            ("From", self.local_party()),
            ("To", to.to_string()),
            ("Call-ID", self.client.call_id.clone()),
            ("CSeq", format!("{cseq} {method}")),
        ];
        headers.extend(extra);
        headers.push(("User-Agent", self.c.user_agent.clone()));
        OutRequest {
            method,
            uri: uri.to_string(),
            headers,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// An `Authorization` header for the held challenge, if any.
    fn credentials_header(
        &mut self,
        method: &str,
        uri: &str,
        body: &[u8],
    ) -> Option<(&'static str, String)> {
        let creds = self.c.credentials.as_ref()?;
        let held = self.challenge.as_ref()?;
        self.nc += 1;
        let cnonce = new_token();
        let value = digest::authorization(
            &held.challenge,
            &Answer {
                username: &creds.username,
                password: creds.password.expose(),
                method,
                uri,
                body,
                nc: self.nc,
                cnonce: &cnonce,
            },
        );
        let name = if held.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        Some((name, value))
    }

    /// Take the challenge of a 401/407 as the one to answer. The error
    /// says why it cannot be answered.
    fn take_challenge(&mut self, r: &Response) -> Result<(), String> {
        let proxy = r.code == 407;
        let header = if proxy {
            "proxy-authenticate"
        } else {
            "www-authenticate"
        };
        let challenge = digest::best(r.headers.all(header)).map_err(|e| e.to_string())?;
        let fresh_nonce = self
            .challenge
            .as_ref()
            .is_none_or(|h| h.challenge.nonce != challenge.nonce);
        if fresh_nonce {
            self.nc = 0;
        }
        self.challenge = Some(Held { challenge, proxy });
        Ok(())
    }

    fn can_authenticate(&self, code: u16) -> bool {
        matches!(code, 401 | 407) && self.c.credentials.is_some() && !self.c.accept.contains(&code)
    }

    /// Send a non-INVITE request and wait for its final response,
    /// answering a digest challenge once (twice when the first answer is
    /// only stale).
    async fn non_invite(
        &mut self,
        method: &'static str,
        uri: &str,
        to: &str,
        extra: &[(&'static str, String)],
        until: Instant,
    ) -> Ended {
        let mut answered_fresh = false;
        let mut stale_retries = 0;
        loop {
            self.cseq += 1;
            let cseq = self.cseq;
            let branch = new_branch();
            let mut headers = extra.to_vec();
            let auth = self.credentials_header(method, uri, b"");
            let with_credentials = auth.is_some();
            headers.extend(auth);
            let req = self.request(method, uri, &branch, cseq, to, headers);
            if let Err(Event::Failed(r, d)) = self.client.send(&req, &branch, cseq).await {
                return Ended::Failed(r, d);
            }
            let mut provisional = None;
            // Timer F: a non-INVITE transaction gives up after 64*T1.
            let until = until.min(Instant::now() + TRANSACTION_TIMEOUT);
            let response = loop {
                match self.client.next(until).await {
                    Event::Response(Matched {
                        branch: b,
                        response,
                        ..
                    }) if b == branch => {
                        if response.code < 200 {
                            provisional = Some(status(&response));
                            continue;
                        }
                        break response;
                    }
                    Event::Response(_) => continue,
                    Event::Deadline => {
                        self.client.abandon(&branch, method);
                        return Ended::NoFinal { provisional };
                    }
                    Event::Failed(r, d) => return Ended::Failed(r, d),
                }
            };
            if self.can_authenticate(response.code) {
                let stale = self.challenge_is_stale(&response);
                let may = !answered_fresh || (stale && stale_retries < 1);
                if may {
                    if answered_fresh {
                        stale_retries += 1;
                    }
                    if let Err(why) = self.take_challenge(&response) {
                        return Ended::Failed(
                            FailureReason::Auth,
                            format!(
                                "{} to {method}: cannot answer the challenge: {why}",
                                status(&response)
                            ),
                        );
                    }
                    answered_fresh = true;
                    continue;
                }
            }
            return Ended::Final {
                response,
                with_credentials,
            };
        }
    }

    fn challenge_is_stale(&self, r: &Response) -> bool {
        let header = if r.code == 407 {
            "proxy-authenticate"
        } else {
            "www-authenticate"
        };
        digest::best(r.headers.all(header)).is_ok_and(|c| c.stale)
    }

    /// Judge the final response of an OPTIONS or REGISTER.
    fn judge(
        &self,
        method: &str,
        ended: Ended,
        waited: Duration,
        outcome: &mut ProbeOutcome,
    ) -> bool {
        match ended {
            Ended::Final {
                response,
                with_credentials,
            } => {
                outcome.sip_code = Some(response.code);
                outcome.detail("sip_status", status(&response));
                if let Some(server) = response
                    .headers
                    .get("server")
                    .or(response.headers.get("user-agent"))
                {
                    outcome.detail("server", message::escape(server.as_bytes(), 120));
                }
                if self.c.accept.contains(&response.code) {
                    return true;
                }
                let accepted = list(&self.c.accept);
                if with_credentials && matches!(response.code, 401 | 403 | 407) {
                    outcome.fail(
                        FailureReason::Auth,
                        format!(
                            "{method} with credentials got {}: user name or password rejected",
                            status(&response)
                        ),
                    );
                } else if matches!(response.code, 401 | 407) {
                    outcome.fail(
                        FailureReason::Status,
                        format!(
                            "{method} got {}, not one of {accepted}; the server wants credentials (set username and password, or add {} to accept)",
                            status(&response),
                            response.code
                        ),
                    );
                } else {
                    outcome.fail(
                        FailureReason::Status,
                        format!("{method} got {}, not one of {accepted}", status(&response)),
                    );
                }
                false
            }
            Ended::NoFinal { provisional } => {
                let detail = match provisional {
                    Some(p) => format!(
                        "{method}: only {p}, no final response within {}",
                        Dur(waited)
                    ),
                    None => format!("no response to {method} within {}", Dur(waited)),
                };
                outcome.fail(FailureReason::Timeout, detail);
                false
            }
            Ended::Failed(reason, detail) => {
                outcome.fail(reason, detail);
                false
            }
        }
    }

    async fn options(&mut self, outcome: &mut ProbeOutcome) {
        let uri = self.c.request_uri.to_string();
        let to = format!("<{}>", self.c.to);
        let sent = Instant::now();
        let extra = [("Accept", "application/sdp".to_string())];
        let ended = self
            .non_invite("OPTIONS", &uri, &to, &extra, self.ctx.deadline())
            .await;
        let responded = matches!(ended, Ended::Final { .. });
        if responded {
            outcome.phase(phase::RESPONSE, sent.elapsed());
        }
        self.judge("OPTIONS", ended, self.ctx.timeout, outcome);
    }

    async fn register(&mut self, outcome: &mut ProbeOutcome) {
        let uri = self.c.request_uri.to_string();
        let to = format!("<{}>", self.c.to);
        let contact = self.contact();
        let until = self.setup_deadline();
        let sent = Instant::now();
        let extra = [
            ("Contact", contact.clone()),
            ("Expires", self.c.expires.to_string()),
        ];
        let ended = self.non_invite("REGISTER", &uri, &to, &extra, until).await;
        if let Ended::Final { response, .. } = &ended {
            outcome.phase(phase::RESPONSE, sent.elapsed());
            if (200..300).contains(&response.code)
                && let Some(granted) = granted_expires(response, &contact)
            {
                outcome.detail("expires", format!("{granted}s"));
            }
        }
        let registered =
            matches!(&ended, Ended::Final { response, .. } if (200..300).contains(&response.code));
        let waited = until.saturating_duration_since(sent);
        self.judge("REGISTER", ended, waited, outcome);
        if registered {
            let extra = [("Contact", contact), ("Expires", "0".to_string())];
            let ended = self
                .non_invite("REGISTER", &uri, &to, &extra, self.ctx.deadline())
                .await;
            let note = match ended {
                Ended::Final { response, .. } if (200..300).contains(&response.code) => {
                    format!("removed ({})", status(&response))
                }
                Ended::Final { response, .. } => format!("not removed: {}", status(&response)),
                Ended::NoFinal { .. } => "not confirmed before the timeout".to_string(),
                Ended::Failed(_, d) => format!("not removed: {d}"),
            };
            outcome.detail("unregister", note);
        }
    }

    fn sdp(&self, rtp_port: u16) -> Vec<u8> {
        let ip = self.client.conn.local.ip();
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let session = rand::random::<u32>();
        format!(
            "v=0\r\n\
             o=continuity {session} {session} IN {family} {ip}\r\n\
             s=continuity test call\r\n\
             c=IN {family} {ip}\r\n\
             t=0 0\r\n\
             m=audio {rtp_port} RTP/AVP 8 0 101\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        )
        .into_bytes()
    }

    /// A socket for the media the offer announces, so that early media
    /// lands somewhere harmless instead of on another program's port.
    async fn rtp_socket(&self) -> Option<UdpSocket> {
        let ip = self.client.conn.local.ip();
        for _ in 0..8 {
            let s = UdpSocket::bind((ip, 0)).await.ok()?;
            if s.local_addr().ok()?.port().is_multiple_of(2) {
                return Some(s);
            }
        }
        UdpSocket::bind((ip, 0)).await.ok()
    }

    async fn invite(&mut self, outcome: &mut ProbeOutcome) {
        let uri = self.c.request_uri.to_string();
        let to = format!("<{}>", self.c.to);
        let rtp = self.rtp_socket().await;
        let rtp_port = rtp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map_or(4000, |a| a.port());
        let body = self.sdp(rtp_port);
        let setup_until = self.setup_deadline();
        let first_sent = Instant::now();
        let mut answered_fresh = false;
        let mut ringing_recorded = false;
        let mut accepted: Option<String> = None;
        let mut ring_until: Option<Instant> = None;
        let mut provisional: Option<String> = None;

        'attempt: loop {
            self.cseq += 1;
            let cseq = self.cseq;
            let branch = new_branch();
            let mut headers = vec![
                ("Contact", self.contact()),
                ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS".to_string()),
            ];
            let auth = self.credentials_header("INVITE", &uri, &body);
            let with_credentials = auth.is_some();
            headers.extend(auth);
            let mut req = self.request("INVITE", &uri, &branch, cseq, &to, headers);
            req.content_type = Some("application/sdp");
            req.body = body.clone();
            if let Err(Event::Failed(r, d)) = self.client.send(&req, &branch, cseq).await {
                outcome.fail(r, d);
                return;
            }
            let invite = Sent {
                req,
                branch,
                cseq,
                dialled: first_sent,
            };
            // Timer B: without any answer an INVITE gives up after 64*T1.
            let give_up = Instant::now() + TRANSACTION_TIMEOUT;
            loop {
                let mut until = ring_until.map_or(setup_until, |r| r.min(setup_until));
                if provisional.is_none() {
                    until = until.min(give_up);
                }
                let matched = match self.client.next(until).await {
                    Event::Response(m) if m.branch == invite.branch && m.method == "INVITE" => m,
                    Event::Response(_) => continue,
                    Event::Failed(r, d) => {
                        outcome.fail(r, d);
                        return;
                    }
                    Event::Deadline => {
                        let waited = Dur(until.saturating_duration_since(first_sent));
                        match (&accepted, &provisional) {
                            (Some(code), _) => {
                                outcome.detail(
                                    "call",
                                    format!("{code}, not answered within the ring time; hung up"),
                                );
                            }
                            (None, Some(p)) => outcome.fail(
                                FailureReason::Timeout,
                                format!(
                                    "INVITE: only {p}, no accepted answer ({}) within {waited}",
                                    list(&self.c.accept)
                                ),
                            ),
                            (None, None) => {
                                outcome.fail(
                                    FailureReason::Timeout,
                                    format!("no response to INVITE within {waited}"),
                                );
                                // Nothing to CANCEL before a provisional
                                // response (RFC 3261 9.1).
                                self.client.abandon(&invite.branch, "INVITE");
                                return;
                            }
                        }
                        self.cancel(&invite, outcome).await;
                        return;
                    }
                };
                let r = matched.response;
                let code = r.code;
                if code < 200 {
                    provisional = Some(status(&r));
                    if (180..200).contains(&code) && !ringing_recorded {
                        ringing_recorded = true;
                        outcome.phase(phase::RINGING, first_sent.elapsed());
                    }
                    if code != 100 && accepted.is_none() && self.c.accept.contains(&code) {
                        accepted = Some(status(&r));
                        outcome.sip_code = Some(code);
                        ring_until = Instant::now().checked_add(self.c.ring_time);
                    }
                    continue;
                }
                if code < 300 {
                    outcome.phase(phase::ANSWER, first_sent.elapsed());
                    outcome.sip_code = Some(code);
                    outcome.detail("sip_status", status(&r));
                    if accepted.is_none() && !self.c.accept.contains(&code) {
                        outcome.fail(
                            FailureReason::Status,
                            format!(
                                "INVITE answered with {}, not one of {}",
                                status(&r),
                                list(&self.c.accept)
                            ),
                        );
                    }
                    self.answered(&invite, &r, outcome).await;
                    return;
                }
                // A final non-2xx answer is acknowledged within the INVITE
                // transaction itself (RFC 3261 17.1.1.3), before anything else.
                self.ack_failure(&invite, &r).await;
                if self.can_authenticate(code) && !answered_fresh {
                    if let Err(why) = self.take_challenge(&r) {
                        outcome.sip_code = Some(code);
                        outcome.fail(
                            FailureReason::Auth,
                            format!(
                                "{} to INVITE: cannot answer the challenge: {why}",
                                status(&r)
                            ),
                        );
                        return;
                    }
                    answered_fresh = true;
                    continue 'attempt;
                }
                outcome.sip_code = Some(code);
                outcome.detail("sip_status", status(&r));
                if self.c.accept.contains(&code) {
                    return;
                }
                let after = match &accepted {
                    Some(a) => format!(" after {a}"),
                    None => String::new(),
                };
                if with_credentials && matches!(code, 401 | 403 | 407) {
                    outcome.fail(
                        FailureReason::Auth,
                        format!(
                            "INVITE with credentials got {}: user name or password rejected",
                            status(&r)
                        ),
                    );
                } else {
                    outcome.fail(
                        FailureReason::Status,
                        format!(
                            "call rejected{after}: {}, not one of {}",
                            status(&r),
                            list(&self.c.accept)
                        ),
                    );
                }
                return;
            }
        }
    }

    /// ACK a non-2xx final response: same branch and Request-URI as the
    /// INVITE, To with the response's tag.
    async fn ack_failure(&mut self, invite: &Sent, r: &Response) {
        let to = r.headers.get("to").unwrap_or_default().to_string();
        let mut ack = self.request(
            "ACK",
            &invite.req.uri,
            &invite.branch,
            invite.cseq,
            &to,
            Vec::new(),
        );
        ack.headers.retain(|(n, _)| *n != "User-Agent");
        let _ = self.client.ack(&invite.branch, &ack).await;
    }

    /// After a 2xx: ACK it (a new transaction to the remote target along
    /// the route set), then hang up with BYE.
    async fn answered(&mut self, invite: &Sent, r: &Response, outcome: &mut ProbeOutcome) {
        let to = r.headers.get("to").unwrap_or_default().to_string();
        let target = r
            .headers
            .values("contact")
            .first()
            .map(|c| message::addr_uri(c).to_string())
            .filter(|t| SipUri::parse(t).is_ok())
            .unwrap_or_else(|| invite.req.uri.clone());
        let routes: Vec<(&'static str, String)> = r
            .headers
            .values("record-route")
            .into_iter()
            .rev()
            .map(|rr| ("Route", rr.to_string()))
            .collect();
        let branch = new_branch();
        let ack = self.request("ACK", &target, &branch, invite.cseq, &to, routes.clone());
        let _ = self.client.ack(&invite.branch, &ack).await;

        self.cseq += 1;
        let cseq = self.cseq;
        let branch = new_branch();
        let bye = self.request("BYE", &target, &branch, cseq, &to, routes);
        if let Err(Event::Failed(_, d)) = self.client.send(&bye, &branch, cseq).await {
            outcome.detail("hangup", format!("BYE not sent: {d}"));
            return;
        }
        let note = loop {
            match self.client.next(self.ctx.deadline()).await {
                Event::Response(m) if m.branch == branch && m.response.code >= 200 => {
                    break format!("BYE answered {}", status(&m.response));
                }
                Event::Response(_) => continue,
                Event::Deadline => {
                    self.client.abandon(&branch, "BYE");
                    break "BYE not answered before the timeout".to_string();
                }
                Event::Failed(_, d) => break format!("BYE failed: {d}"),
            }
        };
        outcome.detail("hangup", note);
    }

    /// Hang up before an answer: CANCEL, then ACK the INVITE's final
    /// response (487, or a 2xx that crossed the CANCEL, which gets a BYE).
    async fn cancel(&mut self, invite: &Sent, outcome: &mut ProbeOutcome) {
        let mut cancel = OutRequest {
            method: "CANCEL",
            uri: invite.req.uri.clone(),
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
        };
        for (name, value) in &invite.req.headers {
            match *name {
                "Via" | "Max-Forwards" | "From" | "To" | "Call-ID" | "Route" | "User-Agent" => {
                    cancel.headers.push((name, value.clone()));
                }
                "CSeq" => cancel
                    .headers
                    .push(("CSeq", format!("{} CANCEL", invite.cseq))),
                _ => {}
            }
        }
        if let Err(Event::Failed(_, d)) =
            self.client.send(&cancel, &invite.branch, invite.cseq).await
        {
            outcome.detail("hangup", format!("CANCEL not sent: {d}"));
            return;
        }
        let note = loop {
            match self.client.next(self.ctx.deadline()).await {
                Event::Response(m) if m.branch == invite.branch && m.method == "INVITE" => {
                    let r = m.response;
                    if r.code < 200 {
                        continue;
                    }
                    if r.code < 300 {
                        outcome.phase(phase::ANSWER, invite.dialled.elapsed());
                        self.answered(invite, &r, outcome).await;
                        return;
                    }
                    self.ack_failure(invite, &r).await;
                    break format!("cancelled ({})", status(&r));
                }
                Event::Response(_) => continue,
                Event::Deadline => {
                    self.client.abandon(&invite.branch, "CANCEL");
                    break "CANCEL not confirmed before the timeout".to_string();
                }
                Event::Failed(_, d) => break format!("CANCEL failed: {d}"),
            }
        };
        outcome.detail("hangup", note);
    }
}

/// An INVITE as sent, for the requests that refer to it.
struct Sent {
    req: OutRequest,
    branch: String,
    cseq: u32,
    /// When the first INVITE of the call went out.
    dialled: Instant,
}

fn list(codes: &[u16]) -> String {
    let items: Vec<String> = codes.iter().map(u16::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The lifetime the registrar granted our contact (RFC 3261 10.3 step 8).
fn granted_expires(r: &Response, contact: &str) -> Option<u32> {
    let ours = message::addr_uri(contact);
    let from_contact = r
        .headers
        .values("contact")
        .into_iter()
        .find(|c| message::addr_uri(c) == ours)
        .and_then(|c| message::param(c, "expires"))
        .and_then(|e| e.parse().ok());
    from_contact.or_else(|| r.headers.get("expires").and_then(|e| e.trim().parse().ok()))
}
