//! Configuration errors, one fixture file per error, each matched against
//! the message a person would read: `file:line:column: what (how to fix)`.

use std::path::Path;

use continuity::config::Config;

fn errors_of(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name);
    match Config::load(&path) {
        Ok(_) => panic!("{name} loaded, but it is invalid"),
        Err(e) => e.issues.iter().map(|i| i.to_string()).collect(),
    }
}

fn assert_error(name: &str, place: &str, needle: &str) {
    let errors = errors_of(name);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&format!("{name}:{place}")) && e.contains(needle)),
        "{name}: expected an error at {place} containing {needle:?}, got:\n{}",
        errors.join("\n")
    );
}

#[test]
fn unknown_field_names_the_closest_known_one() {
    assert_error(
        "invalid-unknown-field.yaml",
        "5:9",
        "unknown field 'timout' (did you mean 'timeout'?)",
    );
}

#[test]
fn url_that_does_not_parse_is_rejected() {
    assert_error("invalid-url.yaml", "6:", "url");
}

#[test]
fn zero_interval_is_rejected() {
    assert_error(
        "invalid-zero-interval.yaml",
        "5:19",
        "interval must be longer than zero",
    );
}

#[test]
fn negative_interval_is_rejected() {
    assert_error("invalid-negative-interval.yaml", "2:", "negative");
}

#[test]
fn timeout_longer_than_interval_is_rejected() {
    assert_error(
        "invalid-timeout-longer-than-interval.yaml",
        "6:18",
        "timeout 30s is longer than its interval 10s",
    );
}

#[test]
fn duplicate_service_ids_are_rejected() {
    assert_error(
        "invalid-duplicate-service.yaml",
        "7:5",
        "duplicate service id 'citizen-portal' (first defined at",
    );
}

#[test]
fn duplicate_check_ids_are_rejected() {
    assert_error(
        "invalid-duplicate-check.yaml",
        "7:13",
        "duplicate check id 'homepage'",
    );
}

#[test]
fn empty_checks_list_is_rejected() {
    assert_error("invalid-empty-checks.yaml", "3:13", "empty checks list");
}

#[test]
fn two_kind_blocks_are_rejected() {
    assert_error(
        "invalid-two-kinds.yaml",
        "8:",
        "has 2 kind blocks (http, tcp)",
    );
}

#[test]
fn missing_kind_block_is_rejected() {
    assert_error(
        "invalid-no-kind.yaml",
        "4:9",
        "has no kind block (add exactly one of http, tcp, tls, dns, icmp or sip)",
    );
}

#[test]
fn duration_without_known_unit_is_rejected() {
    assert_error("invalid-duration-unit.yaml", "2:", "unknown unit");
}

#[test]
fn sla_with_unknown_calendar_suggests_the_right_one() {
    assert_error(
        "invalid-unknown-calendar.yaml",
        "7:9",
        "unknown calendar 'ofice-hours' (did you mean 'office-hours'?)",
    );
}

#[test]
fn unset_environment_variable_is_reported_where_it_is_used() {
    assert_error(
        "invalid-env-unset.yaml",
        "6:23",
        "environment variable CONTINUITY_TEST_UNSET_HOST is not set",
    );
}

#[test]
fn maintenance_without_scope_is_rejected() {
    assert_error(
        "invalid-maintenance-no-scope.yaml",
        "2:",
        "has no scope (add one of service:, category:, supplier:, or all: true)",
    );
}

#[test]
fn include_matching_nothing_is_rejected() {
    assert_error("invalid-include-missing.yaml", "1:", "matches no file");
}

#[test]
fn broken_yaml_is_reported_with_its_place() {
    let errors = errors_of("invalid-yaml-syntax.yaml");
    assert!(
        errors[0].contains("invalid-yaml-syntax.yaml:"),
        "{errors:?}"
    );
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.yaml");
    std::fs::write(
        &path,
        "services:\n  - id: a\n    checks: []\n  - id: b\n    checks:\n      - id: x\n        interval: 0s\n        http:\n          url: http://127.0.0.1/\n",
    )
    .unwrap();
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.issues.len(), 2, "{err}");
}

