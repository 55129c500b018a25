//! Ports for servers the tests start as other programs (Alertmanager,
//! Prometheus, Kamailio), which must be told their port on their command
//! line. Our own servers bind port 0 and keep their listener; these cannot,
//! so a port is found free, released, and handed over, and another process
//! may take it in between. [`on_a_free_port`] retries on another port when
//! that happens.

use std::future::Future;
use std::net::{TcpListener, UdpSocket};

/// How many ports to try before giving up: a conflict is rare (the port
/// must be taken within the few milliseconds before the server binds it),
/// three in a row means something else is wrong.
const ATTEMPTS: usize = 3;

/// A port on 127.0.0.1 free for both TCP and UDP a moment ago.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("bound address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Start `what` with `start(port)` on a free port; `start` gives `None`
/// when the server did not come up there (it exited, or another server
/// answered), and then a new port is tried.
pub async fn on_a_free_port<T, F>(what: &str, mut start: impl FnMut(u16) -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    for _ in 0..ATTEMPTS {
        let port = free_port();
        if let Some(server) = start(port).await {
            return server;
        }
        eprintln!("{what} did not come up on port {port}; trying another port");
    }
    panic!("{what} did not start in {ATTEMPTS} attempts (see the messages above)");
}
