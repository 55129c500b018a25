//! The configuration: a main YAML file plus included catalogue files,
//! loaded strictly (unknown fields are errors) and validated whole, so that
//! a bad file is rejected with every problem listed at `file:line:column`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use sha2::{Digest, Sha256};

pub mod duration;
pub mod error;
pub mod expand;
pub mod files;
pub mod metrics;
pub mod migration;
pub mod reports;
pub mod schedule;
pub mod server;
pub mod server_tls;
pub mod spanned;
pub mod status_page;

pub use spanned::{Location, Spanned};

pub use duration::Dur;
pub use error::{ConfigError, ConfigIssue, Place, Validator, closest};
pub use expand::Secret;
pub use schedule::{CalendarSpec, MaintenanceSpec, SlaSpec};

use crate::probe;

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// Name of this monitor instance (inside the network, outside it, at a
    /// supplier); becomes the `location` label of alerts.
    pub location: String,
    pub defaults: Defaults,
    pub store: StoreConfig,
    pub calendars: BTreeMap<String, CalendarSpec>,
    pub maintenances: Vec<MaintenanceSpec>,
    /// `suppliers:`, by id; a supplier a service names but this does not
    /// list has only its id.
    pub suppliers: BTreeMap<String, migration::Supplier>,
    pub alerting: crate::alert::config::AlertingSpec,
    pub metrics: metrics::MetricsConfig,
    pub reports: reports::ReportsConfig,
    pub services: Vec<Arc<Service>>,
    pub status_page: status_page::StatusPageConfig,
    /// Every file the configuration was read from, main file first.
    pub files: Vec<PathBuf>,
    /// SHA-256 over the contents of every file, to put recomputations and
    /// reports on record against the exact configuration used.
    pub digest: String,
    /// What this configuration was loaded with, for reloads.
    pub options: LoadOptions,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Bearer token guarding write endpoints (`/api/v1/maintenances`).
    pub api_token: Option<Secret>,
    /// Base URL people use to reach this monitor, for links in alerts.
    pub external_url: Option<String>,
    /// Connection cap, timeouts, body size, shutdown bound, reload endpoint.
    pub limits: server::ServerLimits,
    /// HTTPS on our endpoints (`server.tls`).
    pub tls: Option<server_tls::ServerTls>,
    /// Credentials for `/metrics` and `/api/*` (`server.read_auth`).
    pub read_auth: Option<server_tls::ReadAuth>,
}

#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// Upper bound on probes running at once.
    pub max_concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub retention: Duration,
    pub rollup_retention: Duration,
}

/// A citizen-facing service and the checks that tell whether it works.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub category: String,
    pub supplier: String,
    pub labels: BTreeMap<String, String>,
    pub runbook_url: Option<String>,
    pub slas: Vec<SlaSpec>,
    pub checks: Vec<Arc<Check>>,
    /// The supplier timeline (`migration:`), in time order; empty for a
    /// service that does not move.
    pub migrations: Vec<migration::Migration>,
}

/// One probe of a service, run on its own interval.
#[derive(Debug)]
pub struct Check {
    pub id: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// A critical check down makes the service down; a non-critical one
    /// makes it degraded.
    pub critical: bool,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// Slower than this (but successful) makes the service degraded.
    pub latency_threshold: Option<Duration>,
}

/// Exactly one kind block per check, compiled: what a probe of it runs.
// The SIP probe, the largest by far, is boxed so that the most common
// checks (http) do not each carry its size.
#[derive(Debug)]
pub enum CheckKind {
    Http(probe::http::HttpProbe),
    Tcp(probe::tcp::TcpProbe),
    Tls(probe::tls::TlsProbe),
    Dns(probe::dns::DnsProbe),
    Icmp(probe::icmp::IcmpProbe),
    Sip(Box<probe::sip::SipProbe>),
}

impl CheckKind {
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Tls(_) => "tls",
            CheckKind::Dns(_) => "dns",
            CheckKind::Icmp(_) => "icmp",
            CheckKind::Sip(_) => "sip",
        }
    }
}

/// Two kinds are equal when they were compiled from equal specs: the
/// written spec is the definition, wherever in the file it stands. Only
/// its digest is kept, so this is all a comparison can look at.
impl PartialEq for CheckKind {
    fn eq(&self, other: &Self) -> bool {
        use probe::Prober;
        match (self, other) {
            (CheckKind::Http(a), CheckKind::Http(b)) => a.digest() == b.digest(),
            (CheckKind::Tcp(a), CheckKind::Tcp(b)) => a.digest() == b.digest(),
            (CheckKind::Tls(a), CheckKind::Tls(b)) => a.digest() == b.digest(),
            (CheckKind::Dns(a), CheckKind::Dns(b)) => a.digest() == b.digest(),
            (CheckKind::Icmp(a), CheckKind::Icmp(b)) => a.digest() == b.digest(),
            (CheckKind::Sip(a), CheckKind::Sip(b)) => a.digest() == b.digest(),
            _ => false,
        }
    }
}

