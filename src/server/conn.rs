//! Accepting and serving connections to our own endpoints, with the limits
//! `axum::serve` does not have: a cap on connections served at once (at the
//! cap, the connection quiet longest is closed to make room), a
//! header-read timeout, an idle timeout on every connection, and a
//! graceful shutdown that waits `server.shutdown_timeout` at most. Without
//! them, 10,000 idle clients took every descriptor the probes needed.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Config;
use crate::config::server::ServerLimits;
use crate::config::server_tls::ServerTls;
use crate::telemetry::Telemetry;

/// How our server accepts and keeps connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub limits: ServerLimits,
    /// Connections served at once: `limits.max_connections`, lowered when
    /// the descriptor limit would not leave the probes their budget.
    pub connection_cap: usize,
}

/// Serve `app` on `listener` (over TLS when the running `config` has
/// `server.tls`) until `stop` turns true; then stop accepting,
/// let requests in progress finish for up to `shutdown_timeout`, and close
/// what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    config: Arc<RwLock<Arc<Config>>>,
    telemetry: Arc<Telemetry>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = options.limits;
    let cap = options.connection_cap.max(1);
    let permits = Arc::new(Semaphore::new(cap));
    telemetry.http_connection_limit.set(cap as i64);
    let (closing, closing_rx) = watch::channel(false);
    let quiet = Arc::new(Quiet::default());
    let mut connections = JoinSet::new();
    let mut accept_failures_logged = Instant::now() - Duration::from_secs(60);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                telemetry.http_accept_errors_total.inc();
                // Out of descriptors (EMFILE) fails every accept until some
                // are freed: pause rather than spin, and log once a minute.
                if accept_failures_logged.elapsed() >= Duration::from_secs(60) {
                    tracing::error!(error = %e, "cannot accept a connection to our HTTP server");
                    accept_failures_logged = Instant::now();
                }
                if !connection_error(&e) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // At the cap, the connection that has been quiet longest makes
        // room (a client that connects and sends nothing, say), so that a
        // scraper is not stuck behind idle connections; when every one is
        // busy, the newcomer waits for one to end. Either way we hold at
        // most one descriptor more than the cap.
        let permit = loop {
            if let Ok(p) = permits.clone().try_acquire_owned() {
                break Some(p);
            }
            quiet.evict_quietest();
            tokio::select! {
                p = permits.clone().acquire_owned() => break p.ok(),
                () = tokio::time::sleep(SILENT_GRACE) => {}
                _ = stop.wait_for(|s| *s) => break None,
            }
        };
        let Some(permit) = permit else { break };
        // Read per connection: a reload (SIGHUP) brings renewed
        // certificates without a restart.
        let tls = config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .server
            .tls
            .clone();
        connections.spawn(serve_connection(
            stream,
            tls,
            app.clone(),
            limits,
            Slot::enter(&quiet, permit),
            telemetry.clone(),
            closing_rx.clone(),
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            of = open,
            "connections still open after server.shutdown_timeout ({}); closing them",
            crate::config::Dur(limits.shutdown_timeout)
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Errors that concern one connection only (the client went away before
/// we accepted it): accept the next one at once.
fn connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Counts a connection in `continuity_http_connections` while it lives.
struct Open<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serve one connection: HTTP/1.1 with the header-read timeout, closed when
/// no byte moved for the idle timeout, asked to finish its request when the
/// server closes.
async fn serve_connection(
    stream: TcpStream,
    tls: Option<ServerTls>,
    app: Router,
    limits: ServerLimits,
    slot: Slot,
    telemetry: Arc<Telemetry>,
    closing: watch::Receiver<bool>,
) {
    telemetry.http_connections_open.inc();
    let _open = Open(&telemetry.http_connections_open);
    let _ = stream.set_nodelay(true);
    let tracked = Tracked {
        inner: stream,
        started: slot.started,
        activity: slot.activity.clone(),
    };
    let Some(tls) = tls else {
        return serve_http(tracked, app, limits, &slot, closing).await;
    };
    // The handshake counts against the header-read timeout: a client that
    // opens TLS and stops is closed like one that sends half a header.
    let accepted = tokio::time::timeout(
        limits.header_read_timeout,
        tokio_rustls::TlsAcceptor::from(tls.config).accept(tracked),
    )
    .await;
    match accepted {
        Ok(Ok(stream)) => serve_http(stream, app, limits, &slot, closing).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake with a client failed"),
        Err(_) => tracing::debug!("TLS handshake with a client timed out"),
    }
}

/// HTTP/1.1 on `io` with the header-read timeout, closed when no byte moved
/// for the idle timeout or when evicted, asked to finish its request when
/// the server closes.
async fn serve_http<S>(
    io: S,
    app: Router,
    limits: ServerLimits,
    slot: &Slot,
    mut closing: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (started, activity) = (slot.started, &slot.activity);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut asked_to_close = false;
    loop {
        let idle_until =
            started + Duration::from_millis(activity.load(Ordering::Relaxed)) + limits.idle_timeout;
        tokio::select! {
            _ = conn.as_mut() => return,
            () = slot.evict.notified() => return,
            _ = closing.wait_for(|c| *c), if !asked_to_close => {
                conn.as_mut().graceful_shutdown();
                asked_to_close = true;
            }
            () = tokio::time::sleep_until(idle_until) => {
                let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
                if last.elapsed() >= limits.idle_timeout {
                    return;
                }
            }
        }
    }
}

/// A connection that sent nothing yet may be closed to make room at the
/// cap once it is this old (a client's request is in our buffer the moment
/// we accept it; this leaves its first read a chance).
const SILENT_GRACE: Duration = Duration::from_millis(10);
/// A connection that did move bytes may be closed to make room once it has
/// been quiet this long; one busier than that is never evicted.
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// An open connection as eviction sees it: when it opened, when a byte
/// last moved (ms after opening, 0 = never), and how to tell it to close.
type Seen = (Instant, Arc<AtomicU64>, Arc<Notify>);

/// The open connections, to find the one to close at the cap.
#[derive(Default)]
struct Quiet {
    slots: Mutex<HashMap<u64, Seen>>,
    next: AtomicU64,
}

impl Quiet {
    /// Tell one connection to close: the oldest that never sent a byte
    /// (past [`SILENT_GRACE`]), else the one quiet longest (past
    /// [`EVICT_AFTER`]); none when all are busy.
    fn evict_quietest(&self) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let victim = slots
            .values()
            .filter_map(|(started, activity, evict)| {
                let ms = activity.load(Ordering::Relaxed);
                let (silent, last) = match ms {
                    0 => (true, *started),
                    ms => (false, *started + Duration::from_millis(ms)),
                };
                let idle = last.elapsed();
                let eligible = if silent {
                    idle >= SILENT_GRACE
                } else {
                    idle >= EVICT_AFTER
                };
                eligible.then_some((!silent, last, evict))
            })
            .min_by_key(|(busy, last, _)| (*busy, *last));
        if let Some((_, _, evict)) = victim {
            evict.notify_one();
        }
    }
}

/// A connection's place among the open ones and its permit; both are given
/// back when it ends.
struct Slot {
    id: u64,
    quiet: Arc<Quiet>,
    started: Instant,
    activity: Arc<AtomicU64>,
    evict: Arc<Notify>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn enter(quiet: &Arc<Quiet>, permit: OwnedSemaphorePermit) -> Slot {
        let id = quiet.next.fetch_add(1, Ordering::Relaxed);
        let (started, activity, evict) = (
            Instant::now(),
            Arc::new(AtomicU64::new(0)),
            Arc::new(Notify::new()),
        );
        quiet
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (started, activity.clone(), evict.clone()));
        Slot {
            id,
            quiet: quiet.clone(),
            started,
            activity,
            evict,
            _permit: permit,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.quiet
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A stream that notes when a byte last moved either way (milliseconds
/// since the connection opened), for the idle timeout.
struct Tracked<S> {
    inner: S,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        // 0 means "never moved a byte"; the first millisecond counts as 1.
        let ms = (self.started.elapsed().as_millis() as u64).max(1);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
