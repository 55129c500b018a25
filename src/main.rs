//! The `continuity` command line: the daemon and its companion commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use continuity::config::{Config, LoadOptions};

#[derive(Parser)]
#[command(
    name = "continuity",
    version,
    about = "Guards the public services citizens depend on during an ICT migration"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Threads that run probes and the engine. Probing waits on the
    /// network: one thread runs 1,000 probes a second, and a second one
    /// costs more CPU in hand-offs than it saves. Raise it for thousands
    /// of TLS or SIP probes a second.
    #[arg(
        long,
        global = true,
        env = "CONTINUITY_WORKER_THREADS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=256)
    )]
    worker_threads: u16,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SlaFormat {
    Table,
    Json,
    Csv,
}

impl From<SlaFormat> for continuity::report::OutputFormat {
    fn from(f: SlaFormat) -> Self {
        match f {
            SlaFormat::Table => continuity::report::OutputFormat::Table,
            SlaFormat::Json => continuity::report::OutputFormat::Json,
            SlaFormat::Csv => continuity::report::OutputFormat::Csv,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// Accept a configuration without services (refused by default,
        /// on reloads too, so that an emptied file cannot stop every check).
        #[arg(long)]
        allow_empty: bool,
    },
    /// Validate the configuration and every included file.
    Check {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// Accept a configuration without services.
        #[arg(long)]
        allow_empty: bool,
    },
    /// Run the checks of one service once and print each outcome.
    Probe {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// SERVICE or SERVICE/CHECK.
        target: String,
    },
    /// Print the SLA figures of each service for a period, from the store.
    Sla {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// A period for every SLA (2026-W47, 2026-11, 28d@2026-11-20T14:00:00Z);
        /// default: each SLA's current period.
        #[arg(long)]
        period: Option<String>,
        #[arg(long, value_enum, default_value_t = SlaFormat::Table)]
        format: SlaFormat,
        /// Also store the figures as SLA snapshots: the figures on record,
        /// which a later recompute keeps as its "before".
        #[arg(long)]
        record: bool,
    },
    /// Write the management report (default: the last complete ISO week,
    /// HTML, in `reports.language`) from the store.
    Report {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// An ISO week, e.g. 2026-W48.
        #[arg(long, conflicts_with_all = ["month", "from", "to"])]
        week: Option<String>,
        /// A month, e.g. 2026-11.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        month: Option<String>,
        /// Start of a chosen range: a local date (2026-11-01) or RFC 3339.
        #[arg(long, requires = "to", allow_hyphen_values = true)]
        from: Option<String>,
        /// End of the range (exclusive).
        #[arg(long, requires = "from", allow_hyphen_values = true)]
        to: Option<String>,
        /// html, pdf (needs chromium), csv, json or md.
        #[arg(long, default_value = "html")]
        format: continuity::config::reports::ReportFormat,
        /// nl or en; default reports.language.
        #[arg(long)]
        lang: Option<continuity::report::locale::Lang>,
        /// Write here instead of to standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Load probe history from a CSV or JSON Lines file, or from a
    /// Prometheus server, and rebuild the state of the imported range.
    #[command(group(
        clap::ArgGroup::new("source").required(true).args(["csv", "jsonl", "prometheus"])
    ))]
    Import {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// A CSV file: timestamp,service,check,success,duration_seconds,reason.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// A JSON Lines file with the same fields, one object per line.
        #[arg(long, value_name = "FILE")]
        jsonl: Option<PathBuf>,
        /// Base URL of a Prometheus server to read one probe_success series from.
        #[arg(long, value_name = "URL", requires_all = ["query", "service", "check", "from", "to"])]
        prometheus: Option<String>,
        /// PromQL giving exactly one series of 0 and 1.
        #[arg(long, requires = "prometheus")]
        query: Option<String>,
        /// The service the series measured.
        #[arg(long, requires = "prometheus")]
        service: Option<String>,
        /// The check of that service the series measured.
        #[arg(long, requires = "prometheus")]
        check: Option<String>,
        /// Start: RFC 3339, `now`, or a time before now like -30d.
        #[arg(long, requires = "prometheus", allow_hyphen_values = true)]
        from: Option<String>,
        /// End: RFC 3339, `now`, or a time before now like -1h.
        #[arg(long, requires = "prometheus", allow_hyphen_values = true)]
        to: Option<String>,
        /// One result per step; use the check's interval.
        #[arg(long, default_value = "30s")]
        step: String,
        /// Leave bad rows out (each is listed) and import the rest.
        #[arg(long)]
        skip_bad: bool,
    },
    /// Rebuild states, incidents and SLA figures of a range from the stored
    /// raw results with the current configuration; the figures before and
    /// after are kept on record.
    Recompute {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// Start: RFC 3339, `now`, or a time before now like -7d.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End: RFC 3339, `now`, or a time before now like -1h.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        /// Only this service (default: every service).
        #[arg(long)]
        service: Option<String>,
        /// Why, for the record (e.g. "CHG-2026-0142 window was missing").
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print a Prometheus rule file for the catalogue: SLA recording rules,
    /// the daemon's burn-rate alerts, quorum and monitor-absent alerts.
    Rules {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// How many locations run continuity (with --quorum).
        #[arg(long, requires = "quorum")]
        locations: Option<u32>,
        /// How many locations must see a service down before it pages.
        #[arg(long, requires = "locations")]
        quorum: Option<u32>,
        /// The Prometheus job that scrapes the continuity instances.
        #[arg(long, default_value = "continuity")]
        job: String,
        /// Print a Prometheus Operator PrometheusRule instead of a rule file.
        #[arg(long)]
        kubernetes: bool,
    },
    /// Ask a running daemon's /healthz; exit 0 on 200 (for container
    /// HEALTHCHECKs, where there is no curl).
    Healthcheck {
        #[arg(default_value = continuity::healthcheck::DEFAULT_URL)]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Start simulated citizen services on loopback and monitor them.
    Demo {
        /// Where the demo daemon serves /metrics and the API.
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
        /// Use this catalogue instead of the built-in probes/demo.yaml.
        #[arg(long)]
        catalogue: Option<PathBuf>,
    },
    /// Supplier migrations: phases, cutovers, hypercare, verification.
    Migration {
        #[command(subcommand)]
        action: continuity::migration::cli::MigrationCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    continuity::daemon::malloc::limit_arenas(cli.worker_threads);
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads.into())
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    install_crypto();
    match command {
        Command::Run {
            config,
            allow_empty,
        } => {
            let Some(cfg) = load_or_report_with(
                &config,
                LoadOptions {
                    allow_empty,
                    ..LoadOptions::default()
                },
            ) else {
                return Ok(ExitCode::FAILURE);
            };
            run_daemon(cfg).await
        }
        Command::Check {
            config,
            allow_empty,
        } => Ok(check(
            &config,
            LoadOptions {
                allow_empty,
                ..LoadOptions::default()
            },
        )),
        Command::Probe { config, target } => probe_once(&config, &target).await,
        Command::Demo { listen, catalogue } => demo(&listen, catalogue.as_deref()).await,
        Command::Migration { action } => {
            let Some(cfg) = load_or_report(action.config()) else {
                return Ok(ExitCode::FAILURE);
            };
            let out = continuity::migration::cli::execute(&action, &cfg, jiff::Timestamp::now())?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url, timeout } => {
            continuity::healthcheck::check(&url, std::time::Duration::from_secs(timeout))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            config,
            locations,
            quorum,
            job,
            kubernetes,
        } => rules(&config, locations.zip(quorum), job, kubernetes),
        Command::Sla {
            config,
            service,
            period,
            format,
            record,
        } => sla(&config, service.as_deref(), period, format, record),
        Command::Report {
            config,
            week,
            month,
            from,
            to,
            format,
            lang,
            out,
        } => {
            let period = continuity::report::weekly::command::PeriodArgs {
                week,
                month,
                from,
                to,
            };
            report(&config, &period, format, lang, out.as_deref())
        }
        Command::Import {
            config,
            csv,
            jsonl,
            prometheus,
            query,
            service,
            check,
            from,
            to,
            step,
            skip_bad,
        } => {
            let source = match (csv, jsonl, prometheus) {
                (Some(path), _, _) => ImportSource::Csv(path),
                (None, Some(path), _) => ImportSource::Jsonl(path),
                (None, None, Some(url)) => ImportSource::Prometheus {
                    url,
                    query: query.unwrap_or_default(),
                    service: service.unwrap_or_default(),
                    check: check.unwrap_or_default(),
                    from: from.unwrap_or_default(),
                    to: to.unwrap_or_default(),
                    step,
                },
                (None, None, None) => bail!("give --csv FILE, --jsonl FILE or --prometheus URL"),
            };
            import(&config, source, skip_bad).await
        }
        Command::Recompute {
            config,
            from,
            to,
            service,
            reason,
        } => recompute(&config, &from, &to, service, reason),
    }
}

/// reqwest and any code that asks rustls for a process default get the
/// same ring provider the probes use explicitly.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn rules(
    config: &Path,
    quorum: Option<(u32, u32)>,
    job: String,
    kubernetes: bool,
) -> Result<ExitCode> {
    use continuity::rules::{Quorum, RulesOptions, generate};
    let Some(cfg) = load_or_report(config) else {
        return Ok(ExitCode::FAILURE);
    };
    let quorum = quorum.map(|(n, k)| Quorum::new(n, k)).transpose()?;
    let command = continuity::rules::command_line(config, quorum, &job, kubernetes);
    let opts = RulesOptions {
        quorum,
        job,
        kubernetes,
        command,
    };
    print!("{}", generate(&cfg, &opts)?);
    Ok(ExitCode::SUCCESS)
}

