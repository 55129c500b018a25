//! SIP probe: checks a phone line the way a caller or a trunk meets it,
//! with an OPTIONS ping, a REGISTER with digest authentication (undone
//! afterwards), or a test call (INVITE, then CANCEL or ACK and BYE).
//!
//! The spec is compiled once at load time into a [`SipProbe`]; the
//! conversation itself lives in `uac`, the wire format in `message`.

use std::path::Path;
use std::time::Duration;

use crate::config::{Location, Spanned};
use serde::{Deserialize, Deserializer};

use super::{ProbeContext, ProbeError, ProbeOutcome, Prober, SpecDigest};
use crate::config::{Dur, Secret, Validator, expand};

pub mod digest;
pub mod message;
pub mod responder;
pub mod transaction;
pub mod transport;
mod uac;

use message::SipUri;
use transport::Destination;
pub use transport::Transport;

/// What the probe does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Ask the server "are you there?" (RFC 3261 11).
    #[default]
    Options,
    /// Register an account, then remove the registration again.
    Register,
    /// Make a test call to the number in `uri`, then hang up.
    Invite,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Options => "options",
            Method::Register => "register",
            Method::Invite => "invite",
        }
    }

    fn default_accept(self) -> Vec<u16> {
        match self {
            Method::Options | Method::Register => vec![200],
            Method::Invite => vec![180, 183, 200],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSpec {
    /// Request-URI: `sip:ping@sbc.example.org:5060`; for `invite` the
    /// number to call (`sip:1400@pbx.example.org`); for `register` the
    /// registrar (`sip:pbx.example.org`).
    pub uri: Spanned<String>,
    /// `udp` (default), `tcp` or `tls` (default for `sips:` URIs).
    #[serde(default)]
    pub transport: Option<Spanned<Transport>>,
    #[serde(default)]
    pub method: Method,
    /// Response codes that count as up. Defaults: `[200]`, and
    /// `[180, 183, 200]` for `invite`.
    #[serde(default)]
    pub accept: Option<Spanned<Vec<u16>>>,
    /// Send to this `host[:port]` instead of the URI's host (an SBC or
    /// outbound proxy in front of the domain).
    #[serde(default)]
    pub proxy: Option<Spanned<String>>,
    /// Account name, used in From/To and for digest authentication.
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    /// Digest user name, when it differs from `username`.
    #[serde(default)]
    pub auth_username: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    pub password: Option<Secret>,
    /// File holding the password, relative to the configuration file.
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    /// From URI (and the address-of-record for `register`).
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// `register`: the registration lifetime asked for (default 60s).
    #[serde(default)]
    pub expires: Option<Spanned<Dur>>,
    /// `invite`: how long to let the line ring, waiting for an answer,
    /// after the first accepted 18x before hanging up (default 3s).
    #[serde(default)]
    pub ring_time: Option<Spanned<Dur>>,
    #[serde(default)]
    pub user_agent: Option<Spanned<String>>,
    /// TLS only: `false` accepts any certificate (expiry still recorded).
    #[serde(default)]
    pub tls_verify: Option<Spanned<bool>>,
    /// TLS only: PEM CA file to trust instead of the public roots.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// TLS only: name to verify and send as SNI (default: the host).
    #[serde(default)]
    pub server_name: Option<Spanned<String>>,
    /// The old endpoint's Request-URI, probed side by side with `uri`
    /// while old and new run in parallel.
    #[serde(default)]
    pub compare_with: Option<Spanned<String>>,
    /// What parity compares; the final response code when absent.
    #[serde(default)]
    pub compare: Option<Spanned<crate::probe::parity::CompareSpec>>,
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

/// Default registration lifetime: short, so that a registration left
/// behind by an interrupted probe disappears soon.
const DEFAULT_EXPIRES: u32 = 60;
const DEFAULT_RING_TIME: Duration = Duration::from_secs(3);

/// A compiled sip check, ready to probe with.
#[derive(Debug)]
pub struct SipProbe {
    digest: SpecDigest,
    pub(crate) method: Method,
    pub(crate) request_uri: SipUri,
    pub(crate) dest: Destination,
    pub(crate) accept: Vec<u16>,
    pub(crate) credentials: Option<Credentials>,
    /// From (and for REGISTER also To) address.
    pub(crate) from: SipUri,
    pub(crate) to: SipUri,
    pub(crate) contact_user: String,
    pub(crate) expires: u32,
    pub(crate) ring_time: Duration,
    pub(crate) user_agent: String,
    /// The old endpoint and what to compare with it (`compare_with`).
    parity: Option<Box<crate::probe::parity::OldSide<SipProbe>>>,
}

impl SipProbe {
    /// The old side, for a `compare_with` check.
    pub fn parity(&self) -> Option<&crate::probe::parity::OldSide<SipProbe>> {
        self.parity.as_deref()
    }
}

#[derive(Debug)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Prober for SipProbe {
    type Spec = SipSpec;

    fn compile(spec: SipSpec, at: Location, v: &mut Validator) -> Option<SipProbe> {
        use crate::probe::parity;
        let parity = parity::compile_old_side(
            parity::SIP,
            spec.compare_with.as_ref(),
            spec.compare.as_ref(),
            &spec.uri.value,
            |with| SipSpec {
                uri: with,
                compare_with: None,
                compare: None,
                ..spec.clone()
            },
            at,
            v,
        );
        // A password_file is read here, once; the secret then lives in
        // the compiled probe only.
        let mut probe = spec.into_probe(v, at)?;
        probe.parity = parity?;
        Some(probe)
    }

    fn digest(&self) -> SpecDigest {
        self.digest
    }

    async fn probe(&self, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
        uac::run(self, ctx).await
    }
}

impl SipSpec {
    fn into_probe(self, v: &mut Validator, at: Location) -> Option<SipProbe> {
        let errors_before = v.issues.len();
        let method = self.method;
        let uri = match SipUri::parse(&self.uri.value) {
            Ok(u) => Some(u),
            Err(msg) => {
                v.error(
                    self.uri.referenced,
                    msg,
                    Some("write it like sip:ping@sbc.example.org:5060".into()),
                );
                None
            }
        };
        let transport = uri
            .as_ref()
            .and_then(|u| self.transport(u, v))
            .unwrap_or(Transport::Udp);

        if let Some(u) = &uri {
            match method {
                Method::Register if u.user.is_some() => v.error(
                    self.uri.referenced,
                    format!(
                        "a REGISTER goes to the registrar, whose URI has no user part (got '{}')",
                        self.uri.value
                    ),
                    Some("write uri: sip:HOST and put the account in username (or from)".into()),
                ),
                Method::Invite if u.user.is_none() => v.error(
                    self.uri.referenced,
                    format!(
                        "a test call needs a number to call, '{}' has none",
                        self.uri.value
                    ),
                    Some(
                        "write the number as the user part, e.g. uri: sip:1400@pbx.example.org"
                            .into(),
                    ),
                ),
                _ => {}
            }
        }

        let accept = self.accept(v);
        let credentials = self.credentials(v, at);
        if method == Method::Register && credentials.is_none() && !self.has_password() {
            v.error(
                at,
                "method register needs credentials",
                Some("add username and password (or password_file)".into()),
            );
        }

        let only = |v: &mut Validator, field: &str, place: Option<Location>, m: Method| {
            if let Some(place) = place
                && method != m
            {
                v.error(
                    place,
                    format!("{field} only applies to method {}", m.name()),
                    Some(format!("remove {field}, or set method: {}", m.name())),
                );
            }
        };
        only(
            v,
            "expires",
            self.expires.as_ref().map(|e| e.referenced),
            Method::Register,
        );
        only(
            v,
            "ring_time",
            self.ring_time.as_ref().map(|e| e.referenced),
            Method::Invite,
        );

        let expires = match &self.expires {
            Some(e) if e.value.0 < Duration::from_secs(1) => {
                v.error(
                    e.referenced,
                    "expires must be at least 1s",
                    Some(
                        "SIP counts registration lifetimes in whole seconds, e.g. expires: 60s"
                            .into(),
                    ),
                );
                DEFAULT_EXPIRES
            }
            Some(e) => u32::try_from(e.value.0.as_secs()).unwrap_or(u32::MAX),
            None => DEFAULT_EXPIRES,
        };
        let ring_time = match &self.ring_time {
            Some(r) if r.value.0.is_zero() => {
                v.error(
                    r.referenced,
                    "ring_time must be longer than zero",
                    Some("write e.g. ring_time: 3s".into()),
                );
                DEFAULT_RING_TIME
            }
            Some(r) => r.value.0,
            None => DEFAULT_RING_TIME,
        };
        let user_agent = match &self.user_agent {
            Some(ua) if ua.value.trim().is_empty() || ua.value.chars().any(char::is_control) => {
                v.error(
                    ua.referenced,
                    "user_agent must be one line of text",
                    Some("e.g. user_agent: continuity-probe".into()),
                );
                String::new()
            }
            Some(ua) => ua.value.trim().to_string(),
            None => format!("continuity/{}", env!("CARGO_PKG_VERSION")),
        };

        let (dest_host, dest_port) = self.destination(uri.as_ref(), transport, v);
        let tls = self.tls(transport, at, v);
        // Checked here, not at the handshake: a host that cannot be a TLS
        // name is a mistake in the file, not the line's failure.
        let server_name = match (transport, &self.server_name, &dest_host) {
            (Transport::Tls, Some(n), _) => super::tls::checked_server_name(n, v),
            (Transport::Tls, None, Some(host)) => {
                let place = self
                    .proxy
                    .as_ref()
                    .map_or(self.uri.referenced, |p| p.referenced);
                super::tls::checked_server_name(&Spanned::new(host.clone(), place), v)
            }
            _ => None,
        };

        let username = self.username.as_ref().map(|u| u.value.trim().to_string());
        let (from, to, contact_user) = match &uri {
            Some(u) => self.addresses(u, username.as_deref(), v)?,
            None => return None,
        };
        let mut request_uri = uri?;
        if transport != Transport::Udp
            && request_uri.param("transport").is_none()
            && !request_uri.secure
        {
            // Tell proxies on the way which transport we chose.
            request_uri
                .params
                .push(("transport".into(), Some(transport.name().into())));
        }
        if v.issues.len() > errors_before {
            return None;
        }
        Some(SipProbe {
            // What the files named by password_file and ca_file hold takes
            // part, so a rotated secret is a changed definition on reload;
            // the digest keeps 16 bytes of a hash, never the secret.
            digest: SpecDigest::of(&(
                &self,
                credentials.as_ref().map(|c| &c.password),
                tls.as_ref()
                    .and_then(|t| t.as_ref().map(|t| t.ca_content())),
            )),
            method,
            request_uri,
            dest: Destination {
                transport,
                host: dest_host?,
                port: dest_port,
                tls: tls?,
                server_name,
            },
            accept,
            credentials,
            from,
            to,
            contact_user,
            expires,
            ring_time,
            user_agent,
            parity: None,
        })
    }

    fn has_password(&self) -> bool {
        self.password.is_some() || self.password_file.is_some()
    }

    /// The transport: the field, else the URI's `transport=` parameter,
    /// else TLS for `sips:` and UDP otherwise. Contradictions are errors.
    fn transport(&self, uri: &SipUri, v: &mut Validator) -> Option<Transport> {
        let from_uri = match uri.param("transport") {
            None => None,
            Some(t) => match t.map(str::to_ascii_lowercase).as_deref() {
                Some("udp") => Some(Transport::Udp),
                Some("tcp") => Some(Transport::Tcp),
                Some("tls") => Some(Transport::Tls),
                _ => {
                    v.error(
                        self.uri.referenced,
                        format!(
                            "the URI's transport parameter '{}' is not udp, tcp or tls",
                            t.unwrap_or("")
                        ),
                        Some("remove ;transport=... and use the transport field".into()),
                    );
                    None
                }
            },
        };
        let chosen = match (&self.transport, from_uri) {
            (Some(t), Some(u)) if t.value != u => {
                v.error(
                    t.referenced,
                    format!(
                        "transport {} contradicts the URI's ;transport={}",
                        t.value.name(),
                        u.name()
                    ),
                    Some("keep one of them".into()),
                );
                return None;
            }
            (Some(t), _) => t.value,
            (None, Some(u)) => u,
            (None, None) if uri.secure => Transport::Tls,
            (None, None) => Transport::Udp,
        };
        if uri.secure && chosen != Transport::Tls {
            v.error(
                self.transport
                    .as_ref()
                    .map_or(self.uri.referenced, |t| t.referenced),
                format!("a sips: URI needs transport tls, not {}", chosen.name()),
                Some("write sip: instead of sips:, or use transport: tls".into()),
            );
        }
        Some(chosen)
    }

    fn accept(&self, v: &mut Validator) -> Vec<u16> {
        let Some(list) = &self.accept else {
            return self.method.default_accept();
        };
        if list.value.is_empty() {
            v.error(
                list.referenced,
                "accept is empty, so no answer could count as up",
                Some("remove accept to use the default, or list codes like [200]".into()),
            );
        }
        for &code in &list.value {
            let problem = if !(100..=699).contains(&code) {
                Some(format!("{code} is not a SIP response code (100-699)"))
            } else if code == 100 {
                Some(
                    "100 Trying only says the request arrived, not that the line works".to_string(),
                )
            } else if code < 200 && self.method != Method::Invite {
                Some(format!(
                    "{code} is provisional; a {} always ends with a final code (200-699)",
                    self.method.name().to_uppercase()
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                v.error(
                    list.referenced,
                    format!("accept: {p}"),
                    Some("list final codes such as 200, 401, 403, 404, 405, 407 (and 180, 183 for invite)".into()),
                );
            }
        }
        list.value.clone()
    }

    fn credentials(&self, v: &mut Validator, at: Location) -> Option<Credentials> {
        let base = Path::new(v.file().as_ref())
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let password = expand::secret(
            "password",
            self.password.as_ref().map(|p| p.expose().to_string()),
            self.password_file.as_ref(),
            &base,
            v,
        );
        if let Some(p) = &password
            && p.expose().is_empty()
        {
            v.error(
                self.password_file.as_ref().map_or(at, |f| f.referenced),
                "the password is empty",
                Some(
                    "set the environment variable it comes from, or fill the password_file".into(),
                ),
            );
            return None;
        }
        let username = self.username.as_ref().map(|u| u.value.trim().to_string());
        match (username, password) {
            (Some(u), Some(p)) => Some(Credentials {
                username: self
                    .auth_username
                    .as_ref()
                    .map(|a| a.trim().to_string())
                    .unwrap_or(u),
                password: p,
            }),
            (None, Some(_)) => {
                v.error(
                    self.password_file.as_ref().map_or(at, |f| f.referenced),
                    "a password without a username",
                    Some("add username: the account name".into()),
                );
                None
            }
            (Some(_), None) if self.auth_username.is_some() => {
                v.error(
                    at,
                    "auth_username without a password",
                    Some("add password or password_file".into()),
                );
                None
            }
            _ => None,
        }
    }

    fn destination(
        &self,
        uri: Option<&SipUri>,
        transport: Transport,
        v: &mut Validator,
    ) -> (Option<String>, u16) {
        let default_port = transport.default_port();
        if let Some(p) = &self.proxy {
            let text = p.value.trim();
            let has_scheme = |scheme: &str| {
                text.get(..scheme.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
            };
            let as_uri = if has_scheme("sip:") || has_scheme("sips:") {
                text.to_string()
            } else {
                format!("sip:{text}")
            };
            return match SipUri::parse(&as_uri) {
                Ok(u) if u.user.is_none() && u.params.is_empty() => {
                    (Some(u.host), u.port.unwrap_or(default_port))
                }
                Ok(_) | Err(_) => {
                    v.error(
                        p.referenced,
                        format!("proxy '{text}' is not host[:port]"),
                        Some(
                            "write e.g. proxy: sbc.example.org:5060 or proxy: '[2001:db8::1]:5060'"
                                .into(),
                        ),
                    );
                    (None, default_port)
                }
            };
        }
        match uri {
            Some(u) => (Some(u.host.clone()), u.port.unwrap_or(default_port)),
            None => (None, default_port),
        }
    }

    /// The shared TLS client for transport tls; `Some(None)` for the
    /// others, `None` when an error was recorded.
    fn tls(
        &self,
        transport: Transport,
        at: Location,
        v: &mut Validator,
    ) -> Option<Option<std::sync::Arc<super::tls_util::TlsClient>>> {
        if transport != Transport::Tls {
            let fields = [
                ("tls_verify", self.tls_verify.as_ref().map(|t| t.referenced)),
                ("ca_file", self.ca_file.as_ref().map(|t| t.referenced)),
                (
                    "server_name",
                    self.server_name.as_ref().map(|t| t.referenced),
                ),
            ];
            for (name, place) in fields {
                if let Some(place) = place {
                    v.error(
                        place,
                        format!("{name} only applies to transport tls"),
                        Some(format!("remove {name}, or set transport: tls")),
                    );
                }
            }
            return Some(None);
        }
        let verify = self.tls_verify.as_ref().is_none_or(|t| t.value);
        super::tls::tls_client(self.ca_file.as_ref(), None, verify, &[], at, v).map(Some)
    }

    /// From, To and the Contact user.
    fn addresses(
        &self,
        uri: &SipUri,
        username: Option<&str>,
        v: &mut Validator,
    ) -> Option<(SipUri, SipUri, String)> {
        let user = username.unwrap_or("continuity");
        let from = match &self.from {
            Some(f) => match SipUri::parse(&f.value) {
                Ok(u) => u,
                Err(msg) => {
                    v.error(
                        f.referenced,
                        format!("from: {msg}"),
                        Some("write it like sip:continuity@gemeente.nl".into()),
                    );
                    return None;
                }
            },
            None => {
                let text = format!("sip:{user}@{}", uri.host_for_uri());
                match SipUri::parse(&text) {
                    Ok(u) => SipUri {
                        secure: uri.secure,
                        ..u
                    },
                    Err(_) => {
                        let place = self
                            .username
                            .as_ref()
                            .map_or(self.uri.referenced, |u| u.referenced);
                        v.error(
                            place,
                            format!("username '{user}' cannot be the user part of a SIP URI"),
                            Some(
                                "use letters, digits and -_.!~*'()&=+$,;?/ only, or set from"
                                    .into(),
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let to = match self.method {
            Method::Register => from.clone(),
            Method::Options | Method::Invite => SipUri {
                params: Vec::new(),
                ..uri.clone()
            },
        };
        let contact_user = match username {
            Some(u) if SipUri::parse(&format!("sip:{u}@x")).is_ok() => u.to_string(),
            _ => from.user.clone().unwrap_or_else(|| "continuity".into()),
        };
        Some((from, to, contact_user))
    }
}

#[cfg(test)]
mod tests;
