//! Start, memory, reload and `check` figures for a large routing data set
//! (issue #16), measured on the real binary, everything included, and
//! side by side with another build (today's, from main) in the same run.
//!
//! ```sh
//! cargo build --release --bin switchboard --example load_bench
//! cargo run --release --example gen_routing -- --out /tmp/scale-data/d10m \
//!     --accounts 1000 --users 100000 --numbers 200000 --contacts 10000000
//! target/release/examples/load_bench /tmp/scale-data/d10m \
//!     --baseline /tmp/scale-data/switchboard-main --cache /tmp/scale-data/cache
//! ```
//!
//! For each build it starts `serve` (the baseline without a cache; this
//! build without one, with an empty cache, and again over the warm cache),
//! times the start until `listening on`, reads the serving process's
//! resident memory, then changes one account's file seven times (the
//! watcher's debounce set to 10 ms) and reads each reload's load time from
//! the log, the time from the write to the reload's log line, and the
//! memory peak over the reloads (the peak is reset after the start). Then
//! it times `check` and its peak memory. The changed file is restored
//! after each run, so every start sees the same data.
//!
//! It edits one account file of the data set (toggling that account's
//! `ring_number_user_first` and adding a comment, so each change is new
//! content), so point it at generated data, not at data anyone needs.
//!
//! Given several directories (the same data in several YAML styles,
//! `bench/styles/`), it runs each without a cache, side by side in one run,
//! and with `--churn N` then rewrites every file of the data set N times,
//! one file and one reload at a time (a comment line added, so the content
//! is new), and reads the resident memory after that: the drift issue #23
//! measured. A table by style closes the output:
//!
//! ```sh
//! target/release/examples/load_bench /tmp/styles/1m/gen /tmp/styles/1m/pyyaml \
//!     /tmp/styles/1m/json --churn 2
//! ```

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const RELOADS: usize = 7;

struct Options {
    dir: PathBuf,
    /// Further directories: the same data in other styles.
    more: Vec<PathBuf>,
    /// Rounds of rewriting every file, one reload each.
    churn: usize,
    bin: PathBuf,
    baseline: Option<PathBuf>,
    cache: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let usage = "usage: load_bench DIR [DIR...] [--bin SWITCHBOARD] [--baseline OTHER_SWITCHBOARD] \
                 [--cache DIR] [--churn ROUNDS]";
    let mut args = std::env::args().skip(1);
    let dir: PathBuf = args.next().context(usage)?.into();
    let exe = std::env::current_exe()?;
    // target/release/examples/load_bench -> target/release/switchboard
    let mut bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("switchboard"))
        .context("where is the switchboard binary? give --bin")?;
    let mut baseline = None;
    let mut cache = std::env::temp_dir().join("switchboard-load-bench-cache");
    let mut more = Vec::new();
    let mut churn = 0;
    while let Some(flag) = args.next() {
        if !flag.starts_with("--") {
            more.push(flag.into());
            continue;
        }
        let value = args.next().context(usage)?;
        match flag.as_str() {
            "--bin" => bin = value.into(),
            "--baseline" => baseline = Some(value.into()),
            "--cache" => cache = value.into(),
            "--churn" => churn = value.parse().context(usage)?,
            _ => bail!("{usage}"),
        }
    }
    Ok(Options {
        dir,
        more,
        churn,
        bin,
        baseline,
        cache,
    })
}

/// What one `serve` run measured.
struct ServeRun {
    label: String,
    start: Duration,
    rss_kb: u64,
    start_peak_kb: u64,
    contacts: u64,
    cached: Option<u64>,
    reload_load_ms: Vec<f64>,
    /// The audit trail's diff of old and new table, per reload.
    diff_ms: Vec<f64>,
    write_to_logged: Vec<Duration>,
    reload_peak_kb: u64,
    /// Resident memory after every file was rewritten `churn` times.
    churned_kb: Option<u64>,
}