/// How a configuration may be loaded, beyond what its files say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Accept a configuration without any service (`--allow-empty`).
    /// Refused otherwise: a file truncated by an editor, or emptied by
    /// mistake, would reload "successfully" and stop every check.
    pub allow_empty: bool,
    /// Variables for `${NAME}` that take precedence over the process
    /// environment (the demo's simulated services' addresses).
    pub env: Vec<(String, String)>,
}

impl Config {
    /// Load and validate a configuration file and everything it includes.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, LoadOptions::default())
    }

    /// [`Config::load`] with options; a reload passes the options the
    /// running configuration was loaded with ([`Config::options`]).
    pub fn load_with(path: &Path, options: LoadOptions) -> Result<Config, ConfigError> {
        Loader {
            options,
            ..Loader::default()
        }
        .load(path)
    }

    /// Parse a configuration from a string, as if read from `name`
    /// (includes are resolved relative to the current directory).
    pub fn from_str(name: &str, text: &str) -> Result<Config, ConfigError> {
        Loader::default().load_text(Path::new(name), text.to_string())
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id).map(|s| &**s)
    }

    /// Every service by id, for code that looks up many of them (a reload
    /// at 10,000 services): [`Config::service`] scans, and a scan per
    /// service is quadratic. Built on demand, so it costs no memory
    /// between reloads.
    pub fn services_by_id(&self) -> std::collections::HashMap<&str, &Service> {
        self.services
            .iter()
            .map(|s| (s.id.as_str(), &**s))
            .collect()
    }

    pub fn check_count(&self) -> usize {
        self.services.iter().map(|s| s.checks.len()).sum()
    }
}

// ---------------------------------------------------------------------------
// The YAML as written. Kept apart from the validated model above so that
// defaults, includes and cross-checks are resolved in one place.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMain {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    defaults: Option<RawDefaults>,
    #[serde(default)]
    store: Option<RawStore>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    calendars: BTreeMap<String, Spanned<CalendarSpec>>,
    #[serde(default)]
    maintenances: Vec<Spanned<MaintenanceSpec>>,
    #[serde(default)]
    alerting: Option<Spanned<crate::alert::config::AlertingSpec>>,
    #[serde(default)]
    suppliers: BTreeMap<String, Spanned<migration::RawSupplier>>,
    metrics: Option<metrics::RawMetrics>,
    reports: Option<Spanned<reports::RawReports>>,
    #[serde(default)]
    services: Box<[Spanned<RawService>]>,
    #[serde(default)]
    status_page: Option<Spanned<status_page::RawStatusPage>>,
}

/// An included catalogue file: services, and the calendars and
/// maintenance windows that belong with them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    calendars: BTreeMap<String, Spanned<CalendarSpec>>,
    #[serde(default)]
    maintenances: Vec<Spanned<MaintenanceSpec>>,
    #[serde(default)]
    suppliers: BTreeMap<String, Spanned<migration::RawSupplier>>,
    #[serde(default)]
    services: Box<[Spanned<RawService>]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    api_token: Option<String>,
    api_token_file: Option<Spanned<String>>,
    external_url: Option<Spanned<String>>,
    max_connections: Option<Spanned<usize>>,
    header_read_timeout: Option<Spanned<Dur>>,
    body_read_timeout: Option<Spanned<Dur>>,
    idle_timeout: Option<Spanned<Dur>>,
    max_request_body_bytes: Option<Spanned<usize>>,
    shutdown_timeout: Option<Spanned<Dur>>,
    enable_reload_endpoint: Option<Spanned<bool>>,
    tls: Option<server_tls::RawServerTls>,
    read_auth: Option<Spanned<server_tls::RawReadAuth>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    failure_threshold: Option<Spanned<u32>>,
    success_threshold: Option<Spanned<u32>>,
    max_concurrency: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<Spanned<String>>,
    retention: Option<Spanned<Dur>>,
    rollup_retention: Option<Spanned<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: Spanned<String>,
    name: Option<String>,
    category: Option<String>,
    supplier: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    runbook_url: Option<Spanned<String>>,
    failure_threshold: Option<Spanned<u32>>,
    success_threshold: Option<Spanned<u32>>,
    #[serde(default)]
    slas: Vec<Spanned<SlaSpec>>,
    /// A boxed slice, not a `Vec`: parsed into a `Vec` and shrunk, so a
    /// service's one check does not hold room for four while the rest of
    /// the file is parsed.
    checks: Option<Spanned<Box<[Spanned<RawCheck>]>>>,
    #[serde(default)]
    migration: Option<Spanned<migration::RawMigrations>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    id: Spanned<String>,
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    critical: Option<bool>,
    failure_threshold: Option<Spanned<u32>>,
    success_threshold: Option<Spanned<u32>>,
    latency_threshold: Option<Spanned<Dur>>,
    // Boxed: a check has one kind block, and the six inline made every
    // parsed check 2.5 kB (25 MB at load for 10,000 checks, kept as RSS).
    http: Option<Box<Spanned<probe::http::HttpSpec>>>,
    tcp: Option<Box<Spanned<probe::tcp::TcpSpec>>>,
    tls: Option<Box<Spanned<probe::tls::TlsSpec>>>,
    dns: Option<Box<Spanned<probe::dns::DnsSpec>>>,
    icmp: Option<Box<Spanned<probe::icmp::IcmpSpec>>>,
    sip: Option<Box<Spanned<probe::sip::SipSpec>>>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
