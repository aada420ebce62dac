//! Load and reload timings for a large routing data set (issue #2's goals:
//! full load under 5 s, one-account reload under 200 ms, RSS under 500 MB).
//!
//! ```sh
//! cargo run --release --example gen_routing -- --out /tmp/sb-data
//! cargo run --release --example load_bench -- /tmp/sb-data
//! ```
//!
//! It edits one account file of the data set (toggling that account's
//! `ring_number_user_first`), so point it at generated data, not at data
//! anyone needs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use switchboard::config::diff::diff_tables;
use switchboard::config::{HotTable, Loader, ReloadOptions};
use switchboard::routing::Region;

const RELOADS: usize = 7;

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .context("usage: load_bench DIR (a generated data set)")?
        .into();
    let victim = pick_file(&dir)?;

    let started = Instant::now();
    let mut loader = Loader::new(&dir, Region::us());
    let loaded = loader.load().map_err(|r| anyhow::anyhow!("{r}"))?;
    let full = started.elapsed();
    let c = loaded.stats.counts;
    println!(
        "data: {} accounts, {} users, {} numbers, {} contacts in {} files ({} warnings)",
        c.accounts,
        c.users,
        c.numbers,
        c.contacts,
        loaded.stats.files,
        loaded.report.warnings().count()
    );
    println!("full load:              {:>8.1} ms", ms(full));
    println!(
        "peak RSS after load:    {:>8.1} MB",
        status_kb("VmHWM")? as f64 / 1024.0
    );
    println!(
        "RSS holding the table:  {:>8.1} MB",
        status_kb("VmRSS")? as f64 / 1024.0
    );

    // One account file changes; the loader re-reads only it. The reload
    // thread then diffs the old table against the new one for the audit
    // trail: timed apart, as its share of the reload.
    let mut times = Vec::new();
    let mut audits = Vec::new();
    let mut previous = loaded.table;
    for _ in 0..RELOADS {
        toggle(&victim)?;
        let started = Instant::now();
        let loaded = loader.load().map_err(|r| anyhow::anyhow!("{r}"))?;
        times.push(started.elapsed());
        if loaded.stats.parsed != 1 {
            bail!("expected one file parsed, got {:?}", loaded.stats);
        }
        let started = Instant::now();
        let changes = diff_tables(&previous, &loaded.table);
        audits.push(started.elapsed());
        if changes.is_empty() {
            bail!("the toggled file changed nothing that routes");
        }
        previous = loaded.table;
    }
    times.sort();
    audits.sort();
    println!(
        "one-account reload:     {:>8.1} ms median ({:.1} min, {:.1} max of {RELOADS})",
        ms(times[RELOADS / 2]),
        ms(times[0]),
        ms(times[RELOADS - 1])
    );
    println!(
        "audit diff per reload:  {:>8.2} ms median ({:.1} % of the reload)",
        ms(audits[RELOADS / 2]),
        100.0 * audits[RELOADS / 2].as_secs_f64() / times[RELOADS / 2].as_secs_f64()
    );
    drop(previous);
    drop(loader);

    // The same through the hot table: file write to new table serving,
    // with the watcher's debounce set to 10 ms.
    let options = ReloadOptions {
        debounce: Duration::from_millis(10),
        poll: None,
        sighup: false,
        watch: true,
    };
    let (hot, _) = HotTable::start(Loader::new(&dir, Region::us()), options)
        .map_err(|r| anyhow::anyhow!("{r}"))?;
    let mut swaps = Vec::new();
    for i in 1..=RELOADS as u64 {
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        toggle(&victim)?;
        let status = hot.wait_for(Duration::from_secs(10), |s| s.reloads >= i);
        if status.reloads < i {
            bail!("no reload within 10 s: {status:?}");
        }
        swaps.push(started.elapsed());
    }
    swaps.sort();
    println!(
        "write to serving (hot): {:>8.1} ms median, including the 10 ms debounce",
        ms(swaps[RELOADS / 2])
    );
    println!(
        "peak RSS overall:       {:>8.1} MB",
        status_kb("VmHWM")? as f64 / 1024.0
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The middle file of the data set.
fn pick_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    if files.len() < 2 {
        bail!(
            "{} should hold a generated data set of many account files",
            dir.display()
        );
    }
    Ok(files[files.len() / 2].clone())
}

/// Flips the account's `ring_number_user_first`: a real change to routing.
fn toggle(file: &Path) -> anyhow::Result<()> {
    let text = fs::read_to_string(file)?;
    let toggled = if text.contains("ring_number_user_first: true") {
        text.replacen(
            "ring_number_user_first: true",
            "ring_number_user_first: false",
            1,
        )
    } else {
        text.replacen(
            "ring_number_user_first: false",
            "ring_number_user_first: true",
            1,
        )
    };
    if toggled == text {
        bail!("{} has no ring_number_user_first to toggle", file.display());
    }
    fs::write(file, toggled)?;
    Ok(())
}

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> anyhow::Result<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    line.split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .parse()
        .context("malformed status number")
}
