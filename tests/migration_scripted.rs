//! A scripted migration on a manual clock, end to end. The daemon runs
//! in-process on a [`continuity::clock::ManualClock`] and probes the
//! citizen portal through a front that sends each connection to a local
//! "old" server (in-house) before the cutover's start and to a local "new"
//! one (NorthHost) from then on, as a DNS change or a load balancer would.
//! The test moves the clock from one probe slot to the next through two
//! and a half days:
//!
//! - a baseline day with an outage (6 failed probes) and a blip (2 failed
//!   probes, below the failure threshold of 3: it counts nothing);
//! - an outage that starts 10 minutes before the cutover's start, runs
//!   through the window and past its end, so the verification round at
//!   the window's end fails;
//! - a hypercare outage (3 failed probes) and a blip; then steady.
//!
//! Probes land exactly on their slots (`k × 5 min + offset`), so every
//! figure below is worked out by hand from the script and the rules of
//! docs/sla.md, to the millisecond: the phases and suppliers, the
//! verification round, the per-supplier rows and the combined row, the
//! incident that crosses the cutover, and the before/after verdict.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use continuity::clock::Clock;
use continuity::config::Config;
use continuity::report::{PeriodSelector, sla_report};
use continuity::store::SqliteStore;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

mod support;
use support::daemon::{InProcess, metric, request, serve, wait_until};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// The check's slots are `k × 300 s + 23.5 s` of Unix time (its stable
/// offset, a hash of `citizen-portal/home`): asserted first, as every
/// figure below depends on it.
const OFFSET: SignedDuration = SignedDuration::from_millis(23_500);

const CUTOVER_START: &str = "2026-03-10T22:00:00+01:00";
const CUTOVER_END: &str = "2026-03-11T02:00:00+01:00";

fn config(front: SocketAddr) -> String {
    format!(
        r#"
store:
  path: continuity.db
suppliers:
  in-house:  {{ name: "Gemeente Groningen (in-house)" }}
  northhost: {{ name: "NorthHost B.V.", lot: "Hosting", contact: "servicedesk@northhost.example" }}
services:
  - id: citizen-portal
    supplier: in-house
    migration:
      from: in-house
      to: northhost
      cutover: {{ start: {CUTOVER_START}, end: {CUTOVER_END}, reference: CHG-1042 }}
      hypercare: 1d
      baseline: 1d
    slas:
      - {{ name: round-the-clock, objective: 99.5, period: week }}
    checks:
      - id: home
        interval: 5m
        timeout: 2s
        http: {{ url: "http://{front}/" }}
"#
    )
}

/// Whether `t` is in `[from, to)`, local times of the script.
fn within(t: Timestamp, from: &str, to: &str) -> bool {
    ts(from) <= t && t < ts(to)
}

/// The script: which side answers 503 at a probe at `t`.
fn old_fails(t: Timestamp) -> bool {
    within(t, "2026-03-10T10:00:00+01:00", "2026-03-10T10:30:00+01:00")
        || within(t, "2026-03-10T12:00:00+01:00", "2026-03-10T12:10:00+01:00")
        || within(t, "2026-03-10T21:50:00+01:00", CUTOVER_START)
}

fn new_fails(t: Timestamp) -> bool {
    within(t, CUTOVER_START, "2026-03-11T02:10:00+01:00")
        || within(t, "2026-03-11T14:00:00+01:00", "2026-03-11T14:15:00+01:00")
        || within(t, "2026-03-11T16:00:00+01:00", "2026-03-11T16:10:00+01:00")
}

/// A portal that answers after `delay`: 200, or 503 while `failing`.
fn portal(delay: Duration, failing: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    serve(listener, move |_| {
        std::thread::sleep(delay);
        if failing.load(Ordering::SeqCst) {
            (503, String::new())
        } else {
            (200, "Welkom".to_string())
        }
    });
    addr
}