fn load_or_report(path: &Path) -> Option<Config> {
    load_or_report_with(path, LoadOptions::default())
}

fn load_or_report_with(path: &Path, options: LoadOptions) -> Option<Config> {
    match Config::load_with(path, options) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{} configuration error(s):", e.issues.len());
            for issue in &e.issues {
                eprintln!("  {issue}");
            }
            None
        }
    }
}

async fn run_daemon(cfg: Config) -> Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
    // The bound address, not the configured one: with port 0 the system
    // picks the port, and this line is how a supervisor (or a test) learns it.
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let scheme = if cfg.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!("listening on {scheme}://{addr} (/metrics and the API)");
    continuity::run(cfg, listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn check(path: &Path, options: LoadOptions) -> ExitCode {
    let Some(cfg) = load_or_report_with(path, options) else {
        return ExitCode::FAILURE;
    };
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut suppliers: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &cfg.services {
        *suppliers.entry(s.supplier.as_str()).or_default() += 1;
        for c in &s.checks {
            *kinds.entry(c.kind.name()).or_default() += 1;
        }
    }
    let join = |m: &BTreeMap<&str, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("configuration OK: {}", path.display());
    println!("  files:     {}", cfg.files.len());
    println!("  services:  {}", cfg.services.len());
    println!("  checks:    {} ({})", cfg.check_count(), join(&kinds));
    println!("  suppliers: {} ({})", suppliers.len(), join(&suppliers));
    println!("  location:  {}", cfg.location);
    ExitCode::SUCCESS
}

async fn probe_once(path: &Path, target: &str) -> Result<ExitCode> {
    let Some(cfg) = load_or_report(path) else {
        return Ok(ExitCode::FAILURE);
    };
    let (service_id, check_id) = match target.split_once('/') {
        Some((s, c)) => (s, Some(c)),
        None => (target, None),
    };
    let Some(service) = cfg.service(service_id) else {
        let known: Vec<&str> = cfg.services.iter().map(|s| s.id.as_str()).collect();
        let hint = continuity::config::closest(service_id, known.iter().copied())
            .map(|c| format!(" (did you mean '{c}'?)"))
            .unwrap_or_default();
        bail!("no service '{service_id}' in {}{hint}", path.display());
    };
    let checks: Vec<_> = service
        .checks
        .iter()
        .filter(|c| check_id.is_none_or(|id| c.id == id))
        .collect();
    if checks.is_empty() {
        let known: Vec<&str> = service.checks.iter().map(|c| c.id.as_str()).collect();
        bail!(
            "service '{service_id}' has no check '{}' (its checks: {})",
            check_id.unwrap_or_default(),
            known.join(", ")
        );
    }
    let mut all_ok = true;
    for check in checks {
        let outcome = continuity::probe::run_with_details(&check.kind, check.timeout).await;
        println!("{}/{} ({})", service.id, check.id, check.kind.name());
        match outcome {
            Err(e) => {
                all_ok = false;
                println!("  monitor error: {e}");
            }
            Ok(o) => {
                all_ok &= o.success();
                match &o.failure {
                    None => println!("  result:   success"),
                    Some(f) => println!("  result:   FAILURE ({}) {}", f.reason, f.detail),
                }
                println!("  duration: {:.3}s", o.duration.as_secs_f64());
                for (phase, d) in &o.phases {
                    println!("    {phase:<10} {:.3}s", d.as_secs_f64());
                }
                if let Some(code) = o.http_status {
                    println!("  http status: {code}");
                }
                if let Some(code) = o.sip_code {
                    println!("  sip code: {code}");
                }
                if let Some(t) = o.cert_not_after
                    && let Ok(ts) = jiff::Timestamp::from_second(t)
                {
                    println!("  certificate expires: {ts}");
                }
                for (k, v) in &o.details {
                    println!("  {k}: {v}");
                }
                for line in o.parity.iter().flat_map(|p| p.summary()) {
                    println!("  {line}");
                }
                if !o.exchange.is_empty() {
                    println!("  exchange:");
                    for line in &o.exchange {
                        println!("    {line}");
                    }
                }
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn demo(listen: &str, catalogue: Option<&Path>) -> Result<ExitCode> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let services = continuity::demo::start(stop_rx)
        .await
        .context("cannot start the simulated services")?;
    let dir = std::env::temp_dir().join(format!("continuity-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The demo's addresses are given to the catalogue by expansion, not by
    // changing this process's environment.
    let mut env: Vec<(String, String)> = services
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("DEMO_LISTEN".into(), listen.to_string()));
    env.push((
        "DEMO_STORE".into(),
        dir.join("continuity.db").display().to_string(),
    ));
    let text = match catalogue {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => continuity::demo::DEMO_CATALOGUE.to_string(),
    };
    let path = dir.join("demo.yaml");
    let text = continuity::demo::fill(&text, &env);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let options = LoadOptions {
        env,
        ..LoadOptions::default()
    };
    let Some(cfg) = load_or_report_with(&path, options) else {
        return Ok(ExitCode::FAILURE);
    };
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (use --listen 127.0.0.1:0 or another port)",
                cfg.server.listen
            )
        })?;
    let addr = listener.local_addr()?;
    // A simulated week before the portal's cutover, so the before/after
    // comparison has a baseline from the first minute.
    let seeded = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || -> Result<u64> {
            let store = continuity::store::open(&cfg.store)?;
            let now = jiff::Timestamp::now();
            Ok(continuity::demo::history::seed(&cfg, store.as_ref(), now)?)
        })
        .await?
        .context("cannot store the demo's simulated history")?
    };
    println!(
        "continuity demo: {} simulated services, {} checks",
        cfg.services.len(),
        cfg.check_count()
    );
    println!("  metrics: http://{addr}/metrics");
    println!("  page:    http://{addr}/ (the public status page)");
    println!("  status:  http://{addr}/api/v1/status");
    println!("  config:  {}", path.display());
    println!(
        "  try:     continuity migration status --config {}",
        path.display()
    );
    if seeded > 0 {
        println!(
            "           continuity migration compare --config {} --service {}",
            path.display(),
            continuity::demo::history::SERVICE
        );
        println!(
            "           ({seeded} simulated results: the portal's week before its cutover and its hypercare so far)"
        );
    }
    println!(
        "The appointments application has a scheduled outage of {}s every {}s, and fails now and then;",
        continuity::demo::OUTAGE.as_secs(),
        continuity::demo::CYCLE.as_secs()
    );
    println!(
        "the taxes portal is slow; the contact centre's phone line drops out for 40s every 4 minutes."
    );
    println!("Watch continuity_probe_success, continuity_service_state and continuity_sla_* move.");
    println!("Press Ctrl-C to stop.");
    continuity::run(cfg, listener, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    Ok(ExitCode::SUCCESS)
}

/// Open the store a configuration names, refusing to create one: reading
/// figures from an empty new file would only mislead.
fn open_existing_store(cfg: &Config) -> Result<std::sync::Arc<dyn continuity::store::Store>> {
    let path = &cfg.store.path;
    if !path.exists() {
        bail!(
            "no store at {} (store.path): nothing has been recorded yet; run the daemon or import history first",
            path.display()
        );
    }
    Ok(continuity::store::open(&cfg.store)?)
}

fn sla(
    config: &Path,
    service: Option<&str>,
    period: Option<String>,
    format: SlaFormat,
    record: bool,
) -> Result<ExitCode> {
    use continuity::report::{self, PeriodSelector};
    let Some(cfg) = load_or_report(config) else {
        return Ok(ExitCode::FAILURE);
    };
    let store = open_existing_store(&cfg)?;
    let now = jiff::Timestamp::now();
    let selector = period.map_or(PeriodSelector::Current, PeriodSelector::Label);
    let rows = report::sla_report(&cfg, store.as_ref(), selector, service, now)?;
    print!("{}", report::render(&rows, format.into()));
    if record {
        for row in &rows {
            store.insert_sla_snapshot(&report::snapshot(row, now))?;
        }
        eprintln!("recorded {} SLA snapshot(s)", rows.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn report(
    config: &Path,
    period: &continuity::report::weekly::command::PeriodArgs,
    format: continuity::config::reports::ReportFormat,
    lang: Option<continuity::report::locale::Lang>,
    out: Option<&Path>,
) -> Result<ExitCode> {
    let Some(cfg) = load_or_report(config) else {
        return Ok(ExitCode::FAILURE);
    };
    let store = open_existing_store(&cfg)?;
    let now = jiff::Timestamp::now();
    let bytes =
        continuity::report::weekly::command::run(&cfg, store.as_ref(), period, format, lang, now)?;
    match out {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write the report to {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

enum ImportSource {
    Csv(PathBuf),
    Jsonl(PathBuf),
    Prometheus {
        url: String,
        query: String,
        service: String,
        check: String,
        from: String,
        to: String,
        step: String,
    },
}

async fn import(config: &Path, source: ImportSource, skip_bad: bool) -> Result<ExitCode> {
    use continuity::import::{self, ImportError, prometheus::PrometheusSource};
    let Some(cfg) = load_or_report(config) else {
        return Ok(ExitCode::FAILURE);
    };
    let store = continuity::store::open(&cfg.store)?;
    let now = jiff::Timestamp::now();
    let rows = match &source {
        ImportSource::Csv(path) => import::csv::read(&cfg, path, now)?,
        ImportSource::Jsonl(path) => import::jsonl::read(&cfg, path, now)?,
        ImportSource::Prometheus {
            url,
            query,
            service,
            check,
            from,
            to,
            step,
        } => {
            let when = |s: &str, what: &str| {
                import::parse_time(s, now).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
            };
            let step =
                continuity::config::Dur::parse(step).map_err(|e| anyhow::anyhow!("--step: {e}"))?;
            let src = PrometheusSource {
                url: url.clone(),
                query: query.clone(),
                service: service.clone(),
                check: check.clone(),
                from: when(from, "from")?,
                to: when(to, "to")?,
                step: step.0,
                points_per_page: import::prometheus::MAX_POINTS_PER_PAGE,
            };
            import::prometheus::read(&cfg, &src, now).await?
        }
    };
    let summary = match import::load(store.as_ref(), rows, skip_bad, now) {
        Ok(s) => s,
        Err(ImportError::BadRows { origin, problems }) => {
            eprintln!(
                "{origin}: {} bad row(s); nothing was imported:",
                problems.len()
            );
            for p in &problems {
                eprintln!("  {p}");
            }
            eprintln!("Fix them, or pass --skip-bad to leave them out and import the rest.");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    println!("imported from {}", summary.origin);
    println!("  rows read: {}", summary.rows_read);
    println!("  imported:  {}", summary.imported);
    println!("  skipped:   {}", summary.skipped.len());
    for p in &summary.skipped {
        println!("    {p}");
    }
    if let (Some(first), Some(last)) = (summary.first, summary.last) {
        println!("  range:     {first} to {last}");
    }
    for s in &summary.services {
        println!(
            "  service {}: state rebuilt from {} results (transitions -{} +{}, incidents -{} +{})",
            s.service,
            s.results,
            s.transitions_retracted,
            s.transitions_written,
            s.incidents_retracted,
            s.incidents_written
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn recompute(
    config: &Path,
    from: &str,
    to: &str,
    service: Option<String>,
    reason: Option<String>,
) -> Result<ExitCode> {
    use continuity::import::parse_time;
    use continuity::recompute::{RecomputeRequest, recompute};
    use continuity::report::format::duration;
    let Some(cfg) = load_or_report(config) else {
        return Ok(ExitCode::FAILURE);
    };
    let store = open_existing_store(&cfg)?;
    let now = jiff::Timestamp::now();
    let from = parse_time(from, now).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = parse_time(to, now).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let who = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let req = RecomputeRequest {
        from,
        to,
        service,
        reason: reason.unwrap_or_else(|| "no reason given".into()),
        who,
    };
    let out = recompute(&cfg, store.as_ref(), &req, now)?;
    println!(
        "recomputation {} on record: {} to {}, by {}, configuration {}",
        out.id,
        out.range.start,
        out.range.end,
        req.who,
        &cfg.digest[..12.min(cfg.digest.len())]
    );
    for s in &out.rewrites {
        println!(
            "  service {}: {} results (transitions -{} +{}, incidents -{} +{})",
            s.service,
            s.results,
            s.transitions_retracted,
            s.transitions_written,
            s.incidents_retracted,
            s.incidents_written
        );
    }
    let pct = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.3}%", a * 100.0));
    for (b, a) in out.before.iter().zip(&out.after) {
        println!(
            "  {} {} {}: availability {} -> {}, down {} -> {}, excluded {} -> {}",
            a.service,
            a.sla,
            a.period,
            pct(b.row.availability),
            pct(a.availability),
            duration(b.row.down_seconds),
            duration(a.down_seconds),
            duration(b.row.excluded_maintenance_seconds),
            duration(a.excluded_maintenance_seconds)
        );
    }
    Ok(ExitCode::SUCCESS)
}