const SERVICE_ID_HINT: &str = "use lowercase letters, digits and '-', e.g. citizen-portal";

/// The services of one file, as parsed, with the file's name.
type FileServices = (Arc<str>, Box<[Spanned<RawService>]>);

#[derive(Default)]
struct Loader {
    options: LoadOptions,
    issues: Vec<ConfigIssue>,
    /// The environment `${NAME}` is expanded from, read once per load.
    env: Option<std::collections::HashMap<String, String>>,
    files: Vec<PathBuf>,
    hasher: Sha256,
}

/// A service together with the file it was read from.
struct Sourced<T> {
    file: Arc<str>,
    item: Spanned<T>,
}

impl Loader {
    fn load(mut self, path: &Path) -> Result<Config, ConfigError> {
        match files::read_text(path) {
            Ok(text) => self.load_text(path, text),
            Err(p) => {
                self.read_problem(path, p);
                Err(ConfigError {
                    issues: self.issues,
                })
            }
        }
    }

    fn read_problem(&mut self, path: &Path, p: files::ReadProblem) {
        self.issues.push(ConfigIssue {
            place: Place {
                file: path.display().to_string().into(),
                line: p.line,
                column: p.column,
            },
            message: p.message,
            hint: Some(p.hint),
        });
    }

    /// Parse one file, expanding `${VAR}` in its values; issues are recorded, `None`
    /// means the file could not be used at all.
    fn parse<T: for<'de> Deserialize<'de>>(&mut self, path: &Path, text: &str) -> Option<T> {
        let file: Arc<str> = path.display().to_string().into();
        self.hasher.update(path.display().to_string().as_bytes());
        self.hasher.update([0]);
        self.hasher.update(text.as_bytes());
        self.hasher.update([0]);
        self.files.push(path.to_path_buf());
        let extra = &self.options.env;
        let env = self
            .env
            .get_or_insert_with(|| {
                let mut env = expand::environment();
                env.extend(extra.iter().cloned());
                env
            })
            .clone();
        match serde_saphyr::from_str_with_options::<T>(text, expand::parse_options(env)) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut issue = yaml_issue(&file, &e);
                if let serde_saphyr::Error::UnresolvedProperty { name, .. } = e.without_snippet() {
                    // The parser places it at the value; point at the reference.
                    issue.place.column =
                        expand::reference_column(text, issue.place.line, issue.place.column, name);
                }
                self.issues.push(issue);
                None
            }
        }
    }

    fn load_text(mut self, path: &Path, text: String) -> Result<Config, ConfigError> {
        let main_file: Arc<str> = path.display().to_string().into();
        let Some(raw) = self.parse::<RawMain>(path, &text) else {
            return Err(ConfigError {
                issues: self.issues,
            });
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut v = Validator::new(main_file.clone());

        let server = self.server(raw.server, &mut v, base);
        let defaults = defaults(raw.defaults, &mut v);
        let metrics = raw.metrics;
        let store = store(raw.store, &mut v, base);
        let location = raw
            .location
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| "default".to_string());

        // Each file's services as parsed: a list of every service with its
        // file beside it was a second copy of the parsed catalogue (3 MB at
        // 10,000 services) at the peak of loading.
        let mut services: Vec<FileServices> = vec![(main_file.clone(), raw.services)];
        let mut calendars: Vec<Sourced<(String, CalendarSpec)>> = Vec::new();
        let mut maintenances: Vec<Sourced<MaintenanceSpec>> = raw
            .maintenances
            .into_iter()
            .map(|item| Sourced {
                file: main_file.clone(),
                item,
            })
            .collect();
        push_calendars(&mut calendars, &main_file, raw.calendars);
        let mut suppliers: Vec<Sourced<BTreeMap<String, Spanned<migration::RawSupplier>>>> =
            vec![Sourced {
                file: main_file.clone(),
                item: Spanned::new(raw.suppliers, Location::UNKNOWN),
            }];

        for pattern in raw.include {
            let full = base.join(&pattern.value);
            let full_s = full.display().to_string();
            let room = files::MAX_FILES.saturating_sub(self.files.len());
            let matched = match files::glob_files(&full, room) {
                Ok(paths) => paths,
                Err(e) => {
                    v.error(
                        pattern.referenced,
                        format!("include '{}': {}", pattern.value, e.message),
                        Some(e.hint),
                    );
                    continue;
                }
            };
            if matched.is_empty() {
                v.error(
                    pattern.referenced,
                    format!(
                        "include '{}' matches no file (looked for {full_s})",
                        pattern.value
                    ),
                    Some("paths are relative to the file that includes them".into()),
                );
            }
            // Only YAML catalogues are read, so that `include: ['/etc/*']`
            // cannot make an error message quote a system file.
            let (matched, foreign): (Vec<_>, Vec<_>) =
                matched.into_iter().partition(|p| is_yaml_name(p));
            if let Some(first) = foreign.first() {
                v.error(
                    pattern.referenced,
                    format!(
                        "include '{}' matches {} file(s) that are not YAML catalogues, e.g. {}",
                        pattern.value,
                        foreign.len(),
                        first.display()
                    ),
                    Some("included files must end in .yaml or .yml: narrow the pattern, e.g. probes/*.yaml".into()),
                );
            }
            for file_path in matched {
                let text = match files::read_text(&file_path) {
                    Ok(t) => t,
                    Err(p) if p.line > 0 => {
                        self.read_problem(&file_path, p);
                        continue;
                    }
                    Err(p) => {
                        v.error(pattern.referenced, p.message, Some(p.hint));
                        continue;
                    }
                };
                let file: Arc<str> = file_path.display().to_string().into();
                if let Some(cat) = self.parse::<RawCatalogue>(&file_path, &text) {
                    services.push((file.clone(), cat.services));
                    maintenances.extend(cat.maintenances.into_iter().map(|item| Sourced {
                        file: file.clone(),
                        item,
                    }));
                    push_calendars(&mut calendars, &file, cat.calendars);
                    suppliers.push(Sourced {
                        file: file.clone(),
                        item: Spanned::new(cat.suppliers, Location::UNKNOWN),
                    });
                }
            }
        }
        self.issues.append(&mut v.issues);

        // Calendars first: SLAs refer to them by name.
        let mut calendar_map = BTreeMap::new();
        for Sourced { file, item } in calendars {
            let mut v = Validator::new(file);
            let (name, mut spec) = item.value;
            if calendar_map.contains_key(&name) {
                v.error(
                    item.referenced,
                    format!("calendar '{name}' is defined twice"),
                    Some("give each calendar a unique name".into()),
                );
            }
            spec.validate(&mut v, item.referenced);
            calendar_map.insert(name, spec);
            self.issues.append(&mut v.issues);
        }

        let mut supplier_map = BTreeMap::new();
        for Sourced { file, item } in suppliers {
            let mut v = Validator::new(file);
            for (id, s) in migration::suppliers(item.value, &mut v) {
                if supplier_map.contains_key(&id) {
                    v.error(
                        Location::UNKNOWN,
                        format!("supplier '{id}' is defined twice"),
                        Some("list each supplier once, in one file".into()),
                    );
                }
                supplier_map.insert(id, s);
            }
            self.issues.append(&mut v.issues);
        }

        let mut out_services = Vec::new();
        let mut seen_ids: BTreeMap<String, Place> = BTreeMap::new();
        let parsed = services
            .into_iter()
            .flat_map(|(file, list)| list.into_iter().map(move |item| (file.clone(), item)));
        for (file, item) in parsed {
            let mut v = Validator::new(file);
            let at = item.referenced;
            let service = service(item.value, at, &defaults, &calendar_map, &mut v);
            if let Some(service) = service {
                let place = v.place(at);
                if let Some(first) = seen_ids.get(&service.id) {
                    v.error(
                        at,
                        format!(
                            "duplicate service id '{}' (first defined at {first})",
                            error::shorten(&service.id, 64)
                        ),
                        Some("service ids must be unique across all included files".into()),
                    );
                } else {
                    seen_ids.insert(service.id.clone(), place);
                }
                out_services.push(Arc::new(service));
            }
            self.issues.append(&mut v.issues);
        }

        let known = KnownNames {
            services: out_services.iter().map(|s| s.id.as_str()).collect(),
            categories: out_services.iter().map(|s| s.category.as_str()).collect(),
            suppliers: out_services
                .iter()
                .flat_map(|s| {
                    std::iter::once(s.supplier.as_str()).chain(
                        s.migrations
                            .iter()
                            .flat_map(|m| [m.from.as_str(), m.to.as_str()]),
                    )
                })
                .chain(supplier_map.keys().map(String::as_str))
                .collect(),
        };
        let mut alerting = crate::alert::config::AlertingSpec::default();
        if let Some(a) = raw.alerting {
            let mut v = Validator::new(main_file.clone());
            alerting = a.value;
            alerting.validate(&mut v, a.referenced, &known);
            self.issues.append(&mut v.issues);
        }
        let has_email = alerting
            .receivers()
            .iter()
            .any(|r| matches!(r.channel, crate::alert::notify::Channel::Email(_)));
        let mut rv = Validator::new(main_file.clone());
        let reports = reports::compile(raw.reports, &mut rv, base, has_email);
        self.issues.append(&mut rv.issues);
        let status_page = {
            let mut v = Validator::new(main_file.clone());
            let page = status_page::compile(raw.status_page, &known, &mut v);
            self.issues.append(&mut v.issues);
            page
        };
        let mut out_maint = migration::cutover_maintenances(
            out_services
                .iter()
                .map(|s| (s.id.as_str(), s.migrations.as_slice())),
        );
        for Sourced { file, item } in maintenances {
            let mut v = Validator::new(file);
            let mut m = item.value;
            m.validate(&mut v, item.referenced, &known);
            out_maint.push(m);
            self.issues.append(&mut v.issues);
        }

        if out_services.is_empty() && self.issues.is_empty() && !self.options.allow_empty {
            self.issues.push(ConfigIssue {
                place: Place {
                    file: main_file.clone(),
                    line: 0,
                    column: 0,
                },
                message: "the configuration defines no service".into(),
                hint: Some(
                    "add services (or include: catalogue files); run with --allow-empty if a monitor without checks is intended"
                        .into(),
                ),
            });
        }
        if !self.issues.is_empty() {
            return Err(ConfigError {
                issues: self.issues,
            });
        }
        Ok(Config {
            options: self.options.clone(),
            server,
            location,
            defaults,
            store,
            calendars: calendar_map,
            maintenances: out_maint,
            suppliers: supplier_map,
            alerting,
            metrics: metrics.into(),
            reports,
            services: out_services,
            status_page,
            files: self.files,
            digest: hex::encode(self.hasher.finalize()),
        })
    }

    fn server(&mut self, raw: Option<RawServer>, v: &mut Validator, base: &Path) -> ServerConfig {
        let raw = raw.unwrap_or_default();
        let limits = server::RawServerLimits {
            max_connections: raw.max_connections,
            header_read_timeout: raw.header_read_timeout,
            body_read_timeout: raw.body_read_timeout,
            idle_timeout: raw.idle_timeout,
            max_request_body_bytes: raw.max_request_body_bytes,
            shutdown_timeout: raw.shutdown_timeout,
            enable_reload_endpoint: raw.enable_reload_endpoint,
        }
        .compile(v);
        let listen = match &raw.listen {
            None => DEFAULT_LISTEN.parse().expect("default listen address"),
            Some(l) => match l.value.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    v.error(
                        l.referenced,
                        format!("listen address '{}' is not host:port", l.value),
                        Some("write an IP and port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464".into()),
                    );
                    DEFAULT_LISTEN.parse().expect("default listen address")
                }
            },
        };
        let api_token = expand::secret(
            "api_token",
            raw.api_token,
            raw.api_token_file.as_ref(),
            base,
            v,
        );
        let external_url = raw.external_url.and_then(|u| {
            if url_ok(&u.value) {
                Some(u.value.trim_end_matches('/').to_string())
            } else {
                v.error(
                    u.referenced,
                    format!("external_url '{}' is not an http(s) URL", u.value),
                    Some("write it like https://continuity.example.org".into()),
                );
                None
            }
        });
        let tls = raw.tls.and_then(|t| t.compile(base, v));
        let read_auth = raw
            .read_auth
            .and_then(|a| a.value.compile(a.referenced, base, v));
        ServerConfig {
            listen,
            api_token,
            external_url,
            limits,
            tls,
            read_auth,
        }
    }
}

