//! The demo's phone line: the contact centre number as a SIP responder on
//! loopback (OPTIONS 200; INVITE rings, then answers; CANCEL and BYE as a
//! phone would), which goes down now and then so that the SIP probes have
//! something to notice: silent one time, 503 the next.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

use crate::probe::sip::responder::{self, LineBehaviour, LineState};

/// The line is down for `OUTAGE` out of every `CYCLE`, starting
/// `OUTAGE_START` into the cycle (wall clock, so the schedule does not
/// depend on when the demo started).
pub const CYCLE: Duration = Duration::from_secs(240);
pub const OUTAGE: Duration = Duration::from_secs(40);
pub const OUTAGE_START: Duration = Duration::from_secs(100);

/// How long a test call rings before the (simulated) IVR picks up.
pub const RING: Duration = Duration::from_millis(800);

/// The line's state at a Unix time: up, or in an outage that is silent
/// in even cycles and answers 503 in odd ones.
pub fn line_state_at(unix_secs: u64) -> LineState {
    let cycle = CYCLE.as_secs();
    let into = unix_secs % cycle;
    let start = OUTAGE_START.as_secs();
    if into < start || into >= start + OUTAGE.as_secs() {
        return LineState::Up;
    }
    if (unix_secs / cycle).is_multiple_of(2) {
        LineState::Silent
    } else {
        LineState::Unavailable
    }
}

/// Serve the phone line on `socket` (bind it to 127.0.0.1) until
/// `shutdown` completes.
pub async fn serve_phone_line(socket: UdpSocket, shutdown: impl Future<Output = ()>) {
    serve_with_clock(socket, unix_now, shutdown).await;
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn serve_with_clock(
    socket: UdpSocket,
    clock: fn() -> u64,
    shutdown: impl Future<Output = ()>,
) {
    let state: responder::StateFn = Arc::new(move || line_state_at(clock()));
    let behaviour = LineBehaviour {
        answer_after: Some(RING),
    };
    responder::serve_udp(socket, behaviour, state, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_down_for_forty_seconds_every_four_minutes() {
        let down: Vec<u64> = (0..CYCLE.as_secs() * 2)
            .filter(|s| line_state_at(*s) != LineState::Up)
            .collect();
        assert_eq!(down.len() as u64, 2 * OUTAGE.as_secs());
        assert_eq!(line_state_at(99), LineState::Up);
        assert_eq!(line_state_at(100), LineState::Silent);
        assert_eq!(line_state_at(139), LineState::Silent);
        assert_eq!(line_state_at(140), LineState::Up);
        assert_eq!(line_state_at(240 + 100), LineState::Unavailable);
    }

    async fn call(clock: fn() -> u64) -> crate::probe::ProbeOutcome {
        use crate::probe::ProbeContext;
        use crate::probe::Prober;
        use crate::probe::sip::{SipProbe, SipSpec};

        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_clock(socket, clock, async {
            let _ = stopped.await;
        }));
        let spec: SipSpec =
            serde_saphyr::from_str(&format!("uri: sip:14020@{addr}\nmethod: invite\n")).unwrap();
        let line: SipProbe = crate::probe::compile(spec, "demo.yaml").unwrap();
        let o = line
            .probe(&ProbeContext::new(Duration::from_secs(2)))
            .await
            .unwrap();
        let _ = stop.send(());
        server.await.unwrap();
        o
    }

    #[tokio::test]
    async fn the_phone_line_rings_and_answers_a_test_call_while_up() {
        let o = call(|| 0).await;
        assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
        let answer = o
            .phases
            .iter()
            .find(|(p, _)| *p == crate::probe::phase::ANSWER);
        assert!(answer.is_some_and(|(_, t)| *t >= RING), "{:?}", o.phases);
    }

    #[tokio::test]
    async fn the_phone_line_answers_503_in_an_odd_outage() {
        let o = call(|| 240 + 120).await;
        assert_eq!(o.reason(), Some(crate::probe::FailureReason::Status));
        assert_eq!(o.sip_code, Some(503));
    }
}
