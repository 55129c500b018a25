//! The public status page of a running daemon (in-process, on a port of
//! its own), its Atom feed and badges: what citizens see, in Dutch and
//! English, what the configuration hides or reveals, that hostile names
//! stay text, and that headless Chromium renders it without a console
//! error.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use continuity::store::{
    BatchStore, IncidentRecord, ServiceTransitionRecord, SqliteStore, WriteOp,
};
use jiff::{SignedDuration, Timestamp};

mod support;
use support::daemon::{InProcess, request, wait_for};

const HOSTILE: &str = "<script>alert(1)</script> \"quoted\" & 'single' مرحبا بالعالم";

/// A port nothing listens on: connecting is refused.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

/// A configuration of four services (one down, one with a hostile name,
/// one with a name of 10,000 characters), a store seeded with a week of
/// history and an incident, and `page` as the `status_page:` section.
fn setup(page: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let web = support::welcome_target();
    let closed = closed_port();
    let long_name = format!("שירות {}", "lang".repeat(2499));
    assert!(long_name.chars().count() >= 10_000);
    let now = Timestamp::now();
    let soon = now + SignedDuration::from_hours(48);
    let config = dir.path().join("continuity.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server:
  listen: 127.0.0.1:0
store:
  path: continuity.db
defaults:
  interval: 1s
  timeout: 500ms
  failure_threshold: 1
  success_threshold: 1
maintenances:
  - reference: CHG-2026-0142
    description: Vervanging van de netwerkswitch
    service: parkeren
    start: "{soon}"
    end: "{soon_end}"
{page}
services:
  - id: portal
    name: Mijn Gemeente
    category: Loket
    supplier: Acme Hosting
    labels: {{ team: burgerzaken }}
    slas:
      - {{ name: altijd, objective: 99.5, calendar: 24x7 }}
    checks:
      - id: home
        http:
          url: http://{web}/
  - id: parkeren
    name: Parkeervergunning
    category: Parkeren
    supplier: Acme Hosting
    checks:
      - id: balie
        tcp: {{ target: "127.0.0.1:{closed}" }}
  - id: hostile
    name: {hostile}
    category: {hostile}
    supplier: {hostile}
    labels: {{ note: {hostile} }}
    checks:
      - id: home
        http:
          url: http://{web}/
  - id: lang
    name: {long}
    category: Loket
    checks:
      - id: home
        http:
          url: http://{web}/
"#,
            soon_end = soon + SignedDuration::from_hours(2),
            hostile = yaml_str(HOSTILE),
            long = yaml_str(&long_name),
        ),
    )
    .unwrap();
    seed(&dir.path().join("continuity.db"), now);
    Setup { _dir: dir, config }
}

/// Portal's last week: up, and down for an hour two days ago (an
/// incident whose error text names an internal address).
fn seed(db: &Path, now: Timestamp) {
    let store = SqliteStore::open(db).unwrap();
    // Noon two days ago, local time: the hour down falls in one day.
    let noon = now
        .in_tz("Europe/Amsterdam")
        .unwrap()
        .date()
        .checked_sub(jiff::Span::new().days(2))
        .unwrap()
        .at(12, 0, 0, 0)
        .in_tz("Europe/Amsterdam")
        .unwrap()
        .timestamp();
    let (down, up) = (noon, noon + SignedDuration::from_hours(1));
    let transition = |at: Timestamp, state: &str| {
        WriteOp::ServiceTransition(ServiceTransitionRecord {
            service: "portal".into(),
            at,
            state: state.into(),
            cause: None,
        })
    };
    store
        .write_batch(&[
            transition(now - SignedDuration::from_hours(24 * 7), "up"),
            transition(down, "down"),
            transition(up, "up"),
            WriteOp::Incident(IncidentRecord {
                id: 0,
                service: "portal".into(),
                started_at: down,
                ended_at: Some(up),
                cause: serde_json::json!([{
                    "check": "home", "critical": true, "state": "down", "slow": false,
                    "failure": {"at": down.to_string(), "reason": "refused",
                                "detail": "connection refused by 10.20.30.40:443"}
                }]),
                evidence: Vec::new(),
            }),
        ])
        .unwrap();
}