/// Names that maintenance windows and receivers may refer to.
pub struct KnownNames<'a> {
    pub services: BTreeSet<&'a str>,
    pub categories: BTreeSet<&'a str>,
    pub suppliers: BTreeSet<&'a str>,
}

fn push_calendars(
    out: &mut Vec<Sourced<(String, CalendarSpec)>>,
    file: &Arc<str>,
    calendars: BTreeMap<String, Spanned<CalendarSpec>>,
) {
    for (name, spec) in calendars {
        out.push(Sourced {
            file: file.clone(),
            item: Spanned::new((name, spec.value), spec.referenced),
        });
    }
}

fn is_yaml_name(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

fn url_ok(s: &str) -> bool {
    s.parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
}

fn positive(v: &mut Validator, what: &str, d: &Spanned<Dur>) -> Option<Duration> {
    if d.value.0.is_zero() {
        v.error(
            d.referenced,
            format!("{what} must be longer than zero"),
            Some(format!("write a positive duration, e.g. {what}: 30s")),
        );
        None
    } else {
        Some(d.value.0)
    }
}

/// The longest interval between two probes of a check: a day. A check
/// probed less often than daily cannot confirm an outage within a business
/// day, and the restore window (interval × threshold) stays bounded.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// The most consecutive results a threshold may ask for: at the longest
/// interval that is already 100 days before a state is confirmed.
const MAX_THRESHOLD: u32 = 100;

fn interval(v: &mut Validator, d: &Spanned<Dur>) -> Option<Duration> {
    let i = positive(v, "interval", d)?;
    if i > MAX_INTERVAL {
        v.error(
            d.referenced,
            format!("interval {} is longer than a day", d.value),
            Some(
                "probe at least daily, e.g. interval: 24h; for a certificate's expiry 1h is common"
                    .into(),
            ),
        );
        return None;
    }
    Some(i)
}

fn threshold(v: &mut Validator, what: &str, t: &Spanned<u32>) -> u32 {
    if t.value == 0 {
        v.error(
            t.referenced,
            format!("{what} must be at least 1"),
            Some(format!("{what}: 1 reacts to the first result")),
        );
        1
    } else if t.value > MAX_THRESHOLD {
        v.error(
            t.referenced,
            format!("{what} {} is more than {MAX_THRESHOLD}", t.value),
            Some(format!(
                "{what} counts consecutive results; a few (the default is 3) are enough, at most {MAX_THRESHOLD}"
            )),
        );
        MAX_THRESHOLD
    } else {
        t.value
    }
}

fn defaults(raw: Option<RawDefaults>, v: &mut Validator) -> Defaults {
    let mut d = Defaults {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        failure_threshold: 3,
        success_threshold: 2,
        max_concurrency: 1024,
    };
    let Some(raw) = raw else { return d };
    if let Some(i) = &raw.interval {
        d.interval = interval(v, i).unwrap_or(d.interval);
    }
    if let Some(t) = &raw.timeout {
        d.timeout = positive(v, "timeout", t).unwrap_or(d.timeout);
        if d.timeout > d.interval {
            v.error(
                t.referenced,
                format!(
                    "default timeout {} is longer than the default interval {}",
                    t.value,
                    Dur(d.interval)
                ),
                Some("a check must finish before its next run: make the timeout shorter".into()),
            );
        }
    } else if d.timeout > d.interval {
        d.timeout = d.interval;
    }
    if let Some(t) = &raw.failure_threshold {
        d.failure_threshold = threshold(v, "failure_threshold", t);
    }
    if let Some(t) = &raw.success_threshold {
        d.success_threshold = threshold(v, "success_threshold", t);
    }
    if let Some(c) = &raw.max_concurrency {
        if c.value == 0 {
            v.error(
                c.referenced,
                "max_concurrency must be at least 1",
                Some("the default is 1024".into()),
            );
        } else {
            d.max_concurrency = c.value;
        }
    }
    d
}

fn store(raw: Option<RawStore>, v: &mut Validator, base: &Path) -> StoreConfig {
    // Relative paths, the default included, are relative to the main file.
    let mut s = StoreConfig {
        path: base.join("continuity.db"),
        retention: Duration::from_secs(35 * 86400),
        rollup_retention: Duration::from_secs(400 * 86400),
    };
    let Some(raw) = raw else { return s };
    if let Some(p) = &raw.path {
        let written = PathBuf::from(&p.value);
        s.path = if written.is_absolute() {
            written
        } else {
            base.join(written)
        };
        if let Some((message, hint)) = store_path_problem(&s.path) {
            v.error(p.referenced, message, Some(hint));
        }
    }
    if let Some(r) = &raw.retention {
        s.retention = positive(v, "retention", r).unwrap_or(s.retention);
    }
    if let Some(r) = &raw.rollup_retention {
        s.rollup_retention = positive(v, "rollup_retention", r).unwrap_or(s.rollup_retention);
    }
    s
}

/// What `run` would refuse about the store's path, found at load time so
/// that `check` refuses it too, at its place in the file.
fn store_path_problem(path: &Path) -> Option<(String, String)> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some((
            format!("store.path {shown} is a directory"),
            format!("point store.path at a file in it, e.g. {shown}/continuity.db"),
        )),
        Ok(_) => Some((
            format!("store.path {shown} is not a regular file"),
            "point store.path at a regular file, e.g. /var/lib/continuity/continuity.db".into(),
        )),
        // A missing file is created. A missing directory is left to `run`:
        // a configuration is often checked before it is deployed, on a
        // machine without /var/lib/continuity.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
            match std::fs::metadata(dir) {
                Ok(m) if !m.is_dir() => Some((
                    format!("store.path {shown}: {} is not a directory", dir.display()),
                    "point store.path into a directory, e.g. /var/lib/continuity/continuity.db"
                        .into(),
                )),
                _ => None,
            }
        }
        Err(e) => Some((
            format!("store.path {shown} cannot be used: {e}"),
            "the file and its directory must be readable and writable by the daemon's user".into(),
        )),
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn service(
    raw: RawService,
    at: Location,
    defaults: &Defaults,
    calendars: &BTreeMap<String, CalendarSpec>,
    v: &mut Validator,
) -> Option<Service> {
    let id = raw.id.value.clone();
    let shown_id = error::shorten(&id, 64);
    if !valid_id(&id) {
        v.error(
            raw.id.referenced,
            format!("service id '{shown_id}' is not a valid id"),
            Some(SERVICE_ID_HINT.into()),
        );
    }
    let failure_threshold = raw
        .failure_threshold
        .as_ref()
        .map(|t| threshold(v, "failure_threshold", t))
        .unwrap_or(defaults.failure_threshold);
    let success_threshold = raw
        .success_threshold
        .as_ref()
        .map(|t| threshold(v, "success_threshold", t))
        .unwrap_or(defaults.success_threshold);
    if let Some(u) = &raw.runbook_url
        && !url_ok(&u.value)
    {
        v.error(
            u.referenced,
            format!("runbook_url '{}' is not an http(s) URL", u.value),
            Some("write a full URL, e.g. https://wiki.example.org/runbooks/portal".into()),
        );
    }
    for key in raw.labels.keys() {
        let ok = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            v.error(
                at,
                format!(
                    "label name '{key}' in service '{shown_id}' is not a valid Prometheus label name"
                ),
                Some("use letters, digits and '_', not starting with a digit".into()),
            );
        }
    }

    let mut slas = Vec::new();
    let mut sla_names = HashSet::new();
    for sla in raw.slas {
        let mut spec = sla.value;
        spec.validate(v, sla.referenced, calendars);
        if !sla_names.insert(spec.name.clone()) {
            v.error(
                sla.referenced,
                format!("duplicate SLA name '{}' in service '{shown_id}'", spec.name),
                Some("give each SLA of a service its own name".into()),
            );
        }
        slas.push(spec);
    }

    let (migrations, supplier) = match raw.migration {
        Some(m) => migration::migrations(m, &id, raw.supplier.as_deref(), v),
        None => (Vec::new(), raw.supplier),
    };

    let mut checks = Vec::new();
    match raw.checks {
        None => v.error(
            at,
            format!("service '{shown_id}' has no checks"),
            Some("add a 'checks:' list with at least one check".into()),
        ),
        Some(list) if list.value.is_empty() => v.error(
            list.referenced,
            format!("service '{shown_id}' has an empty checks list"),
            Some("add at least one check, e.g. an http check of its home page".into()),
        ),
        Some(list) => {
            let mut seen = HashSet::new();
            checks.reserve_exact(list.value.len());
            for raw_check in list.value {
                let check_at = raw_check.referenced;
                let cid = raw_check.value.id.value.clone();
                if !seen.insert(cid.clone()) {
                    v.error(
                        raw_check.value.id.referenced,
                        format!(
                            "duplicate check id '{}' in service '{shown_id}'",
                            error::shorten(&cid, 64)
                        ),
                        Some("check ids must be unique within a service".into()),
                    );
                }
                if let Some(c) = check(
                    raw_check.value,
                    check_at,
                    defaults,
                    failure_threshold,
                    success_threshold,
                    v,
                ) {
                    checks.push(Arc::new(c));
                }
            }
        }
    }

    Some(Service {
        name: raw.name.unwrap_or_else(|| id.clone()),
        category: raw.category.unwrap_or_else(|| "other".into()),
        supplier: supplier.unwrap_or_else(|| "unknown".into()),
        id,
        labels: raw.labels,
        runbook_url: raw.runbook_url.map(|u| u.value),
        slas,
        checks,
        migrations,
    })
}

