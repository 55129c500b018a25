//! What each check costs Prometheus, measured from a real scrape: the daemon
//! runs one check of each network kind against local servers, healthy and
//! failing, in both `metrics.detail` modes, and the series each check
//! exports are counted. The counts are the table in docs/metrics.md
//! ("Prometheus cost"); a change to the exposition that changes them fails
//! here until the table is updated.

use std::collections::BTreeMap;
use std::time::Duration;

mod support;
use support::daemon::{InProcess, get, wait_for};
use support::{
    DnsMode, TestCa, Validity, closed_port, dns_server, http_server, https_server, portal,
    tls_server,
};

/// (check id, series in full detail, series in compact detail), as
/// documented in docs/metrics.md.
const EXPECTED: [(&str, usize, usize); 10] = [
    ("dns-down", 21, 9),
    ("dns-ok", 20, 8),
    ("http-down", 22, 10),
    ("http-ok", 24, 12),
    ("http-status", 25, 13),
    ("https-ok", 26, 14),
    ("tcp-down", 22, 10),
    ("tcp-ok", 21, 9),
    ("tls-down", 22, 10),
    ("tls-ok", 23, 11),
];

fn catalogue(detail: &str, dir: &std::path::Path, targets: &BTreeMap<&str, String>) -> String {
    let mut yaml = format!(
        "server:\n  listen: 127.0.0.1:0\nstore:\n  path: {}\nmetrics:\n  detail: {detail}\ndefaults:\n  interval: 1s\n  timeout: 700ms\nservices:\n  - id: cost\n    checks:\n",
        dir.join(format!("{detail}.db")).display()
    );
    for (id, kind) in targets {
        yaml.push_str(&format!("      - id: {id}\n        {kind}\n"));
    }
    yaml
}

/// Series per check in one scrape, by check id.
fn series_per_check(scrape: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in scrape.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.split_once("check=\"").map(|x| x.1)
            && let Some((check, _)) = rest.split_once('"')
        {
            *out.entry(check.to_string()).or_default() += 1;
        }
    }
    out
}

#[test]
fn series_per_check_kind_match_the_documented_cost_in_both_modes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cost CA");
    let ca_file = ca.write_pem(dir.path());
    let cert = ca.leaf(&["localhost"], Validity::Current);
    let (web, secure, tls, down, dns_ok, dns_silent) = rt.block_on(async {
        (
            http_server(portal()).await,
            https_server(portal(), &cert).await,
            tls_server(&cert).await,
            closed_port().await,
            dns_server(DnsMode::Normal).await,
            dns_server(DnsMode::Silent).await,
        )
    });
    let ca = ca_file.display();
    let mut targets = BTreeMap::new();
    targets.insert("http-ok", format!("http: {{ url: \"{}\" }}", web.url("/")));
    targets.insert("http-down", format!("http: {{ url: \"http://{down}/\" }}"));
    targets.insert(
        "http-status",
        format!("http: {{ url: \"{}\" }}", web.url("/error")),
    );
    targets.insert(
        "https-ok",
        format!(
            "http: {{ url: \"{}\", ca_file: \"{ca}\" }}",
            secure.url("/")
        ),
    );
    targets.insert("tcp-ok", format!("tcp: {{ target: \"{}\" }}", web.addr));
    targets.insert("tcp-down", format!("tcp: {{ target: \"{down}\" }}"));
    targets.insert(
        "tls-ok",
        format!(
            "tls: {{ target: \"localhost:{}\", ca_file: \"{ca}\" }}",
            tls.port()
        ),
    );
    targets.insert("tls-down", format!("tls: {{ target: \"{down}\" }}"));
    targets.insert(
        "dns-ok",
        format!("dns: {{ name: portal.gemeente.nl, server: \"{dns_ok}\" }}"),
    );
    targets.insert(
        "dns-down",
        format!("dns: {{ name: portal.gemeente.nl, server: \"{dns_silent}\" }}"),
    );

    let mut measured = Vec::new();
    for detail in ["full", "compact"] {
        let cfg = dir.path().join(format!("{detail}.yaml"));
        std::fs::write(&cfg, catalogue(detail, dir.path(), &targets)).unwrap();
        let daemon = InProcess::start(&cfg);
        // Two probes of each: the counters of both results and the reasons
        // of the failing ones are there.
        let mut scrape = String::new();
        wait_for("two probes of every check", Duration::from_secs(20), || {
            scrape = get(daemon.addr, "/metrics").unwrap_or_default();
            let done = scrape
                .lines()
                .filter(|l| l.starts_with("continuity_probes_total{"))
                .filter(|l| l.contains("check=\""))
                .collect::<Vec<_>>();
            targets.keys().all(|id| {
                let total: f64 = done
                    .iter()
                    .filter(|l| l.contains(&format!("check=\"{id}\"")))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum();
                total >= 2.0
            })
        });
        measured.push((detail, series_per_check(&scrape), scrape.len()));
        daemon.stop().unwrap();
    }
    let (full, compact) = (&measured[0].1, &measured[1].1);
    let mut table = String::from("check | full | compact\n");
    for id in targets.keys() {
        table.push_str(&format!("{id} | {} | {}\n", full[*id], compact[*id]));
    }
    eprintln!(
        "{table}scrape bytes: full {}, compact {}",
        measured[0].2, measured[1].2
    );
    for (id, f, c) in EXPECTED {
        assert_eq!(
            (full[id], compact[id]),
            (f, c),
            "series of {id} (full, compact) differ from docs/metrics.md:\n{table}"
        );
    }
}