fn get(daemon: &InProcess, path: &str) -> (u16, String) {
    request(daemon.addr, "GET", path, None, "")
}

fn started(setup: &Setup) -> InProcess {
    let daemon = InProcess::start(&setup.config);
    wait_for(
        "every service measured, parkeren down",
        Duration::from_secs(15),
        || {
            let (_, body) = get(&daemon, "/api/v1/status");
            !body.contains(r#""state":"unknown""#)
            && body.contains(r#""id":"parkeren","name":"Parkeervergunning","category":"Parkeren","supplier":"Acme Hosting","state":"down""#)
            && body.contains(r#""id":"portal","name":"Mijn Gemeente","category":"Loket","supplier":"Acme Hosting","state":"up""#)
        },
    );
    daemon
}

#[test]
fn the_page_shows_every_service_by_category_with_incidents_maintenance_and_90_days() {
    let setup = setup("");
    let daemon = started(&setup);
    let (code, page) = get(&daemon, "/");
    assert_eq!(code, 200, "{page}");
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for text in [
        r#"<html lang="nl">"#,
        "<title>Status van onze dienstverlening</title>",
        r#"<meta http-equiv="refresh" content="60">"#,
        "<h3 id=\"cat-1\"><bdi>Loket</bdi></h3>",
        "<bdi>Parkeren</bdi>",
        "<bdi class=\"name\">Mijn Gemeente</bdi>",
        "Leverancier: <bdi>Acme Hosting</bdi>",
        "team: burgerzaken",
        "<bdi>balie</bdi>: storing",
        "Storing bij 1 van de 4 diensten.",
        "Actuele storingen",
        "Vervanging van de netwerkswitch",
        "Gepland onderhoud",
        "Storingen in de afgelopen 30 dagen",
        "1 u 00 min",
        r#"<th scope="col">Dienst</th>"#,
    ] {
        assert!(page.contains(text), "missing {text:?}");
    }
    // Parkeren is the one active incident, with its start.
    let active = section(&page, "h-active");
    assert!(
        active.contains("Parkeervergunning") && active.contains("sinds"),
        "{active}"
    );
    assert!(!active.contains("Mijn Gemeente"), "{active}");
    // 90 cells per service, each with a title; portal's outage day shows.
    assert_eq!(page.matches("<use href=").count(), 4 * 90 + 6);
    assert!(
        page.contains("1 u 00 min storing</title>"),
        "no outage day in a bar"
    );
    assert!(page.contains("aria-label=\"Beschikbaarheid per dag in de afgelopen 90 dagen"));
    // The incident history names the failing check, not its error text.
    let history = section(&page, "h-history");
    assert!(
        history.contains("Mijn Gemeente") && history.contains("<bdi>home</bdi>"),
        "{history}"
    );
    // Internal details stay internal.
    for secret in [
        "10.20.30.40",
        "127.0.0.1",
        "refused",
        "CHG-2026-0142",
        "http://",
    ] {
        assert!(!page.contains(secret), "the page shows {secret:?}");
    }

    let (code, en) = get(&daemon, "/status?lang=en");
    assert_eq!(code, 200);
    for text in [
        r#"<html lang="en">"#,
        "Status of our services",
        "Operational",
        "Outage at 1 of 4 services.",
        "Outages in the last 30 days",
    ] {
        assert!(en.contains(text), "missing {text:?}");
    }
    let (code, body) = get(&daemon, "/?lang=de");
    assert_eq!(code, 400);
    assert!(body.contains("use nl (Dutch) or en (English)"), "{body}");
    let (code, body) = get(&daemon, "/api/v1/status");
    assert_eq!(code, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
}

#[test]
fn hostile_names_render_as_text_everywhere() {
    let setup = setup(&format!(
        "status_page:\n  title: {t}\n  intro: {t}\n  show: [errors, references]\n",
        t = yaml_str(HOSTILE)
    ));
    let daemon = started(&setup);
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62; &#34;quoted&#34; &#38; &#39;single&#39; مرحبا بالعالم";
    let (_, page) = get(&daemon, "/");
    let (_, feed) = get(&daemon, "/feed.atom");
    for body in [&page, &feed] {
        assert!(!body.contains("<script"), "raw markup in {body}");
    }
    assert!(page.contains(escaped), "escaped name missing");
    assert!(page.contains(&format!("<title>{escaped}</title>")));
    // Right-to-left names are isolated, so they cannot reorder the text
    // around them; a name of 10,000 characters is shown whole.
    assert!(page.contains(&format!("<bdi class=\"name\">{escaped}</bdi>")));
    assert!(page.contains(&format!(
        "<bdi class=\"name\">שירות {}</bdi>",
        "lang".repeat(2499)
    )));
    well_formed(&feed);
    let (code, badge) = get(&daemon, "/badge/hostile.svg");
    assert_eq!(code, 200);
    assert!(!badge.contains("<script"), "{badge}");
    well_formed(&badge);
    let (code, long) = get(&daemon, "/badge/lang.svg");
    assert_eq!(code, 200);
    assert!(long.contains("…") && long.len() < 4000, "{long}");
    // Asked to, the page shows error texts and change references.
    assert!(page.contains("10.20.30.40") && page.contains("CHG-2026-0142"));
}

#[test]
fn hide_leaves_out_labels_suppliers_checks_and_hidden_services() {
    let setup = setup(
        "status_page:\n  hide: [labels, suppliers, checks]\n  hide_services: [parkeren]\n  title: Storingen\n  intro: Welkom bij de gemeente.\n",
    );
    let daemon = started(&setup);
    let (_, page) = get(&daemon, "/");
    assert!(page.contains("<h1>Storingen</h1>") && page.contains("Welkom bij de gemeente."));
    for hidden in [
        "Acme Hosting",
        "burgerzaken",
        "Leverancier",
        "<bdi>home</bdi>",
        "Parkeervergunning",
        "Vervanging van de netwerkswitch",
    ] {
        assert!(!page.contains(hidden), "the page shows {hidden:?}");
    }
    assert!(
        page.contains("Alle diensten werken."),
        "a hidden service counts"
    );
    assert_eq!(get(&daemon, "/badge/parkeren.svg").0, 404);
    let (_, feed) = get(&daemon, "/feed.atom");
    assert!(
        !feed.contains("Parkeervergunning") && !feed.contains("home"),
        "{feed}"
    );
}

#[test]
fn the_feed_is_atom_with_incidents_and_maintenance() {
    let setup = setup("");
    let daemon = started(&setup);
    let (code, feed) = get(&daemon, "/feed.atom");
    assert_eq!(code, 200);
    well_formed(&feed);
    assert!(feed.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    assert!(feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"nl\">"));
    assert!(
        feed.contains("<title>Storing verholpen: Mijn Gemeente</title>"),
        "{feed}"
    );
    assert!(
        feed.contains("<title>Gepland onderhoud: Parkeervergunning</title>"),
        "{feed}"
    );
    assert!(feed.contains("<id>urn:uuid:"));
    assert_eq!(
        feed.matches("<entry>").count(),
        feed.matches("<updated>").count() - 1
    );
    assert!(!feed.contains("10.20.30.40") && !feed.contains("CHG-2026-0142"));
    let (_, en) = get(&daemon, "/feed.atom?lang=en");
    assert!(
        en.contains("<title>Outage resolved: Mijn Gemeente</title>"),
        "{en}"
    );
}

#[test]
fn a_badge_shows_state_and_30_days_and_an_unknown_service_is_404() {
    let setup = setup("");
    let daemon = started(&setup);
    let (code, badge) = get(&daemon, "/badge/portal.svg");
    assert_eq!(code, 200);
    well_formed(&badge);
    assert!(badge.contains("<title>Mijn Gemeente: werkt · "), "{badge}");
    assert!(badge.contains(" % (30 d)"), "{badge}");
    let (_, en) = get(&daemon, "/badge/parkeren.svg?lang=en");
    assert!(en.contains("Parkeervergunning: outage"), "{en}");
    for path in ["/badge/nope.svg", "/badge/portal", "/badge/portal.png"] {
        let (code, body) = get(&daemon, path);
        assert_eq!(code, 404, "{path}");
        assert!(body.contains("onbekende dienst"), "{body}");
    }
}

#[test]
fn a_disabled_page_answers_404_and_the_json_stays() {
    let setup = setup("status_page:\n  enabled: false\n");
    let daemon = started(&setup);
    for path in ["/", "/status", "/feed.atom", "/badge/portal.svg"] {
        assert_eq!(get(&daemon, path).0, 404, "{path}");
    }
    assert_eq!(get(&daemon, "/api/v1/status").0, 200);
}

#[test]
fn chromium_renders_the_page_without_console_errors() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "skipped: chromium is not installed and we are not root to install it (apt-get install chromium)"
        );
        return;
    };
    let setup = setup("");
    let daemon = started(&setup);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (lang, texts) in [
        (
            "nl",
            [
                "Actuele storingen",
                "Parkeervergunning",
                "Storing bij 1 van de 4 diensten.",
            ],
        ),
        (
            "en",
            [
                "Current outages",
                "Parkeervergunning",
                "Outage at 1 of 4 services.",
            ],
        ),
    ] {
        let url = format!("http://{}/?lang={lang}", daemon.addr);
        let profile = tempfile::tempdir().unwrap();
        let shot = artifacts.join(format!("status-{lang}.png"));
        let out = Command::new(&chromium)
            .args(browser_args(profile.path()))
            .arg("--window-size=1280,2400")
            .arg(format!("--screenshot={}", shot.display()))
            .arg(&url)
            .output()
            .expect("run chromium");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(shot.exists(), "no screenshot; chromium said:\n{log}");
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(&chromium)
            .args(browser_args(profile.path()))
            .arg("--dump-dom")
            .arg(&url)
            .output()
            .expect("run chromium");
        let dom = String::from_utf8_lossy(&out.stdout);
        let log = String::from_utf8_lossy(&out.stderr);
        for text in texts {
            assert!(
                dom.contains(text),
                "{lang}: {text:?} not in the rendered page"
            );
        }
        let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
        assert!(
            console.is_empty(),
            "{lang}: console messages:\n{}",
            console.join("\n")
        );
    }
}

fn browser_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Chromium, installed first when missing and we may (as root).
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return Some(p);
    }
    if !support::running_as_root() {
        return None;
    }
    let installed = Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed,
        "installing chromium failed (scripts/test installs it)"
    );
    find()
}

