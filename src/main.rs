//! The `switchboard` command line (DESIGN §5): argument parsing and output
//! only; the work happens in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use switchboard::config::{Loader, Report};
use switchboard::routing::Region;

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
    /// Validate routing data: every error and warning with file and line.
    /// Exit 0 when it can be served (warnings allowed), 1 when not.
    Check {
        /// A routing YAML file or a directory of them.
        path: PathBuf,
        /// Region for national spellings of dialed numbers.
        #[arg(long, default_value = "US", env = "SWITCHBOARD_DEFAULT_REGION")]
        default_region: String,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            path,
            default_region,
        } => check(path, &default_region),
        Command::Route {
            routing,
            to,
            from,
            json,
            default_region,
        } => route(routing, &to, from.as_deref(), json, &default_region),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: PathBuf, default_region: &str) -> anyhow::Result<ExitCode> {
    let region = Region::from_code(default_region).context("--default-region")?;
    let mut loader = Loader::new(&path, region);
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
    let summary = decision.summary();
    if json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {}", summary.status, decision.status.reason_phrase());
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    println!("  account: {}", show(&summary.account));
    println!("  rule:    {}", summary.rule);
    println!("  user:    {}", show(&summary.user));
    println!("  target:  {}", show(&summary.target));
    println!("  reason:  {}", summary.reason);
    Ok(ExitCode::SUCCESS)
}
