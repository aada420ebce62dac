//! The `switchboard` command line (docs/operations.md): argument parsing and output
//! only; the work happens in the library.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use switchboard::routing::DiversionStyle;
use switchboard::routing::Region;
use switchboard::routing_data::{Loader, Report, diff};
use switchboard::server::{Server, ServerError, redirect};
use switchboard::settings::{LogFormat, Mode, NumbersMode, Settings};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "SIP redirect server for CRM call routing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SIP on UDP and TCP at each listen address, and TLS at each TLS one.
    Serve(Box<ServeArgs>),
    /// Validate routing data: every error and warning with file and line.
    /// Exit 0 when it can be served (warnings allowed), 1 when not.
    Check {
        /// A routing YAML file or a directory of them.
        path: PathBuf,
        /// Region for national spellings of dialed numbers.
        #[arg(long, default_value = "US", env = "SWITCHBOARD_DEFAULT_REGION")]
        default_region: String,
        /// Keep compiled routing files here (as serve does) [default:
        /// $CACHE_DIRECTORY, else none].
        #[arg(long, env = "SWITCHBOARD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Explain where one call would go.
    Route {
        /// A routing YAML file or a directory of them.
        #[arg(long, env = "SWITCHBOARD_ROUTING")]
        routing: PathBuf,
        /// The dialed number (any spelling: +1..., tel:, sip:...).
        #[arg(long)]
        to: String,
        /// The caller's number.
        #[arg(long)]
        from: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Region for national spellings of dialed numbers.
        #[arg(long, default_value = "US", env = "SWITCHBOARD_DEFAULT_REGION")]
        default_region: String,
    },
    /// Show the routing changes between two data sets, by account.
    /// Exit 0 when nothing that routes a call changed, 1 when something
    /// did, 2 when either data set is invalid (like diff(1)).
    Diff {
        /// The old data: a routing YAML file or a directory of them.
        old: PathBuf,
        /// The new data: a routing YAML file or a directory of them.
        new: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Print the load and compare times on stderr.
        #[arg(long)]
        timing: bool,
        /// Region for national spellings of dialed numbers.
        #[arg(long, default_value = "US", env = "SWITCHBOARD_DEFAULT_REGION")]
        default_region: String,
    },
}

