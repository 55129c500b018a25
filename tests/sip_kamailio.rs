//! The SIP probe against a real SIP server: Kamailio, started per test on
//! free loopback ports with a script that answers OPTIONS, challenges
//! REGISTER (digest, no database), and plays a phone line for INVITEs.
//!
//! Kamailio must be installed (`apt-get install kamailio`; CI does this).
//! Without it these tests fail on purpose instead of passing silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::ports::on_a_free_port;

use continuity::probe::Prober;
use continuity::probe::sip::responder::{self, LineBehaviour, LineState};
use continuity::probe::sip::{SipProbe, SipSpec};
use continuity::probe::{FailureReason, ProbeContext, ProbeOutcome, phase};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

fn kamailio_binary() -> PathBuf {
    let candidates = [
        "/usr/sbin/kamailio",
        "/usr/local/sbin/kamailio",
        "/usr/bin/kamailio",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "kamailio is not installed, so the SIP probe cannot be checked against a real \
                 server: run `apt-get install kamailio` (CI installs it)"
            )
        })
}

fn module_dir() -> PathBuf {
    let mut dirs = vec![
        PathBuf::from("/usr/lib/x86_64-linux-gnu/kamailio/modules"),
        PathBuf::from("/usr/lib/aarch64-linux-gnu/kamailio/modules"),
        PathBuf::from("/usr/lib/kamailio/modules"),
        PathBuf::from("/usr/lib64/kamailio/modules"),
        PathBuf::from("/usr/local/lib64/kamailio/modules"),
    ];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("kamailio/modules")));
    }
    dirs.into_iter()
        .find(|d| d.join("tm.so").exists())
        .unwrap_or_else(|| {
            panic!("kamailio modules (tm.so) not found; run `apt-get install kamailio`")
        })
}

fn config(port: u16, algorithm: &str, modules: &Path) -> String {
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)
modparam("auth", "algorithm", "{algorithm}")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (!sanity_check("17895", "7")) {{ xlog("L_WARN", "insane request from $si\n"); exit; }}
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("REGISTER")) {{
        $avp(password) = "{PASSWORD}";
        if ($au != $null && $au != "{USER}") {{ sl_send_reply("403", "Forbidden"); exit; }}
        pv_www_authenticate("$td", "$avp(password)", "0");
        $var(rc) = $rc;
        if ($var(rc) == -2) {{ sl_send_reply("403", "Forbidden"); exit; }}
        if ($var(rc) < 0) {{ www_challenge("$td", "1"); exit; }}
        consume_credentials();
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("ACK")) {{ t_check_trans(); exit; }}
    if (is_method("CANCEL")) {{
        if (t_reply_callid("$ci", "$cs", "487", "Request Terminated")) {{
            sl_send_reply("200", "OK");
        }} else {{
            sl_send_reply("481", "Call/Transaction Does Not Exist");
        }}
        exit;
    }}
    if (is_method("BYE")) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("INVITE")) {{
        if (t_check_trans()) {{ exit; }}
        t_newtran();
        if ($rU == "1400") {{ t_reply("180", "Ringing"); t_reply("200", "OK"); exit; }}
        if ($rU == "1401") {{ t_reply("180", "Ringing"); exit; }}
        if ($rU == "486") {{ t_reply("486", "Busy Here"); exit; }}
        t_reply("404", "Not Found");
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"#,
        modules = modules.display()
    )
}

/// A running Kamailio; killed (its whole process group) when dropped.
struct Kamailio {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Kamailio {
    async fn start() -> Kamailio {
        Self::start_with("MD5").await
    }

    async fn start_with(algorithm: &str) -> Kamailio {
        let (binary, modules) = (&kamailio_binary(), &module_dir());
        on_a_free_port("kamailio", |port| async move {
            let dir = tempfile::tempdir().unwrap();
            let cfg = dir.path().join("kamailio.cfg");
            std::fs::write(&cfg, config(port, algorithm, modules)).unwrap();
            let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
            let child = std::os::unix::process::CommandExt::process_group(
                Command::new(binary)
                    .arg("-f")
                    .arg(&cfg)
                    .args(["-DD", "-E", "-m", "32", "-M", "8", "-Y"])
                    .arg(dir.path())
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log),
                0,
            )
            .spawn()
            .expect("kamailio starts");
            let k = Kamailio { child, port, dir };
            if k.ready().await {
                return Some(k);
            }
            eprintln!("kamailio's log:\n{}", k.log());
            None
        })
        .await
    }