/// What one `check` run measured.
struct CheckRun {
    label: String,
    wall: Duration,
    peak_kb: u64,
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    if !o.more.is_empty() || o.churn > 0 {
        return by_style(&o);
    }
    let victim = pick_file(&o.dir)?;
    let original = fs::read_to_string(&victim)?;
    let work = tempdir()?;
    let settings = work.join("switchboard.yaml");
    fs::write(&settings, "reload:\n  debounce_ms: 10\n  poll_seconds: 0\n")?;
    let bytes: u64 = fs::read_dir(&o.dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    println!(
        "data: {} ({:.0} MB); this build: {}; baseline: {}",
        o.dir.display(),
        bytes as f64 / 1e6,
        o.bin.display(),
        o.baseline
            .as_ref()
            .map_or("none".to_owned(), |b| b.display().to_string())
    );

    let _ = fs::remove_dir_all(&o.cache);
    let mut serves = Vec::new();
    let mut checks = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        if let Some(baseline) = &o.baseline {
            serves.push(serve(
                "baseline (main)",
                baseline,
                &o.dir,
                &settings,
                None,
                &victim,
                &work,
                o.churn,
            )?);
            fs::write(&victim, &original)?;
        }
        let runs = [
            ("this build, no cache", None),
            ("this build, empty cache", Some(&o.cache)),
            ("this build, warm cache (restart)", Some(&o.cache)),
        ];
        for (label, cache) in runs {
            serves.push(serve(
                label, &o.bin, &o.dir, &settings, cache, &victim, &work, o.churn,
            )?);
            fs::write(&victim, &original)?;
        }
        if let Some(baseline) = &o.baseline {
            checks.push(check("baseline (main)", baseline, &o.dir, None)?);
        }
        checks.push(check("this build, no cache", &o.bin, &o.dir, None)?);
        checks.push(check(
            "this build, warm cache",
            &o.bin,
            &o.dir,
            Some(&o.cache),
        )?);
        Ok(())
    })();
    fs::write(&victim, &original)?;
    let _ = fs::remove_dir_all(&work);
    result?;

    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>8} {:>9} {:>11} {:>11} {:>10}",
        "serve",
        "start s",
        "RSS MB",
        "B/contact",
        "start pk",
        "reload ms",
        "write->log",
        "reload pk"
    );
    for r in &serves {
        let per_contact = r.rss_kb as f64 * 1024.0 / r.contacts.max(1) as f64;
        let cached = r.cached.map_or(String::new(), |c| format!(" ({c} cached)"));
        println!(
            "{:<34} {:>9.2} {:>9.1} {:>8.1} {:>9.1} {:>11.1} {:>11.1} {:>10.1}{cached}",
            r.label,
            r.start.as_secs_f64(),
            r.rss_kb as f64 / 1024.0,
            per_contact,
            r.start_peak_kb as f64 / 1024.0,
            median(&r.reload_load_ms),
            median(
                &r.write_to_logged
                    .iter()
                    .map(|d| d.as_secs_f64() * 1e3)
                    .collect::<Vec<_>>()
            ),
            r.reload_peak_kb as f64 / 1024.0,
        );
    }
    for r in &serves {
        println!(
            "{}: the audit trail's diff per reload, median: {:.2} ms",
            r.label,
            median(&r.diff_ms)
        );
    }
    println!(
        "(start: spawn to `listening on`; RSS: resident, settled after start; start pk / reload pk: \
         peak resident during the start / during {RELOADS} one-file reloads, MB; reload ms: \
         the loader's time, median; write->log: file written to the reload's log line, median, \
         10 ms debounce included)"
    );
    println!();
    println!("{:<34} {:>9} {:>9}", "check", "wall s", "peak MB");
    for c in &checks {
        println!(
            "{:<34} {:>9.2} {:>9.1}",
            c.label,
            c.wall.as_secs_f64(),
            c.peak_kb as f64 / 1024.0
        );
    }
    Ok(())
}

