//! TLS helpers shared by the http, tls and sip probes.