fn check(
    raw: RawCheck,
    at: Location,
    defaults: &Defaults,
    failure_threshold: u32,
    success_threshold: u32,
    v: &mut Validator,
) -> Option<Check> {
    let id = raw.id.value.clone();
    let shown_id = error::shorten(&id, 64);
    if !valid_id(&id) {
        v.error(
            raw.id.referenced,
            format!("check id '{shown_id}' is not a valid id"),
            Some("use lowercase letters, digits and '-', e.g. homepage".into()),
        );
    }
    let interval = match &raw.interval {
        Some(i) => interval(v, i).unwrap_or(defaults.interval),
        None => defaults.interval,
    };
    let timeout = match &raw.timeout {
        Some(t) => positive(v, "timeout", t).unwrap_or(defaults.timeout),
        None => defaults.timeout.min(interval),
    };
    if timeout > interval {
        let place = raw.timeout.as_ref().map(|t| t.referenced).unwrap_or(at);
        v.error(
            place,
            format!(
                "check '{shown_id}': timeout {} is longer than its interval {}",
                Dur(timeout),
                Dur(interval)
            ),
            Some("a check must finish before its next run: shorten the timeout or lengthen the interval".into()),
        );
    }
    // Every kind block is compiled, so that all of a check's problems are
    // reported together; one that does not compile leaves `None`.
    let mut kinds: Vec<(&str, Location, Option<CheckKind>)> = Vec::new();
    macro_rules! kind {
        ($field:ident, $variant:ident, $probe:ty) => {
            if let Some(spec) = raw.$field {
                let at = spec.referenced;
                let compiled = <$probe as probe::Prober>::compile(spec.value, at, v);
                kinds.push((
                    stringify!($field),
                    at,
                    compiled.map(|p| CheckKind::$variant(p.into())),
                ));
            }
        };
    }
    kind!(http, Http, probe::http::HttpProbe);
    kind!(tcp, Tcp, probe::tcp::TcpProbe);
    kind!(tls, Tls, probe::tls::TlsProbe);
    kind!(dns, Dns, probe::dns::DnsProbe);
    kind!(icmp, Icmp, probe::icmp::IcmpProbe);
    kind!(sip, Sip, probe::sip::SipProbe);
    if kinds.len() > 1 {
        let names: Vec<&str> = kinds.iter().map(|k| k.0).collect();
        v.error(
            kinds[1].1,
            format!(
                "check '{shown_id}' has {} kind blocks ({})",
                kinds.len(),
                names.join(", ")
            ),
            Some("a check has exactly one kind block: split it into one check per kind".into()),
        );
        return None;
    }
    let Some((_, _, kind)) = kinds.pop() else {
        v.error(
            at,
            format!("check '{shown_id}' has no kind block"),
            Some("add exactly one of http, tcp, tls, dns, icmp or sip".into()),
        );
        return None;
    };
    let failure_threshold = raw
        .failure_threshold
        .as_ref()
        .map(|t| threshold(v, "failure_threshold", t))
        .unwrap_or(failure_threshold);
    let success_threshold = raw
        .success_threshold
        .as_ref()
        .map(|t| threshold(v, "success_threshold", t))
        .unwrap_or(success_threshold);
    let latency_threshold = raw
        .latency_threshold
        .and_then(|l| positive(v, "latency_threshold", &l));
    // A kind that did not compile has its issues recorded already; the
    // thresholds above were still checked, so that every issue is listed.
    Some(Check {
        id,
        kind: kind?,
        interval,
        timeout,
        critical: raw.critical.unwrap_or(true),
        failure_threshold,
        success_threshold,
        latency_threshold,
    })
}

