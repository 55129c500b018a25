//! The generated Prometheus rules as Prometheus itself sees them: the files
//! kept in `deploy/` are what `continuity rules` prints today (a stale file
//! fails), `promtool check rules` accepts them, and the `promtool test rules`
//! unit tests in `deploy/prometheus/tests/` pass and cover every alert.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The arguments the kept files are made with (run from the repository's
/// root, as their header says): the example catalogue, two locations.
const ARGS: [&str; 6] = [
    "--config",
    "deploy/continuity.yaml",
    "--locations",
    "2",
    "--quorum",
    "2",
];

/// Every generated file kept in the repository, with its extra flags.
const GENERATED: [(&[&str], &str); 2] = [
    (&[], "deploy/prometheus/rules.yml"),
    (&["--kubernetes"], "deploy/kubernetes/prometheusrule.yaml"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_continuity"))
        .current_dir(root())
        .arg("rules")
        .args(ARGS)
        .args(args)
        // The example catalogue reads a SIP password from the environment;
        // the rules do not depend on it.
        .env("SIP_REGISTRAR_PASSWORD", "unused")
        .output()
        .expect("run continuity rules");
    assert!(
        out.status.success(),
        "continuity rules {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 rules")
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .current_dir(root())
        .args(args)
        .output()
        .expect("promtool is needed for this test: apt-get install --no-install-recommends prometheus (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn unit_test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/prometheus/tests"))
        .expect("deploy/prometheus/tests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn kept_rule_files_are_what_continuity_rules_prints_today() {
    for (args, path) in GENERATED {
        let kept = std::fs::read_to_string(root().join(path)).unwrap_or_default();
        assert!(
            kept == generate(args),
            "{path} is stale: regenerate it with\n  SIP_REGISTRAR_PASSWORD=unused cargo run -- rules {} {} > {path}",
            ARGS.join(" "),
            args.join(" ")
        );
    }
}

#[test]
fn promtool_accepts_the_generated_rules() {
    let (ok, text) = promtool(&["check", "rules", "deploy/prometheus/rules.yml"]);
    assert!(ok, "promtool check rules failed:\n{text}");
}

#[test]
fn promtool_unit_tests_pass_and_cover_every_alert() {
    let files = unit_test_files();
    assert!(
        !files.is_empty(),
        "no unit tests in deploy/prometheus/tests"
    );
    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = promtool(&args);
    assert!(ok, "promtool test rules failed:\n{text}");

    // Each alert is asserted firing somewhere and quiet somewhere.
    let mut seen: Vec<(String, bool)> = Vec::new();
    for f in &files {
        let doc: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(f).expect("read test"))
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for test in doc["tests"].as_array().into_iter().flatten() {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                seen.push((case["alertname"].as_str().unwrap_or("").to_string(), fires));
            }
        }
    }
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules.yml")).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        for fires in [true, false] {
            assert!(
                seen.iter().any(|(a, f)| a == alert && *f == fires),
                "no promtool test where {alert} {}",
                if fires { "fires" } else { "stays quiet" }
            );
        }
    }
}