/// Each directory without a cache, side by side: the table by style.
fn by_style(o: &Options) -> anyhow::Result<()> {
    let work = tempdir()?;
    let settings = work.join("switchboard.yaml");
    fs::write(&settings, "reload:\n  debounce_ms: 10\n  poll_seconds: 0\n")?;
    let dirs: Vec<&PathBuf> = std::iter::once(&o.dir).chain(&o.more).collect();
    let mut rows = Vec::new();
    for dir in dirs {
        let victim = pick_file(dir)?;
        let original = fs::read_to_string(&victim)?;
        let bytes: u64 = fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        let label = dir
            .file_name()
            .map_or("?".to_owned(), |n| n.to_string_lossy().into_owned());
        let run = serve(
            &label, &o.bin, dir, &settings, None, &victim, &work, o.churn,
        );
        fs::write(&victim, &original)?;
        unstamp_all(dir)?;
        let run = run?;
        let check = check(&label, &o.bin, dir, None)?;
        println!(
            "{label}: start {:.2} s, RSS {:.1} MB, reload {:.1} ms, churned {:.1} MB, check {:.2} s",
            run.start.as_secs_f64(),
            run.rss_kb as f64 / 1024.0,
            median(&run.reload_load_ms),
            run.churned_kb.unwrap_or(0) as f64 / 1024.0,
            check.wall.as_secs_f64()
        );
        rows.push((label, bytes, run, check));
    }
    let _ = fs::remove_dir_all(&work);
    let fastest = rows
        .iter()
        .map(|(_, _, r, _)| r.start.as_secs_f64())
        .fold(f64::INFINITY, f64::min);
    println!();
    println!(
        "| style | MB | start, no cache | vs fastest | one-file reload, median | RSS | B/contact | after churn x{} | churn/start | check |",
        o.churn
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, bytes, r, c) in &rows {
        let churned = r
            .churned_kb
            .map_or("-".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0));
        let ratio = r.churned_kb.map_or("-".to_owned(), |k| {
            format!("{:.2}x", k as f64 / r.rss_kb.max(1) as f64)
        });
        println!(
            "| {label} | {:.0} | {:.2} s | {:.2}x | {:.1} ms | {:.1} MB | {:.1} | {churned} | {ratio} | {:.2} s |",
            *bytes as f64 / 1e6,
            r.start.as_secs_f64(),
            r.start.as_secs_f64() / fastest,
            median(&r.reload_load_ms),
            r.rss_kb as f64 / 1024.0,
            r.rss_kb as f64 * 1024.0 / r.contacts.max(1) as f64,
            c.wall.as_secs_f64(),
        );
    }
    Ok(())
}

/// A comment line this bench adds to a file, and takes off again.
const STAMP: &str = "# load_bench ";

/// The file's text without the bench's comment lines.
fn unstamped(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with(STAMP) {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest
}

fn unstamp_all(dir: &Path) -> anyhow::Result<()> {
    for file in yaml_files(dir)? {
        let text = fs::read_to_string(&file)?;
        if text.starts_with(STAMP) {
            fs::write(&file, unstamped(&text))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn serve(
    label: &str,
    bin: &Path,
    dir: &Path,
    settings: &Path,
    cache: Option<&PathBuf>,
    victim: &Path,
    work: &Path,
    churn: usize,
) -> anyhow::Result<ServeRun> {
    let log = work.join(format!("{}.log", label.replace([' ', ',', '(', ')'], "_")));
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg("--routing")
        .arg(dir)
        .arg("--config")
        .arg(settings)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .env_remove("CACHE_DIRECTORY")
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log)?);
    if let Some(cache) = cache {
        command.arg("--cache-dir").arg(cache);
    }
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| bin.display().to_string())?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on udp") => break,
            Some(_) => {}
            None => {
                let _ = child.wait();
                bail!(
                    "{label}: exited before listening: {}",
                    fs::read_to_string(&log)?
                );
            }
        }
    }
    let start = started.elapsed();
    // Keep stdout drained while the server runs.
    std::thread::spawn(move || lines.count());
    let guard = Running(child);
    let pid = guard.0.id();
    let started_line = wait_for_line(&log, "switchboard started", 0, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_millis(1000));
    let rss_kb = status_kb(pid, "VmRSS")?;
    let start_peak_kb = status_kb(pid, "VmHWM")?;
    let fields = &started_line["fields"];
    let contacts = fields["contacts"].as_u64().unwrap_or(0);
    let cached = fields["cached"].as_u64();

    // Reset the peak so that it shows the reloads alone (Linux >= 4.0).
    fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .context("resetting the peak RSS needs /proc/PID/clear_refs")?;
    let mut reload_load_ms = Vec::new();
    let mut diff_ms = Vec::new();
    let mut write_to_logged = Vec::new();
    for i in 1..=RELOADS {
        std::thread::sleep(Duration::from_millis(200));
        let before = fs::metadata(&log)?.len();
        let written = Instant::now();
        change(victim, i)?;
        let line = wait_for_line(
            &log,
            "routing data reloaded",
            before,
            Duration::from_secs(30),
        )?;
        write_to_logged.push(written.elapsed());
        reload_load_ms.push(line["fields"]["ms"].as_f64().unwrap_or(f64::NAN));
        diff_ms.push(line["fields"]["diff_ms"].as_f64().unwrap_or(f64::NAN));
    }
    let reload_peak_kb = status_kb(pid, "VmHWM")?;
    let mut churned_kb = None;
    if churn > 0 {
        let files = yaml_files(dir)?;
        for round in 1..=churn {
            for file in &files {
                let text = fs::read_to_string(file)?;
                let before = fs::metadata(&log)?.len();
                // The time too: a stamp a run before left must not match.
                let stamp = format!(
                    "{STAMP}churn {round} at {:?}\n",
                    std::time::SystemTime::now()
                );
                let temp = file.with_extension("yaml.tmp");
                fs::write(&temp, format!("{stamp}{}", unstamped(&text)))?;
                fs::rename(&temp, file)?;
                wait_for_line(
                    &log,
                    "routing data reloaded",
                    before,
                    Duration::from_secs(30),
                )?;
            }
        }
        std::thread::sleep(Duration::from_millis(1000));
        churned_kb = Some(status_kb(pid, "VmRSS")?);
    }
    drop(guard);
    Ok(ServeRun {
        label: label.to_owned(),
        start,
        rss_kb,
        start_peak_kb,
        contacts,
        cached,
        reload_load_ms,
        diff_ms,
        write_to_logged,
        reload_peak_kb,
        churned_kb,
    })
}