/// Turn a serde-saphyr error into an issue at its place, with a "did you
/// mean" hint for unknown fields.
fn yaml_issue(file: &Arc<str>, e: &serde_saphyr::Error) -> ConfigIssue {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let place = Place {
        file: file.clone(),
        line,
        column,
    };
    if let serde_saphyr::Error::SerdeUnknownField {
        field, expected, ..
    } = e.without_snippet()
    {
        let hint = match closest(field, expected.iter().copied()) {
            Some(best) => format!("did you mean '{best}'?"),
            None if !expected.is_empty() => format!("known fields: {}", expected.join(", ")),
            None => "remove it".to_string(),
        };
        // A field name is echoed only when it looks like one: the "key"
        // of a line of a file that is not a catalogue may be a secret.
        let named = field.len() <= 64
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let message = if named {
            format!("unknown field '{field}'")
        } else {
            "unknown field (not shown: it is not a field name)".to_string()
        };
        return ConfigIssue {
            place,
            message,
            hint: Some(hint),
        };
    }
    use serde_saphyr::Error as E;
    let said = |message: String, hint: String| ConfigIssue {
        place: place.clone(),
        message,
        hint: Some(hint),
    };
    match e.without_snippet() {
        E::DuplicateMappingKey { key, .. } => {
            let key = key
                .as_deref()
                .map(|k| format!(" '{}'", error::shorten(k, 64)))
                .unwrap_or_default();
            return said(
                format!("key{key} is written twice in the same mapping"),
                "keep one of them; YAML keys must be unique".into(),
            );
        }
        E::Budget { breach, .. } => {
            return said(
                format!(
                    "this file is too large to read as one YAML document ({})",
                    budget_words(breach)
                ),
                "split the services over catalogue files, e.g. include: [\"probes/*.yaml\"] with a few thousand checks per file".into(),
            );
        }
        E::UnresolvedProperty { name, .. } | E::PropertyRequiredButUnset { name, .. } => {
            return said(
                format!("environment variable {name} is not set"),
                format!("set {name}, or write ${{{name}:-default}} to give a fallback"),
            );
        }
        E::InvalidPropertyName { name, .. } => {
            return said(
                format!(
                    "'{}' is not a valid environment variable reference",
                    error::shorten(name, 64)
                ),
                "write ${NAME} with letters, digits and _, or $${ for a literal ${".into(),
            );
        }
        _ => {}
    }
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    ConfigIssue {
        place,
        message: unquote_values(&strip_location(first)),
        hint: None,
    }
}