#[test]
fn catalogue_files_are_included_relative_to_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("probes")).unwrap();
    std::fs::write(
        dir.path().join("probes/portals.yaml"),
        "services:\n  - id: website\n    checks:\n      - id: home\n        http:\n          url: https://www.example.org/\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("probes/network.yaml"),
        "services:\n  - id: dns\n    category: network\n    checks:\n      - id: a\n        tcp:\n          target: 127.0.0.1:53\n",
    )
    .unwrap();
    let main = dir.path().join("continuity.yaml");
    std::fs::write(&main, "include: [probes/*.yaml]\n").unwrap();
    let cfg = Config::load(&main).unwrap();
    assert_eq!(cfg.services.len(), 2);
    assert_eq!(cfg.files.len(), 3);
    // An error in an included file names that file.
    std::fs::write(
        dir.path().join("probes/network.yaml"),
        "services:\n  - id: dns\n    checks:\n      - id: a\n        tcp:\n          target: 127.0.0.1:53\n          sned: x\n",
    )
    .unwrap();
    let err = Config::load(&main).unwrap_err().to_string();
    assert!(
        err.contains("probes/network.yaml:7:11: unknown field 'sned' (did you mean 'send'?)"),
        "{err}"
    );
}

#[test]
fn shipped_example_configuration_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args(["check", "--config"])
        .arg(root.join("deploy/continuity.yaml"))
        // The example takes the registrar's password from the environment.
        .env("SIP_REGISTRAR_PASSWORD", "example-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(
        stdout.contains("sip"),
        "the example catalogue has phone lines: {stdout}"
    );
}

#[test]
fn check_command_lists_every_error_and_fails() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args(["check", "--config"])
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/config/invalid-duplicate-check.yaml"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("duplicate check id 'homepage'"), "{stderr}");
}

#[test]
fn zero_worker_threads_is_refused_with_the_allowed_range() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args(["--worker-threads", "0", "check", "--config", "none.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--worker-threads"), "{stderr}");
    assert!(stderr.contains("1..=256"), "{stderr}");
}

#[test]
fn migration_from_that_is_not_the_previous_to_is_refused_with_the_fix() {
    assert_error(
        "invalid-migration-from.yaml",
        "8:15",
        "each from is the previous to: write from: northhost",
    );
}

#[test]
fn cutover_windows_out_of_order_are_refused_at_the_later_start() {
    assert_error(
        "invalid-migration-order.yaml",
        "9:27",
        "before the previous cutover CHG-1042 ends",
    );
}

#[test]
fn cutover_that_ends_before_it_starts_is_refused() {
    assert_error(
        "invalid-migration-window.yaml",
        "6:57",
        "not after its start",
    );
    assert_error(
        "invalid-migration-window.yaml",
        "7:18",
        "hypercare must be longer than zero",
    );
}

#[test]
fn service_supplier_outside_its_timeline_is_refused() {
    assert_error(
        "invalid-migration-supplier.yaml",
        "5:7",
        "write supplier: in-house",
    );
}

#[test]
fn unknown_migration_field_names_the_closest_known_one() {
    assert_error(
        "invalid-migration-unknown-field.yaml",
        "9:",
        "did you mean 'cutover_grace'?",
    );
}

#[test]
fn the_migration_of_the_issue_loads_with_its_defaults_and_cutover_maintenance() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid-migration.yaml");
    let config = Config::load(&path).expect("the issue's example loads");
    let s = &config.services[0];
    assert_eq!(s.supplier, "in-house");
    let m = &s.migrations[0];
    assert_eq!((m.from.as_str(), m.to.as_str()), ("in-house", "northhost"));
    assert_eq!(m.cutover.start.to_string(), "2026-12-05T21:00:00Z");
    assert_eq!(m.cutover.end.to_string(), "2026-12-06T05:00:00Z");
    assert_eq!(m.hypercare.as_secs(), 28 * 86400);
    assert_eq!(m.cutover_grace.as_secs(), 15 * 60);
    assert_eq!(m.baseline.as_secs(), 28 * 86400);
    assert_eq!(m.parity_for.as_secs(), 15 * 60);
    assert!(!m.cutover_counts);
    let northhost = &config.suppliers["northhost"];
    assert_eq!(northhost.name, "NorthHost B.V.");
    assert_eq!(northhost.lot.as_deref(), Some("Hosting"));
    // The window is excluded maintenance of the service, with its ticket.
    let window = config
        .maintenances
        .iter()
        .find(|w| w.reference == "CHG-1042")
        .expect("the cutover is a maintenance window");
    assert_eq!(
        window.effect,
        continuity::config::schedule::MaintenanceEffect::Exclude
    );
    assert_eq!(window.service.as_deref(), Some("citizen-portal"));
}

#[test]
fn unknown_metrics_detail_names_the_choices_at_its_place() {
    let errors = errors_of("invalid-metrics-detail.yaml");
    let all = errors.join("\n");
    assert!(all.contains("invalid-metrics-detail.yaml:2:"), "{all}");
    assert!(all.contains("compakt") && all.contains("compact"), "{all}");
}
