//! A tiny authoritative DNS responder for the demo: answers A queries for
//! `gemeente.demo.` with 127.0.0.1 and NXDOMAIN for everything else.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
use tokio::net::UdpSocket;
use tokio::sync::watch;

pub const DEMO_NAME: &str = "gemeente.demo.";

pub async fn serve(socket: UdpSocket, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((n, peer)) = received else { continue };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Some(bytes) = answer(&query).and_then(|m| m.to_vec().ok()) {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

fn answer(query: &Message) -> Option<Message> {
    let q = query.queries.first()?.clone();
    let mut resp = Message::response(query.metadata.id, query.metadata.op_code);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.metadata.authoritative = true;
    resp.metadata.message_type = MessageType::Response;
    let name = q.name().clone();
    let ours = Name::from_ascii(DEMO_NAME).ok()?;
    resp.add_query(q.clone());
    if name.eq_ignore_root_case(&ours) {
        if q.query_type() == RecordType::A {
            resp.add_answer(Record::from_rdata(name, 60, RData::A(A::new(127, 0, 0, 1))));
        }
    } else {
        resp.metadata.response_code = ResponseCode::NXDomain;
    }
    Some(resp)
}
