//! SIP transports (RFC 3261 18): a connected UDP socket, so that ICMP port
//! unreachable surfaces as "refused", or a TCP/TLS stream framed by
//! `Content-Length`. Either way the probe sends bytes and receives whole
//! messages.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::message::{self, Frame, MAX_MESSAGE, Message, ParseError};
use crate::probe::net;
use crate::probe::tls_util::{self, TlsClient};
use crate::probe::{FailureReason, ProbeContext, ProbeError, ProbeOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The token in a Via header.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }

    /// Reliable transports carry no retransmissions (RFC 3261 17.1.1.2).
    pub fn reliable(self) -> bool {
        self != Transport::Udp
    }
}

/// Where and how to reach the SIP server.
#[derive(Debug, Clone)]
pub struct Destination {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
    /// TLS only (both `Some` exactly for transport tls): the shared client
    /// that knows whom to trust, and the name to check (and send as SNI).
    pub tls: Option<Arc<TlsClient>>,
    pub server_name: Option<ServerName<'static>>,
}

trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> ByteStream for T {}

enum Io {
    Udp {
        socket: UdpSocket,
        buf: Vec<u8>,
    },
    Stream {
        stream: Box<dyn ByteStream>,
        buf: Vec<u8>,
    },
}

/// One open transport to the server, for the life of one probe.
pub struct Connection {
    io: Io,
    pub transport: Transport,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// What arrived: a message, or bytes that are not one.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    Malformed { error: ParseError, bytes: Vec<u8> },
}

/// Open the transport, recording the resolve/connect/tls phases. `None`
/// means the outcome already says why it failed.
pub async fn open(
    dest: &Destination,
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Result<Option<Connection>, ProbeError> {
    match dest.transport {
        Transport::Udp => Ok(open_udp(dest, ctx, outcome).await),
        Transport::Tcp | Transport::Tls => {
            let Some(tcp) = net::connect(&dest.host, dest.port, ctx, outcome).await else {
                return Ok(None);
            };
            let (local, peer) = match (tcp.local_addr(), tcp.peer_addr()) {
                (Ok(l), Ok(p)) => (l, p),
                (Err(e), _) | (_, Err(e)) => {
                    outcome.fail(
                        FailureReason::Network,
                        format!("connection lost at once: {e}"),
                    );
                    return Ok(None);
                }
            };
            let stream: Box<dyn ByteStream> = match (&dest.tls, &dest.server_name) {
                (Some(client), Some(name)) => {
                    let hs = tls_util::handshake(tcp, client, name.clone(), ctx, outcome).await;
                    match hs.stream {
                        Some(s) => Box::new(s),
                        None => return Ok(None),
                    }
                }
                _ => Box::new(tcp),
            };
            Ok(Some(Connection {
                io: Io::Stream {
                    stream,
                    buf: Vec::new(),
                },
                transport: dest.transport,
                local,
                peer,
            }))
        }
    }
}

async fn open_udp(
    dest: &Destination,
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Option<Connection> {
    let addrs = net::resolve(&dest.host, dest.port, ctx, outcome).await?;
    // Prefer IPv4: a probe host without IPv6 routing would otherwise
    // report "network" for a healthy trunk.
    let peer = *addrs.iter().find(|a| a.is_ipv4()).unwrap_or(&addrs[0]);
    outcome.detail("address", peer.to_string());
    let any: IpAddr = if peer.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = match UdpSocket::bind(SocketAddr::new(any, 0)).await {
        Ok(s) => s,
        Err(e) => {
            outcome.fail_io(&e, format!("cannot open a UDP socket: {e}"));
            return None;
        }
    };
    // Connected, so the kernel reports ICMP port unreachable as
    // ECONNREFUSED and drops datagrams from anyone but the peer.
    if let Err(e) = socket.connect(peer).await {
        outcome.fail_io(&e, format!("cannot send to {peer}: {e}"));
        return None;
    }
    let local = match socket.local_addr() {
        Ok(l) => l,
        Err(e) => {
            outcome.fail(
                FailureReason::Network,
                format!("UDP socket has no address: {e}"),
            );
            return None;
        }
    };
    Some(Connection {
        // One byte more than the limit tells "too large" apart from
        // "exactly at the limit".
        io: Io::Udp {
            socket,
            buf: vec![0u8; MAX_MESSAGE + 1],
        },
        transport: Transport::Udp,
        local,
        peer,
    })
}

impl Connection {
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.io {
            Io::Udp { socket, .. } => socket.send(bytes).await.map(|_| ()),
            Io::Stream { stream, .. } => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }

    /// The next message or malformed input. Cancel-safe: dropping the
    /// future loses no bytes, so it can race a retransmission timer.
    pub async fn recv(&mut self) -> io::Result<Incoming> {
        match &mut self.io {
            Io::Udp { socket, buf } => loop {
                let n = socket.recv(buf).await?;
                let datagram = &buf[..n];
                // Keep-alives (RFC 5626 4.4.1) are not replies.
                if datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    continue;
                }
                return Ok(match message::parse(datagram) {
                    Ok(m) => Incoming::Message(m),
                    Err(error) => Incoming::Malformed {
                        error,
                        bytes: datagram[..n.min(1024)].to_vec(),
                    },
                });
            },
            Io::Stream { stream, buf } => loop {
                match message::frame(buf) {
                    Ok(Frame::Complete(n)) => {
                        let result = message::parse(&buf[..n]);
                        let bytes: Vec<u8> = buf.drain(..n).collect();
                        return Ok(match result {
                            Ok(m) => Incoming::Message(m),
                            Err(error) => Incoming::Malformed { error, bytes },
                        });
                    }
                    Ok(Frame::Incomplete) => {}
                    Err(error) => {
                        let bytes = buf[..buf.len().min(1024)].to_vec();
                        buf.clear();
                        return Ok(Incoming::Malformed { error, bytes });
                    }
                }
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
            },
        }
    }
}