    /// Both listeners answer OPTIONS.
    async fn ready(&self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let udp = run(
                &self.spec("udp", "uri: sip:ping@HOST"),
                Duration::from_millis(300),
            )
            .await;
            let tcp = run(
                &self.spec("tcp", "uri: sip:ping@HOST"),
                Duration::from_millis(300),
            )
            .await;
            if udp.success() && tcp.success() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// A spec for this server: `HOST` in `yaml` becomes 127.0.0.1:port.
    fn spec(&self, transport: &str, yaml: &str) -> SipProbe {
        let host = format!("127.0.0.1:{}", self.port);
        spec(&format!(
            "{}\ntransport: {transport}\n",
            yaml.replace("HOST", &host)
        ))
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

fn spec(yaml: &str) -> SipProbe {
    let s: SipSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
    continuity::probe::compile(s, "kamailio-test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

async fn run(s: &SipProbe, timeout: Duration) -> ProbeOutcome {
    let ctx = ProbeContext::new(timeout);
    let mut o = s.probe(&ctx).await.expect("probe runs");
    o.duration = ctx.started.elapsed();
    o
}

fn detail<'a>(o: &'a ProbeOutcome, key: &str) -> &'a str {
    o.details
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no detail {key} in {:?}", o.details))
}

const TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn kamailio_answers_options_over_udp_and_tcp() {
    let k = Kamailio::start().await;
    for transport in ["udp", "tcp"] {
        let o = run(&k.spec(transport, "uri: sip:ping@HOST"), TIMEOUT).await;
        assert!(o.success(), "{transport}: {:?} {:?}", o.failure, o.exchange);
        assert_eq!(o.sip_code, Some(200));
        assert!(o.phases.iter().any(|(p, _)| *p == phase::RESPONSE));
        assert!(
            o.exchange[0].contains("> OPTIONS sip:ping@127.0.0.1:"),
            "{:?}",
            o.exchange
        );
    }
}

fn register(password: &str) -> String {
    format!(
        "uri: sip:HOST\nmethod: register\nusername: {USER}\npassword: {password}\nexpires: 120s"
    )
}

#[tokio::test]
async fn kamailio_registers_with_the_right_password_and_unregisters_over_udp_and_tcp() {
    let k = Kamailio::start().await;
    for transport in ["udp", "tcp"] {
        let o = run(&k.spec(transport, &register(PASSWORD)), TIMEOUT).await;
        assert!(
            o.success(),
            "{transport}: {:?} {:?}\n{}",
            o.failure,
            o.exchange,
            k.log()
        );
        assert_eq!(o.sip_code, Some(200));
        assert_eq!(detail(&o, "expires"), "120s");
        assert_eq!(detail(&o, "unregister"), "removed (200 OK)");
        let statuses: Vec<&str> = o
            .exchange
            .iter()
            .filter_map(|l| l.split_once("< ").map(|(_, s)| s))
            .collect();
        assert_eq!(
            statuses,
            [
                "SIP/2.0 401 Unauthorized",
                "SIP/2.0 200 OK",
                "SIP/2.0 200 OK"
            ],
            "{transport}: {:?}",
            o.exchange
        );
    }
}

#[tokio::test]
async fn kamailio_registration_with_sha256_digest_succeeds() {
    let k = Kamailio::start_with("SHA-256").await;
    let o = run(&k.spec("udp", &register(PASSWORD)), TIMEOUT).await;
    assert!(o.success(), "{:?} {:?}\n{}", o.failure, o.exchange, k.log());
    assert_eq!(detail(&o, "unregister"), "removed (200 OK)");
}

#[tokio::test]
async fn kamailio_rejects_a_wrong_password_as_auth() {
    let k = Kamailio::start().await;
    for transport in ["udp", "tcp"] {
        let o = run(&k.spec(transport, &register("wrong")), TIMEOUT).await;
        assert_eq!(
            o.reason(),
            Some(FailureReason::Auth),
            "{transport}: {:?}",
            o.exchange
        );
        assert_eq!(o.sip_code, Some(403));
    }
}

#[tokio::test]
async fn kamailio_test_call_rings_is_answered_and_hung_up() {
    let k = Kamailio::start().await;
    let o = run(
        &k.spec("udp", "uri: sip:1400@HOST\nmethod: invite"),
        TIMEOUT,
    )
    .await;
    assert!(o.success(), "{:?} {:?}\n{}", o.failure, o.exchange, k.log());
    assert_eq!(o.sip_code, Some(200));
    let names: Vec<&str> = o.phases.iter().map(|(p, _)| *p).collect();
    assert!(
        names.contains(&phase::RINGING) && names.contains(&phase::ANSWER),
        "{names:?}"
    );
    assert_eq!(
        detail(&o, "hangup"),
        "BYE answered 200 OK",
        "{:?}",
        o.exchange
    );
}

#[tokio::test]
async fn kamailio_test_call_that_only_rings_is_cancelled_cleanly() {
    let k = Kamailio::start().await;
    let yaml = "uri: sip:1401@HOST\nmethod: invite\nring_time: 300ms";
    let o = run(&k.spec("udp", yaml), TIMEOUT).await;
    assert!(o.success(), "{:?} {:?}\n{}", o.failure, o.exchange, k.log());
    assert_eq!(o.sip_code, Some(180));
    assert_eq!(
        detail(&o, "hangup"),
        "cancelled (487 Request Terminated)",
        "{:?}",
        o.exchange
    );
    assert!(o.duration < Duration::from_secs(2), "{:?}", o.duration);
}

#[tokio::test]
async fn kamailio_busy_number_fails_with_status_486() {
    let k = Kamailio::start().await;
    for transport in ["udp", "tcp"] {
        let o = run(
            &k.spec(transport, "uri: sip:486@HOST\nmethod: invite"),
            TIMEOUT,
        )
        .await;
        assert_eq!(
            o.reason(),
            Some(FailureReason::Status),
            "{transport}: {:?}",
            o.exchange
        );
        assert_eq!(o.sip_code, Some(486));
        assert!(o.failure.unwrap().detail.contains("486 Busy Here"));
    }
}

#[tokio::test]
async fn a_stopped_kamailio_is_refused_within_the_timeout() {
    let mut k = Kamailio::start().await;
    k.signal("TERM");
    let _ = k.child.wait();
    for transport in ["udp", "tcp"] {
        let o = run(&k.spec(transport, "uri: sip:ping@HOST"), TIMEOUT).await;
        assert!(
            matches!(
                o.reason(),
                Some(FailureReason::Refused | FailureReason::Timeout)
            ),
            "{transport}: {:?}",
            o.failure
        );
        assert!(
            o.duration <= TIMEOUT + Duration::from_millis(100),
            "{:?}",
            o.duration
        );
    }
}

#[tokio::test]
async fn a_paused_kamailio_times_out_without_delaying_other_probes() {
    let k = Kamailio::start().await;
    k.signal("STOP");

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let fake: SocketAddr = socket.local_addr().unwrap();
    let up: responder::StateFn = Arc::new(|| LineState::Up);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(responder::serve_udp(
        socket,
        LineBehaviour::default(),
        up,
        async {
            let _ = stopped.await;
        },
    ));

    let paused = k.spec("udp", "uri: sip:ping@HOST");
    let healthy = spec(&format!("uri: sip:ping@{fake}"));
    let timeout = Duration::from_secs(2);
    let (p, h) = tokio::join!(run(&paused, timeout), run(&healthy, timeout));

    assert_eq!(p.reason(), Some(FailureReason::Timeout), "{:?}", p.exchange);
    assert!(p.duration >= timeout && p.duration < timeout + Duration::from_millis(200));
    assert!(p.exchange.iter().any(|l| l.ends_with("(retransmission)")));
    assert!(h.success(), "{:?}", h.failure);
    assert!(
        h.duration < timeout / 4,
        "healthy probe took {:?}",
        h.duration
    );

    let _ = stop.send(());
    server.await.unwrap();
}