/// The public address: each connection goes to `new` once `to_new` is
/// set, to `old` before.
fn front(old: SocketAddr, new: SocketAddr, to_new: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let backend = if to_new.load(Ordering::SeqCst) {
                new
            } else {
                old
            };
            let Ok(server) = TcpStream::connect(backend) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn json(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = request(addr, "GET", path, None, "");
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Wait until the engine has taken the probe that started at `t` (the
/// status board shows it as the check's last result).
fn applied(addr: SocketAddr, t: Timestamp) -> Value {
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = request(addr, "GET", "/api/v1/status", None, "");
        let board: Value = serde_json::from_str(&body).unwrap();
        let last = &board["services"][0]["checks"][0]["last"];
        if last["at"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok())
            == Some(t)
        {
            return last.clone();
        }
        assert!(
            Instant::now() < limit,
            "no result for the probe at {t}: {last}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn migration(addr: SocketAddr) -> Value {
    json(addr, "/api/v1/migrations")["migrations"][0].clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn a_scripted_migration_is_attributed_and_judged_to_the_millisecond() {
    assert_eq!(
        continuity::scheduler::offset("citizen-portal", "home", Duration::from_secs(300)),
        Duration::try_from(OFFSET).unwrap()
    );
    let (old_down, new_down, to_new) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    // The old portal answers in 10 ms, the new one in 40 ms.
    let old = portal(Duration::from_millis(10), old_down.clone());
    let new = portal(Duration::from_millis(40), new_down.clone());
    let front = front(old, new, to_new.clone());

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(&cfg, config(front)).unwrap();
    let start = ts("2026-03-09T21:00:00+01:00");
    let (clock, hand) = Clock::manual(start);
    let daemon = InProcess::start_on_clock(&cfg, clock);
    let addr = daemon.addr;

    // Every probe of the script: each slot from the start to just past
    // the end of hypercare, and the verification round at the window's
    // end.
    let stop = ts("2026-03-12T02:05:23.5+01:00");
    let mut instants: Vec<Timestamp> = std::iter::successors(Some(start + OFFSET), |t| {
        Some(*t + SignedDuration::from_mins(5))
    })
    .take_while(|t| *t <= stop)
    .collect();
    instants.push(ts(CUTOVER_END));
    instants.sort();
    // 53 h 5 min of slots every 5 min, both ends in, and the round.
    assert_eq!(instants.len(), 638 + 1);

    let checkpoints = [
        ts("2026-03-10T12:00:23.5+01:00"),
        ts("2026-03-10T23:00:23.5+01:00"),
        ts(CUTOVER_END),
        ts("2026-03-11T14:15:23.5+01:00"),
        stop,
    ];
    let mut checked = Vec::new();
    for &t in &instants {
        to_new.store(t >= ts(CUTOVER_START), Ordering::SeqCst);
        old_down.store(old_fails(t), Ordering::SeqCst);
        new_down.store(new_fails(t), Ordering::SeqCst);
        hand.set(t);
        let last = applied(addr, t);
        let failing =
            old_fails(t) && t < ts(CUTOVER_START) || new_fails(t) && t >= ts(CUTOVER_START);
        assert_eq!(last["success"], !failing, "probe at {t}: {last}");

        // The phases and suppliers as the migration goes on.
        let Some(checkpoint) = checkpoints.iter().position(|c| *c == t) else {
            continue;
        };
        let m = if checkpoint == 2 {
            // The round is recorded through the store's writer.
            wait_until("the verification round", Duration::from_secs(5), || {
                let m = migration(addr);
                (!m["verification"].is_null()).then_some(m)
            })
        } else {
            migration(addr)
        };
        checked.push(checkpoint);
        match checkpoint {
            0 => {
                assert_eq!(m["phase"], "baseline", "{m}");
                assert_eq!(m["supplier"]["id"], "in-house");
                assert_eq!(m["next_cutover"]["reference"], "CHG-1042");
                assert!(m["verification"].is_null());
            }
            1 => {
                // The window is the new supplier's: it makes the change.
                assert_eq!(m["phase"], "cutover", "{m}");
                assert_eq!(m["supplier"]["id"], "northhost");
                assert_eq!(m["supplier"]["name"], "NorthHost B.V.");
            }
            2 => {
                // The round at the window's end, not at the next slot
                // (02:00:23.5): the new portal still answers 503.
                assert_eq!(m["phase"], "hypercare", "{m}");
                let v = &m["verification"];
                assert_eq!(v["reference"], "CHG-1042");
                assert_eq!(v["passed"], false, "{v}");
                assert_eq!(ts(v["at"].as_str().unwrap()), ts(CUTOVER_END));
                let failing = v["failing"].as_array().unwrap();
                assert_eq!(failing.len(), 1, "{v}");
                // The check and its failure's reason.
                assert_eq!(failing[0], "home: status", "{v}");
            }
            3 => {
                // 11 h 44 min 36.5 s of hypercare left: 0.489 days, shown
                // with one decimal, rounded down (never more than is left).
                assert_eq!(m["phase"], "hypercare", "{m}");
                assert_eq!(m["hypercare_days_left"].as_f64(), Some(0.4), "{m}");
                assert_eq!(
                    ts(m["hypercare_ends"].as_str().unwrap()),
                    ts("2026-03-12T02:00:00+01:00")
                );
            }
            _ => {
                assert_eq!(m["phase"], "steady", "{m}");
                assert_eq!(m["supplier"]["id"], "northhost");
                assert_eq!(m["verification"]["passed"], false);
            }
        }
    }
    assert_eq!(checked, [0, 1, 2, 3, 4]);

    // The engine's tick (every 5 s of real time) reads the clock too.
    let metrics = wait_until(
        "the steady phase on /metrics",
        Duration::from_secs(12),
        || {
            let m = request(addr, "GET", "/metrics", None, "").1;
            metric(
            &m,
            "continuity_service_info{service=\"citizen-portal\",supplier=\"northhost\",phase=\"steady\"",
        )
        .is_some()
        .then_some(m)
        },
    );
    assert_eq!(
        metric(
            &metrics,
            "continuity_service_phase{service=\"citizen-portal\",phase=\"steady\"}"
        ),
        Some(1.0),
    );

    // Before and after, as of the clock's now (02:05:23.5 on the 12th).
    //
    // Baseline, [09 22:00, 10 22:00): 24 h eligible; down 1,800 s (10:00:23.5
    // to 10:30:23.5) + 576.5 s (21:50:23.5 to the cutover's start) =
    // 2,376.5 s, i.e. 2,376.5 / 60 × 7 = 277.258… min/week. The blip at
    // 12:00 counts nothing.
    // Hypercare, [11 02:00, 12 02:00): 24 h eligible; down 623.5 s (the
    // window's end to 02:10:23.5) + 900 s (14:00:23.5 to 14:15:23.5) =
    // 1,523.5 s, 177.741… min/week: 99.5 min/week less, beyond the ±5
    // margin, so availability is better. The new portal is 4 times slower
    // (40 ms against 10 ms): latency is worse, and so is the whole.
    let c = json(addr, "/api/v1/migrations/citizen-portal/compare");
    let (before, after) = (&c["windows"][0], &c["windows"][1]);
    assert_eq!(before["phase"], "baseline");
    assert_eq!(
        ts(before["from"].as_str().unwrap()),
        ts("2026-03-09T22:00:00+01:00")
    );
    assert_eq!(ts(before["to"].as_str().unwrap()), ts(CUTOVER_START));
    assert_eq!(after["phase"], "hypercare");
    assert_eq!(ts(after["from"].as_str().unwrap()), ts(CUTOVER_END));
    assert_eq!(
        ts(after["to"].as_str().unwrap()),
        ts("2026-03-12T02:00:00+01:00")
    );
    assert_eq!(before["eligible_hours"], 24.0);
    assert_eq!(after["eligible_hours"], 24.0);
    let per_week = |w: &Value| w["downtime_minutes_per_week"].as_f64().unwrap();
    assert!(close(per_week(before), 2_376.5 / 60.0 * 7.0), "{before}");
    assert!(close(per_week(after), 1_523.5 / 60.0 * 7.0), "{after}");
    assert!(close(
        before["availability"].as_f64().unwrap(),
        84_023.5 / 86_400.0
    ));
    assert!(close(
        after["availability"].as_f64().unwrap(),
        84_876.5 / 86_400.0
    ));
    // Started in the window: the 10:00 outage and the one across the
    // cutover; after, the 14:00 one. Only ended ones have a repair time.
    assert_eq!(
        (before["incidents"].as_u64(), after["incidents"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(before["mttr_seconds"], 1_800.0);
    assert_eq!(after["mttr_seconds"], 900.0);
    // Every successful probe is a sample: 288 slots less 10 failed
    // before; 288 less 7 failed after (the failed round is no sample).
    assert_eq!(before["latency_samples"], 278);
    assert_eq!(after["latency_samples"], 281);
    let (p50_before, p50_after) = (
        before["latency_p50_ms"].as_f64().unwrap(),
        after["latency_p50_ms"].as_f64().unwrap(),
    );
    assert!(p50_before >= 10.0 && p50_after >= 40.0 && p50_after > p50_before + 20.0);

    let hypercare = &c["comparisons"][0];
    assert_eq!(hypercare["phase"], "hypercare");
    let verdict = |name: &str| {
        hypercare["measures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["measure"] == name)
            .unwrap_or_else(|| panic!("no {name} in {hypercare}"))
            .clone()
    };
    let availability = verdict("availability");
    assert_eq!(availability["verdict"], "better", "{availability}");
    assert!(
        availability["test"]
            .as_str()
            .unwrap()
            .contains("277.3 → 177.7 min/week; same within ±5 min/week"),
        "{availability}"
    );
    let latency = verdict("latency");
    assert_eq!(latency["verdict"], "worse", "{latency}");
    assert!(
        latency["test"]
            .as_str()
            .unwrap()
            .starts_with("Mann-Whitney U")
    );
    // Judged per check: the one check, with the samples counted above.
    let home = &latency["checks"][0];
    assert_eq!(
        (
            &home["check"],
            &home["before_samples"],
            &home["after_samples"]
        ),
        (&Value::from("home"), &Value::from(278), &Value::from(281)),
        "{latency}"
    );
    assert_eq!(home["verdict"], "worse");
    assert!(home["ratio_of_means"].as_f64().unwrap() > 1.25, "{home}");
    // A day on each side is too little for rates and repair times: no
    // guess.
    assert_eq!(
        verdict("incidents_per_week")["verdict"],
        "insufficient data"
    );
    assert_eq!(verdict("mttr_seconds")["verdict"], "insufficient data");
    assert_eq!(hypercare["overall"], "worse");
    // Five minutes of steady time: too little to judge at all.
    assert_eq!(c["comparisons"][1]["phase"], "steady");
    assert_eq!(c["comparisons"][1]["overall"], "insufficient data");

    daemon.stop().expect("a clean stop");

    // The stored record, as `continuity sla`, the API and the reports
    // count it: the range from the baseline's start to hypercare's end.
    let cfg = Config::load(&cfg).unwrap();
    let store = SqliteStore::open(&cfg.store.path).unwrap();
    let range = continuity::sla::TimeRange::new(
        ts("2026-03-09T22:00:00+01:00"),
        ts("2026-03-12T02:00:00+01:00"),
    );
    let rows = sla_report(&cfg, &store, PeriodSelector::Range(range), None, hand.now()).unwrap();
    let suppliers: Vec<&str> = rows.iter().map(|r| r.supplier.as_str()).collect();
    assert_eq!(suppliers, ["in-house", "northhost", "*"]);
    let figures = |i: usize| {
        let r = &rows[i];
        (
            r.total_seconds,
            r.excluded_maintenance_seconds,
            r.unknown_seconds,
            r.eligible_seconds,
            r.down_seconds,
        )
    };
    // in-house: the 24 h before the cutover's start.
    assert_eq!(figures(0), (86_400.0, 0.0, 0.0, 86_400.0, 2_376.5));
    // northhost: 28 h from the start, of which the 4 h window is excluded
    // (the outage inside it with it).
    assert_eq!(figures(1), (100_800.0, 14_400.0, 0.0, 86_400.0, 1_523.5));
    assert_eq!(figures(2), (187_200.0, 14_400.0, 0.0, 172_800.0, 3_900.0));

    // The outage across the cutover is on both supplier rows with its true
    // start and end (4 h 20 min); each row is attributed its own share of
    // the wall-clock time.
    let crossing = |i: usize| {
        rows[i]
            .incidents
            .iter()
            .find(|x| x.start == ts("2026-03-10T21:50:23.5+01:00"))
            .unwrap_or_else(|| panic!("no crossing incident on {:?}", rows[i]))
            .clone()
    };
    for i in 0..3 {
        let x = crossing(i);
        assert_eq!(x.end, Some(ts("2026-03-11T02:10:23.5+01:00")));
        assert_eq!(x.duration_seconds, 15_600.0);
    }
    assert_eq!(crossing(0).attributed_seconds, 576.5);
    assert_eq!(crossing(1).attributed_seconds, 15_023.5);
    assert_eq!(crossing(2).attributed_seconds, 15_600.0);
    let starts =
        |i: usize| -> Vec<Timestamp> { rows[i].incidents.iter().map(|x| x.start).collect() };
    assert_eq!(
        starts(0),
        [
            ts("2026-03-10T10:00:23.5+01:00"),
            ts("2026-03-10T21:50:23.5+01:00")
        ]
    );
    assert_eq!(
        starts(1),
        [
            ts("2026-03-10T21:50:23.5+01:00"),
            ts("2026-03-11T14:00:23.5+01:00")
        ]
    );
}

/// A local Alertmanager stand-in: records every batch POSTed to it.
fn alert_sink() -> (SocketAddr, Arc<std::sync::Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    serve(listener, move |request| {
        let body = request.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if let Ok(batch) = serde_json::from_str::<Value>(body) {
            seen.lock().unwrap().push(batch);
        }
        (200, String::new())
    });
    (addr, got)
}

/// The alerts named `name` in the newest batch the sink got.
fn posted(got: &std::sync::Mutex<Vec<Value>>, name: &str) -> Option<Vec<Value>> {
    let batches = got.lock().unwrap();
    let last = batches.last()?.as_array()?.clone();
    Some(
        last.into_iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .collect(),
    )
}

/// Moves the clock to each slot of the check up to `to` (and to `extra`
/// instants on the way), waiting for each probe to be taken.
fn step(
    hand: &continuity::clock::ManualClock,
    addr: SocketAddr,
    to: Timestamp,
    extra: &[Timestamp],
) {
    let mut instants: Vec<Timestamp> = std::iter::successors(
        Some(
            hand.now().round(jiff::Unit::Minute).unwrap() - SignedDuration::from_mins(10) + OFFSET,
        ),
        |t| Some(*t + SignedDuration::from_mins(5)),
    )
    .filter(|t| *t > hand.now())
    .take_while(|t| *t <= to)
    .chain(
        extra
            .iter()
            .copied()
            .filter(|t| *t > hand.now() && *t <= to),
    )
    .collect();
    instants.sort();
    for t in instants {
        hand.set(t);
        applied(addr, t);
    }
}

#[test]
fn cutover_alerts_reach_alertmanager_with_phase_from_and_to_on_the_manual_clock() {
    // The old portal keeps answering; the new one fails from the window's
    // start until 02:20, 20 minutes after the window's end.
    let (old_down, new_down, to_new) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let old = portal(Duration::ZERO, old_down);
    let new = portal(Duration::ZERO, new_down.clone());
    let front = front(old, new, to_new.clone());
    let (am, got) = alert_sink();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    let yaml = config(front)
        .replace(
            "        http: {",
            &format!(
                "        http: {{ compare_with: \"http://{old}/\", compare: {{ status: true }}, "
            ),
        )
        .replace(
            "services:",
            &format!(
                "alerting:\n  alertmanagers: [\"http://{am}\"]\n  resend_interval: 1s\nservices:"
            ),
        );
    std::fs::write(&cfg, yaml).unwrap();
    let (clock, hand) = Clock::manual(ts("2026-03-10T21:30:00+01:00"));
    let daemon = InProcess::start_on_clock(&cfg, clock);
    let addr = daemon.addr;

    step(&hand, addr, ts("2026-03-10T21:59:59+01:00"), &[]);
    to_new.store(true, Ordering::SeqCst);
    // Ten minutes after the window: the new supplier is down while the old
    // portal answers, so NewSupplierRegression fires; the grace (15 min)
    // has not run out, so CutoverOverrun does not. The sink's newest batch
    // comes from a round at a time between the window's end and now.
    step(
        &hand,
        addr,
        ts("2026-03-11T02:10:23.5+01:00"),
        &[ts(CUTOVER_END)],
    );
    let regression = wait_until("NewSupplierRegression", Duration::from_secs(15), || {
        posted(&got, "NewSupplierRegression").filter(|a| !a.is_empty())
    });
    assert_eq!(posted(&got, "CutoverOverrun"), Some(vec![]));
    let labels = &regression[0]["labels"];
    assert_eq!(
        (
            &labels["service"],
            &labels["phase"],
            &labels["from"],
            &labels["to"]
        ),
        (
            &Value::from("citizen-portal"),
            &Value::from("hypercare"),
            &Value::from("in-house"),
            &Value::from("northhost")
        ),
        "{regression:?}"
    );

    // Past the grace: CutoverOverrun, from the instant the grace ran out.
    step(&hand, addr, ts("2026-03-11T02:15:23.5+01:00"), &[]);
    let overrun = wait_until("CutoverOverrun", Duration::from_secs(15), || {
        posted(&got, "CutoverOverrun").filter(|a| !a.is_empty())
    });
    let labels = &overrun[0]["labels"];
    assert_eq!(
        (
            &labels["phase"],
            &labels["from"],
            &labels["to"],
            &labels["reference"]
        ),
        (
            &Value::from("hypercare"),
            &Value::from("in-house"),
            &Value::from("northhost"),
            &Value::from("CHG-1042")
        ),
        "{overrun:?}"
    );
    assert_eq!(
        ts(overrun[0]["startsAt"].as_str().unwrap()),
        ts("2026-03-11T02:15:00+01:00")
    );

    // The new portal answers from the next probe (02:20:23.5, confirmed up
    // by the one after): both resolve, with an end in the daemon's time,
    // not the real one.
    new_down.store(false, Ordering::SeqCst);
    step(&hand, addr, ts("2026-03-11T02:50:23.5+01:00"), &[]);
    let now = hand.now();
    for name in ["CutoverOverrun", "NewSupplierRegression"] {
        let resolved = wait_until(name, Duration::from_secs(15), || {
            posted(&got, name).filter(|a| {
                !a.is_empty() && a.iter().all(|x| ts(x["endsAt"].as_str().unwrap()) <= now)
            })
        });
        let ended = ts(resolved[0]["endsAt"].as_str().unwrap());
        assert!(
            ended > ts("2026-03-11T02:15:23.5+01:00"),
            "{name} ended at {ended}"
        );
    }
    daemon.stop().expect("a clean stop");
}
