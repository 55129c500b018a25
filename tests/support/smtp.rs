//! A local SMTP server for alerting tests, speaking just enough ESMTP for
//! lettre, and the decoders (base64, quoted-printable, MIME parts) that
//! turn what it received back into headers and text.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One mail as the SMTP sink received it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    pub encrypted: bool,
}

pub type Mails = Arc<Mutex<Vec<Mail>>>;

/// A local SMTP server speaking just enough ESMTP for lettre: EHLO,
/// STARTTLS (when given a certificate), AUTH PLAIN, MAIL, RCPT, DATA, QUIT.
pub async fn smtp_sink(tls: Option<tokio_rustls::TlsAcceptor>) -> (SocketAddr, Mails) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mails: Mails = Arc::default();
    let store = mails.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tls = tls.clone();
            let store = store.clone();
            tokio::spawn(async move {
                if stream.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
                    return;
                }
                let starttls = tls.is_some();
                if let Some(plain) = smtp_session(stream, starttls, false, &store).await
                    && let Some(acceptor) = tls
                    && let Ok(secure) = acceptor.accept(plain).await
                {
                    smtp_session(secure, false, true, &store).await;
                }
            });
        }
    });
    (addr, mails)
}

/// Serve commands until QUIT; returns the stream when the client asked
/// for STARTTLS (after the 220 answer).
async fn smtp_session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    offer_starttls: bool,
    encrypted: bool,
    mails: &Mails,
) -> Option<S> {
    let mut io = BufReader::new(stream);
    let mut mail = Mail {
        encrypted,
        ..Mail::default()
    };
    let mut auth = None;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut r = "250-sink\r\n250-AUTH PLAIN\r\n".to_string();
            if offer_starttls {
                r.push_str("250-STARTTLS\r\n");
            }
            r.push_str("250 8BITMIME\r\n");
            r
        } else if upper == "STARTTLS" {
            io.get_mut()
                .write_all(b"220 2.0.0 go ahead\r\n")
                .await
                .ok()?;
            return Some(io.into_inner());
        } else if upper.starts_with("AUTH PLAIN ") {
            auth = Some(String::from_utf8_lossy(&base64_decode(&cmd[11..])).to_string());
            "235 2.7.0 authenticated\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = address(&cmd[10..]);
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(address(&cmd[8..]));
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            io.get_mut().write_all(b"354 go on\r\n").await.ok()?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if io.read_line(&mut l).await.ok()? == 0 {
                    return None;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(
                    l.strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l),
                );
            }
            mail.data = data;
            mail.auth = auth.clone();
            mails.lock().unwrap().push(mail.clone());
            "250 2.0.0 queued\r\n".into()
        } else if upper == "QUIT" {
            io.get_mut().write_all(b"221 bye\r\n").await.ok()?;
            return None;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 ok\r\n".into()
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        io.get_mut().write_all(reply.as_bytes()).await.ok()?;
    }
}

fn address(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .to_string()
}

fn base64_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn quoted_printable_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if b[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A received mail, split into unfolded headers and decoded MIME parts.
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub parts: BTreeMap<String, String>,
}

impl Parsed {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

fn split_headers(text: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and body");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            headers
                .last_mut()
                .unwrap()
                .1
                .push_str(line.trim_start_matches(['\t']));
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_string(), v.trim_start().to_string()));
        }
    }
    (headers, body.to_string())
}

pub fn parse_mail(data: &str) -> Parsed {
    let (headers, body) = split_headers(data);
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    let mut parts = BTreeMap::new();
    for part in body.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (h, b) = split_headers(part.trim_start_matches("\r\n"));
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default()
        };
        let b = b.trim_end_matches("\r\n");
        let decoded = match get("content-transfer-encoding").as_str() {
            "quoted-printable" => quoted_printable_decode(b),
            "base64" => String::from_utf8(base64_decode(b)).unwrap(),
            _ => b.to_string(),
        };
        let kind = get("content-type");
        parts.insert(
            kind.split(';').next().unwrap().to_string(),
            decoded.replace("\r\n", "\n"),
        );
    }
    Parsed { headers, parts }
}