/// Every flag also reads a `SWITCHBOARD_*` variable; both override the
/// config file (docs/operations.md).
#[derive(Args)]
struct ServeArgs {
    /// Routing data: a YAML file or a directory of them.
    #[arg(long, env = "SWITCHBOARD_ROUTING")]
    routing: Option<PathBuf>,
    /// Listen address (UDP and TCP), repeatable [default: 0.0.0.0:5060].
    #[arg(long, env = "SWITCHBOARD_LISTEN", value_delimiter = ',')]
    listen: Vec<SocketAddr>,
    /// Trusted peer network, repeatable; replaces the loopback default.
    #[arg(long, env = "SWITCHBOARD_TRUST", value_delimiter = ',')]
    trust: Vec<IpNet>,
    /// Network exempt from flood limits (trunks, proxies, load
    /// generators), repeatable; replaces the loopback default.
    #[arg(long, env = "SWITCHBOARD_EXEMPT", value_delimiter = ',')]
    exempt: Vec<IpNet>,
    /// Admin HTTP address (metrics and health).
    #[arg(long, env = "SWITCHBOARD_ADMIN")]
    admin: Option<SocketAddr>,
    /// Contact URI template for 302s: {number}, {source}, {source_host}.
    #[arg(long, env = "SWITCHBOARD_CONTACT_TEMPLATE")]
    contact_template: Option<String>,
    /// Server settings file (config/switchboard.yaml).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT")]
    log_format: Option<LogFormatArg>,
    /// Worker threads [default: one per core].
    #[arg(long, env = "SWITCHBOARD_WORKERS")]
    workers: Option<usize>,
    /// Region for national spellings of dialed numbers [default: US].
    #[arg(long, env = "SWITCHBOARD_DEFAULT_REGION")]
    default_region: Option<String>,
    /// How a 302 names the dialed number: header (Diversion, RFC 5806),
    /// history-info (RFC 7044) or off [default: off].
    #[arg(long, env = "SWITCHBOARD_DIVERSION")]
    diversion: Option<DiversionStyle>,
    /// Also embed the diversion in each Contact URI as an escaped header.
    #[arg(long, env = "SWITCHBOARD_CONTACT_HEADERS")]
    contact_headers: Option<bool>,
    /// A file holding the bearer token that turns on the admin endpoints
    /// revealing routing data (/reloads, /route).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// SIP over TLS listen address, repeatable (the usual port is 5061).
    #[arg(long, env = "SWITCHBOARD_TLS_LISTEN", value_delimiter = ',')]
    tls_listen: Vec<SocketAddr>,
    /// The TLS certificate chain (PEM, the server's own first).
    #[arg(long, env = "SWITCHBOARD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, env = "SWITCHBOARD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) for mutual TLS: a peer whose client
    /// certificate chains to one is trusted like a listed address.
    #[arg(long, env = "SWITCHBOARD_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Refuse TLS handshakes without such a client certificate.
    #[arg(
        long,
        env = "SWITCHBOARD_TLS_REQUIRE_CLIENT_CERT",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    tls_require_client_cert: Option<bool>,
    /// Trust a client certificate only when a DNS name in it is one of
    /// these, repeatable.
    #[arg(long, env = "SWITCHBOARD_TLS_TRUST_NAME", value_delimiter = ',')]
    tls_trust_name: Vec<String>,
    /// Keep compiled routing files here so that a restart over unchanged
    /// data skips parsing [default: $CACHE_DIRECTORY, else none].
    #[arg(long, env = "SWITCHBOARD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// How routed INVITEs are answered: `redirect` (a 302) or `proxy`
    /// (relayed, rung and forwarded by switchboard) [default: redirect].
    #[arg(long, env = "SWITCHBOARD_MODE")]
    mode: Option<Mode>,
    /// Send every relayed request to this SIP URI (an outbound proxy or a
    /// carrier SBC), e.g. `sip:sbc.example.net:5060;transport=udp`.
    #[arg(long, env = "SWITCHBOARD_NEXT_HOP")]
    next_hop: Option<String>,
    /// Seconds a relayed call rings one target before the next is tried
    /// [default: 20].
    #[arg(long, env = "SWITCHBOARD_RING_SECONDS")]
    ring_seconds: Option<u32>,
    /// Relay INVITEs from these networks whatever the mode, repeatable.
    #[arg(long, env = "SWITCHBOARD_PROXY_PEER", value_delimiter = ',')]
    proxy_peer: Vec<IpNet>,
    /// Stay on relayed calls' path with Record-Route, so that their ACK,
    /// BYE and re-INVITE pass through switchboard (proxy.record_route).
    #[arg(long, env = "SWITCHBOARD_RECORD_ROUTE")]
    record_route: bool,
    /// Write a call record per decided call to JSON Lines files here
    /// (records.dir).
    #[arg(long, env = "SWITCHBOARD_RECORDS_DIR")]
    records_dir: Option<PathBuf>,
    /// POST the call records to this URL (Standard Webhooks; needs
    /// --records-dir and --records-webhook-secret-file).
    #[arg(long, env = "SWITCHBOARD_RECORDS_WEBHOOK")]
    records_webhook: Option<String>,
    /// The webhook's secret: a file holding `whsec_` and base64.
    #[arg(long, env = "SWITCHBOARD_RECORDS_WEBHOOK_SECRET_FILE")]
    records_webhook_secret_file: Option<PathBuf>,
    /// Phone numbers in the records [default: full with a webhook, else
    /// masked].
    #[arg(long, env = "SWITCHBOARD_RECORDS_NUMBERS")]
    records_numbers: Option<NumbersArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum NumbersArg {
    Full,
    Masked,
    Hmac,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

fn main() -> ExitCode {
    // Before any thread starts: see routing_data::memory.
    switchboard::routing_data::memory::keep_large_blocks_mapped();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Check {
            path,
            default_region,
            cache_dir,
        } => check(path, &default_region, cache_dir),
        Command::Route {
            routing,
            to,
            from,
            json,
            default_region,
        } => route(routing, &to, from.as_deref(), json, &default_region),
        Command::Diff {
            old,
            new,
            json,
            timing,
            default_region,
        } => diff(&old, &new, json, timing, &default_region),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The settings file, then the flags and environment over it.
fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let mut settings = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    if args.routing.is_some() {
        settings.routing = args.routing;
    }
    if !args.listen.is_empty() {
        settings.listen = args.listen;
    }
    if !args.trust.is_empty() {
        settings.trust = args.trust;
    }
    if !args.exempt.is_empty() {
        settings.flood.exempt = args.exempt;
    }
    if args.admin.is_some() {
        settings.admin = args.admin;
    }
    if let Some(template) = args.contact_template {
        settings.contact_template = template;
    }
    if let Some(format) = args.log_format {
        settings.log_format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    if args.workers.is_some() {
        settings.workers = args.workers;
    }
    if let Some(region) = args.default_region {
        settings.default_region = region;
    }
    if let Some(diversion) = args.diversion {
        settings.diversion = diversion;
    }
    if let Some(contact_headers) = args.contact_headers {
        settings.contact_headers = contact_headers;
    }
    if let Some(path) = args.admin_token_file {
        settings.admin_token_file = Some(path);
    }
    let tls = &mut settings.tls;
    if !args.tls_listen.is_empty() {
        tls.listen = args.tls_listen;
    }
    if args.tls_cert.is_some() {
        tls.cert = args.tls_cert;
    }
    if args.tls_key.is_some() {
        tls.key = args.tls_key;
    }
    if args.tls_client_ca.is_some() {
        tls.client_ca = args.tls_client_ca;
    }
    if let Some(required) = args.tls_require_client_cert {
        tls.require_client_cert = required;
    }
    if !args.tls_trust_name.is_empty() {
        tls.trust_names = args.tls_trust_name;
    }
    if args.cache_dir.is_some() {
        settings.cache_dir = args.cache_dir;
    }
    if let Some(mode) = args.mode {
        settings.mode = mode;
    }
    let proxy = &mut settings.proxy;
    if args.next_hop.is_some() {
        proxy.next_hop = args.next_hop;
    }
    if let Some(seconds) = args.ring_seconds {
        proxy.ring_seconds = seconds;
    }
    if !args.proxy_peer.is_empty() {
        proxy.peers = args.proxy_peer;
    }
    if args.record_route {
        proxy.record_route = true;
    }
    let records = &mut settings.records;
    if args.records_dir.is_some() {
        records.dir = args.records_dir;
    }
    if args.records_webhook.is_some() {
        records.webhook = args.records_webhook;
    }
    if args.records_webhook_secret_file.is_some() {
        records.webhook_secret_file = args.records_webhook_secret_file;
    }
    if let Some(numbers) = args.records_numbers {
        records.numbers = Some(match numbers {
            NumbersArg::Full => NumbersMode::Full,
            NumbersArg::Masked => NumbersMode::Masked,
            NumbersArg::Hmac => NumbersMode::Hmac,
        });
    }
    Ok(settings)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(args)?;
    init_logging(settings.log_format);
    let server = match Server::bind(settings) {
        Ok(server) => server,
        Err(ServerError::Routing(rejected)) => {
            eprint!("{}", rejected.report);
            eprintln!("switchboard: the routing data has errors; not starting");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    for warning in server.warnings().warnings() {
        tracing::warn!("{warning}");
    }
    // Listening for SIGTERM before saying we listen: whoever reads the
    // `listening on` lines may signal at once.
    let shutdown = shutdown_signal()?;
    // Written, not printed: a closed stdout must not stop the server.
    let sockets: Vec<String> = server
        .listening()
        .iter()
        .map(|s| format!("{} {}", s.transport, s.addr))
        .collect();
    let mut stdout = std::io::stdout().lock();
    for socket in &sockets {
        let _ = writeln!(stdout, "listening on {socket}");
    }
    let _ = stdout.flush();
    drop(stdout);
    let loaded = server.routing_status().serving;
    let counts = loaded.map(|s| s.counts).unwrap_or_default();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listening = sockets.join(", "),
        workers = server.workers(),
        accounts = counts.accounts,
        users = counts.users,
        numbers = counts.numbers,
        contacts = counts.contacts,
        files = loaded.map_or(0, |s| s.files),
        parsed = loaded.map_or(0, |s| s.parsed),
        cached = loaded.map_or(0, |s| s.cached),
        load_ms = loaded.map_or(0.0, |s| s.elapsed.as_secs_f64() * 1e3),
        "switchboard started"
    );
    server.run(shutdown)?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT.
/// SIGTERM or SIGINT, listened for from the moment this returns: a signal
/// that arrives before the server runs (say, right after the `listening on`
/// lines) still stops it cleanly instead of killing it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("cannot listen for SIGTERM and SIGINT")?;
    let (signalled, received) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("shutdown-signal".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = signalled.send(());
            }
        })
        .context("cannot start the signal thread")?;
    Ok(async move {
        let _ = received.await;
    })
}

fn check(
    path: PathBuf,
    default_region: &str,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let region = Region::from_code(default_region).context("--default-region")?;
    // The cache says only what goes wrong with it (an entry ignored, a
    // directory it cannot write), on stderr, apart from the report.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cache = cache_dir
        .or_else(switchboard::settings::cache_directory_from_systemd)
        .map(switchboard::routing_data::cache::Cache::new);
    let mut loader = Loader::new(&path, region).with_cache(cache);
    match loader.load() {
        Ok(loaded) => {
            print!("{}", loaded.report);
            let c = loaded.stats.counts;
            println!(
                "{}: ok: {} accounts, {} users, {} numbers, {} contacts in {} file(s); {}",
                path.display(),
                c.accounts,
                c.users,
                c.numbers,
                c.contacts,
                loaded.stats.files,
                count_warnings(&loaded.report),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(rejected) => {
            print!("{}", rejected.report);
            println!(
                "{}: FAILED: {} error(s), {}; the data cannot be served",
                path.display(),
                rejected.report.errors().count(),
                count_warnings(&rejected.report),
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Exit status of `diff` when either data set is invalid.
const DIFF_INVALID: u8 = 2;

fn diff(
    old: &Path,
    new: &Path,
    json: bool,
    timing: bool,
    default_region: &str,
) -> anyhow::Result<ExitCode> {
    let region = match Region::from_code(default_region) {
        Ok(region) => region,
        Err(e) => {
            eprintln!("switchboard: --default-region: {e}");
            return Ok(ExitCode::from(DIFF_INVALID));
        }
    };
    let started = Instant::now();
    let (old_table, new_table) = diff::load_pair(old, new, &region);
    let loaded = started.elapsed();
    let mut invalid = false;
    for (path, table) in [(old, &old_table), (new, &new_table)] {
        if let Err(rejected) = table {
            eprint!("{}", rejected.report);
            eprintln!(
                "{}: the routing data has errors; run `switchboard check` for the full report",
                path.display()
            );
            invalid = true;
        }
    }
    let (Ok(old_table), Ok(new_table)) = (old_table, new_table) else {
        debug_assert!(invalid);
        return Ok(ExitCode::from(DIFF_INVALID));
    };
    let compare_started = Instant::now();
    let changes =
        diff::try_diff_tables(&old_table, &new_table).context("comparing the routing tables")?;
    let compared = compare_started.elapsed();
    if json {
        println!("{}", serde_json::to_string(&changes)?);
    } else {
        print!("{}", changes.to_text(DIFF_EXAMPLES));
    }
    if timing {
        eprintln!(
            "timing: load both {:.3} s, compare {:.3} s",
            loaded.as_secs_f64(),
            compared.as_secs_f64()
        );
    }
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Lines of each kind of change `diff` prints per account.
const DIFF_EXAMPLES: usize = 20;

fn count_warnings(report: &Report) -> String {
    match report.warnings().count() {
        1 => "1 warning".to_owned(),
        n => format!("{n} warnings"),
    }
}

fn route(
    routing: PathBuf,
    to: &str,
    from: Option<&str>,
    json: bool,
    default_region: &str,
) -> anyhow::Result<ExitCode> {
    let region = Region::from_code(default_region).context("--default-region")?;
    let loaded = match Loader::new(&routing, region).load() {
        Ok(loaded) => loaded,
        Err(rejected) => {
            eprint!("{}", rejected.report);
            eprintln!(
                "{}: the routing data has errors; run `switchboard check` for the full report",
                routing.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let decision = loaded.table.decide(to.as_bytes(), from.map(str::as_bytes));
    let summary = redirect::summary(&decision);
    if json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    let status = redirect::status_for(decision.disposition);
    println!("{} {}", status.code, status.reason);
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    println!("  account: {}", show(&summary.account));
    println!("  rule:    {}", summary.rule);
    println!("  user:    {}", show(&summary.user));
    println!("  target:  {}", show(&summary.target));
    // A failover chain: each further Contact, tried when the one before
    // fails or does not answer.
    for next in summary.targets.iter().skip(1) {
        println!(
            "  then:    {} (q={}, {}, when the one before does not answer)",
            next.target, next.q, next.rule
        );
    }
    println!("  reason:  {}", summary.reason);
    Ok(ExitCode::SUCCESS)
}
