//! The `continuity` command line: the daemon and its companion commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use continuity::config::Config;

#[derive(Parser)]
#[command(name = "continuity", version, about = "Guards the public services citizens depend on during an ICT migration")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
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
    },
    /// Validate the configuration and every included file.
    Check {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
    },
    /// Run the checks of one service once and print each outcome.
    Probe {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// SERVICE or SERVICE/CHECK.
        target: String,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
        Command::Run { config } => {
            let Some(cfg) = load_or_report(&config) else {
                return Ok(ExitCode::FAILURE);
            };
            run_daemon(cfg).await
        }
        Command::Check { config } => Ok(check(&config)),
        Command::Probe { config, target } => probe_once(&config, &target).await,
        Command::Demo { listen, catalogue } => demo(&listen, catalogue.as_deref()).await,
    }
}

/// reqwest and any code that asks rustls for a process default get the
/// same ring provider the probes use explicitly.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn load_or_report(path: &Path) -> Option<Config> {
    match Config::load(path) {
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
    tracing::info!("serving /metrics and the API on http://{}", cfg.server.listen);
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

fn check(path: &Path) -> ExitCode {
    let Some(cfg) = load_or_report(path) else {
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
        let outcome = continuity::probe::run(&check.kind, check.timeout).await;
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
                if let Some(t) = o.cert_not_after {
                    if let Ok(ts) = jiff::Timestamp::from_second(t) {
                        println!("  certificate expires: {ts}");
                    }
                }
                for (k, v) in &o.details {
                    println!("  {k}: {v}");
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
    let mut env = services.env();
    env.push(("DEMO_LISTEN", listen.to_string()));
    env.push(("DEMO_STORE", dir.join("continuity.db").display().to_string()));
    let text = match catalogue {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => continuity::demo::DEMO_CATALOGUE.to_string(),
    };
    let expanded = continuity::config::expand::expand_with(&text, |name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    })
    .map_err(|issues| {
        anyhow::anyhow!(
            "demo catalogue: {}",
            issues
                .iter()
                .map(|i| format!("line {}: {}", i.0, i.2))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let path = dir.join("demo.yaml");
    std::fs::write(&path, expanded).with_context(|| format!("cannot write {}", path.display()))?;
    let Some(cfg) = load_or_report(&path) else {
        return Ok(ExitCode::FAILURE);
    };
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (use --listen 127.0.0.1:0 or another port)", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    println!("continuity demo: {} simulated services, {} checks", cfg.services.len(), cfg.check_count());
    println!("  metrics: http://{addr}/metrics");
    println!("  status:  http://{addr}/api/v1/status");
    println!("  config:  {}", path.display());
    println!("The appointments application has a scheduled outage of {}s every {}s, and fails now and then;",
        continuity::demo::OUTAGE.as_secs(), continuity::demo::CYCLE.as_secs());
    println!("the taxes portal is slow. Watch continuity_probe_success and continuity_service_state move.");
    println!("Press Ctrl-C to stop.");
    continuity::run(cfg, listener, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    Ok(ExitCode::SUCCESS)
}