fn check(label: &str, bin: &Path, dir: &Path, cache: Option<&PathBuf>) -> anyhow::Result<CheckRun> {
    let mut command = Command::new(bin);
    command
        .arg("check")
        .arg(dir)
        .env_remove("CACHE_DIRECTORY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(cache) = cache {
        command.arg("--cache-dir").arg(cache);
    }
    let started = Instant::now();
    let child = command.spawn()?;
    let (status, peak_kb) = wait_rusage(child)?;
    let wall = started.elapsed();
    if status != 0 {
        bail!("{label}: check exited with {status}");
    }
    Ok(CheckRun {
        label: label.to_owned(),
        wall,
        peak_kb,
    })
}

/// Waits for the child; its exit status and peak resident memory in kB.
fn wait_rusage(child: Child) -> anyhow::Result<(i32, u64)> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child, with valid pointers to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    Ok((
        libc::WEXITSTATUS(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    ))
}

/// Stops the server on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("load-bench-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The first log line with `message` written after byte `from` of the log
/// (only the new part is read: each reload logs the data's warnings too).
fn wait_for_line(
    log: &Path,
    message: &str,
    from: u64,
    limit: Duration,
) -> anyhow::Result<serde_json::Value> {
    use std::io::{Read, Seek, SeekFrom};
    let deadline = Instant::now() + limit;
    let needle = format!("\"message\":\"{message}\"");
    // Each reload logs the data's warnings too, thousands of lines: read
    // each complete line once, not the whole tail at every poll.
    let mut from = from;
    loop {
        let mut file = fs::File::open(log)?;
        file.seek(SeekFrom::Start(from))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if let Some(line) = text[..complete]
            .lines()
            .filter(|l| l.contains(&needle))
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            return Ok(line);
        }
        from += complete as u64;
        if Instant::now() > deadline {
            bail!("no {message:?} in {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The middle file of the data set.
fn pick_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let files = yaml_files(dir)?;
    if files.len() < 2 {
        bail!(
            "{} should hold a generated data set of many account files",
            dir.display()
        );
    }
    Ok(files[files.len() / 2].clone())
}

/// Flips the account's `ring_number_user_first` (a real change to
/// routing) and adds a comment naming the change, so that no two changes
/// have the same content; written by rename, as an export would.
fn change(file: &Path, nth: usize) -> anyhow::Result<()> {
    let text = fs::read_to_string(file)?;
    // JSON quotes the key.
    let toggled = [
        (
            "ring_number_user_first: true",
            "ring_number_user_first: false",
        ),
        (
            "ring_number_user_first: false",
            "ring_number_user_first: true",
        ),
        (
            "ring_number_user_first\": true",
            "ring_number_user_first\": false",
        ),
        (
            "ring_number_user_first\": false",
            "ring_number_user_first\": true",
        ),
    ]
    .iter()
    .find(|(from, _)| text.contains(from))
    .map_or(text.clone(), |(from, to)| text.replacen(from, to, 1));
    if toggled == text {
        bail!("{} has no ring_number_user_first to toggle", file.display());
    }
    let stamp = format!(
        "{STAMP}change {nth} at {:?}\n",
        std::time::SystemTime::now()
    );
    let temp = file.with_extension("yaml.tmp");
    fs::write(&temp, format!("{stamp}{}", unstamped(&toggled)))?;
    fs::rename(&temp, file)?;
    Ok(())
}

/// A field of /proc/PID/status, in kB.
fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    line.split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .parse()
        .context("malformed status number")
}