/// The part of the page under the heading with id `id`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("id=\"{id}\"")).expect("section");
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// A small well-formedness check of XML: every tag closed in order,
/// attributes quoted, `&` only in references. `xmllint` is used as well
/// when it is installed.
fn well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        .unwrap_or(xml);
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(['<', '&']) {
        check_text(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('&') {
            let end = rest.find(';').expect("an unterminated reference");
            let name = &rest[1..end];
            assert!(
                ["lt", "gt", "amp", "quot", "apos"].contains(&name)
                    || name.strip_prefix('#').is_some_and(|n| {
                        n.parse::<u32>().is_ok()
                            || n.strip_prefix('x')
                                .is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                    }),
                "bad reference &{name};"
            );
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').expect("an unterminated tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().expect("a tag name");
        let attrs = &tag[name.len()..];
        check_attributes(attrs);
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    if let Ok(out) = Command::new("xmllint")
        .args(["--noout", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(xml.as_bytes())?;
            c.wait_with_output()
        })
    {
        assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn check_text(text: &str) {
    assert!(!text.contains('>') || text.trim().is_empty() || !text.contains("]]>"));
    assert!(
        !text.chars().any(|c| c < ' ' && !"\t\n\r".contains(c)),
        "a control character in {text:?}"
    );
}

fn check_attributes(mut attrs: &str) {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return;
        }
        let eq = attrs
            .find('=')
            .unwrap_or_else(|| panic!("attribute without value: {attrs}"));
        let value = &attrs[eq + 1..];
        let quote = value.chars().next().expect("a value");
        assert!(quote == '"' || quote == '\'', "unquoted attribute: {attrs}");
        let close = value[1..].find(quote).expect("an unterminated value");
        let v = &value[1..close + 1];
        assert!(!v.contains('<'), "'<' in an attribute: {v}");
        assert!(
            !v.contains('&') || v.split('&').skip(1).all(|p| p.contains(';')),
            "a bare '&' in an attribute: {v}"
        );
        attrs = &value[close + 2..];
    }
}