/// The limit a YAML document broke, in words.
fn budget_words(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Nodes { nodes } => format!("more than {nodes} values"),
        B::Events { events } => format!("more than {events} parser events"),
        B::Depth { depth } => format!("nested {depth} levels deep"),
        B::Aliases { aliases } => format!("{aliases} aliases"),
        B::Anchors { anchors } => format!("{anchors} anchors"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// serde's messages quote the value they could not use (`invalid type:
/// string "root:$6$…", expected …`). Such a value may be a secret or a
/// line of a file that is not a catalogue, so it is never echoed.
fn unquote_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        match rest[start + 1..].rfind('"') {
            Some(end) => {
                out.push_str("(value not shown)");
                rest = &rest[start + 1 + end + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// serde-saphyr prefixes messages with "line L column C: "; we print the
/// place as file:line:column ourselves.
fn strip_location(s: &str) -> String {
    let s = s.strip_prefix("error: ").unwrap_or(s);
    if let Some(rest) = s.strip_prefix("line ")
        && let Some((_, msg)) = rest.split_once(": ")
    {
        return msg.to_string();
    }
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_kinds_compare_by_what_was_written_not_where() {
        let load = |yaml: &str| Config::from_str("t.yaml", yaml).expect("loads");
        fn kind(c: &Config) -> &CheckKind {
            &c.services[0].checks[0].kind
        }
        let a = load(
            "services:\n  - id: s\n    checks:\n      - id: c\n        tcp: {target: a.nl:25}\n",
        );
        let moved = load(
            "\n\nservices:\n  - id: s\n    checks:\n\n      - id: c\n        tcp:\n          target: a.nl:25\n",
        );
        let other = load(
            "services:\n  - id: s\n    checks:\n      - id: c\n        tcp: {target: a.nl:26}\n",
        );
        assert_eq!(kind(&a), kind(&moved));
        assert_ne!(kind(&a), kind(&other));
    }

    #[test]
    fn location_prefix_is_stripped_from_messages() {
        assert_eq!(
            strip_location("line 3 column 5: invalid type"),
            "invalid type"
        );
        assert_eq!(
            strip_location("invalid type at line 3 column 5"),
            "invalid type"
        );
    }
}
