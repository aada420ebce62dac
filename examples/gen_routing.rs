//! Deterministic generator of large routing data sets for switchboard (load tests, benchmarks,
//! hot-reload experiments).
//!
//! ```text
//! cargo run --release --example gen_routing -- --out DIR [--accounts 100] [--users 10000]
//!     [--numbers 20000] [--contacts 1000000] [--calls 10000] [--seed 42] [--single-file]
//! ```
//!
//! It writes routing data in the YAML shape of docs/routing.md:
//!
//! - by default one file per account, `DIR/account-000.yaml`, `DIR/account-001.yaml`, ...,
//!   each holding `accounts:` with exactly one account;
//! - with `--single-file`, every account in `DIR/routing.yaml`.
//!
//! Users, numbers and contacts are split evenly across the accounts (remainders go to the first
//! accounts). Half of each account's numbers are assigned to its users (each to exactly one
//! user); about half of the numbers have a `forward_to`; about 90% of the accounts have a
//! default `forward_to`, about 10% have `ring_number_user_first: false` and about 10%
//! `when_user_has_no_phone: forward`; about 5% of the users have no phone; contacts have one
//! phone (about 10% have two) and about 70% of them are assigned to a user.
//!
//! Every phone number is E.164, plausible for libphonenumber (real area codes, subscriber
//! numbers of the right length) and unique across the whole data set. Each category draws from
//! its own disjoint ranges, and inside a range the n-th number is a seeded bijection (a Feistel
//! permutation with cycle walking) of the counter n, so uniqueness needs no lookup table:
//!
//! - account numbers (DIDs): +1 800/833/844/855/866/877/888 (toll free) and
//!   +1 212/312/617/213/305, as +1 NPA NXX XXXX with N in 2-9;
//! - user phones: +1 415/650/408; forwarding numbers: +1 510/925/669;
//! - contact phones: +1 in ten other area codes (~60%), London +44 20 [378]xxx xxxx (~15%),
//!   Berlin +49 30 [2-9]xxxxxxx (~15%), Paris +33 1 [4-7]xxxxxxx (~10%);
//! - in calls.csv only: unknown callers +1 919/984 and Bristol +44 117 [2349]xx xxxx, and
//!   numbers of no account +1 646/929.
//!
//! It also writes `DIR/calls.csv` for SIPp injection (`-inf`): a `SEQUENTIAL` line, then
//! `dialed;caller;` rows (`--calls`, default 10,000). About 90% dial a number of some account
//! (assigned or not to a user) from an assigned contact of that account (~40%), an unassigned
//! contact (~30%) or an unknown number (~30%); about 10% dial a number that belongs to no
//! account. There is no expected-result column: `switchboard route` computes it.
//!
//! The same `--seed` and counts always give byte-identical files. The accounts do not depend on
//! `--calls` (the calls use their own random stream), and `--single-file` writes the same
//! accounts as the per-account files.

use std::error::Error;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: gen_routing --out DIR [--accounts N] [--users N] [--numbers N] \
[--contacts N] [--calls N] [--seed N] [--single-file]";

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

struct Options {
    out: PathBuf,
    accounts: u64,
    users: u64,
    numbers: u64,
    contacts: u64,
    calls: u64,
    seed: u64,
    single_file: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        out: PathBuf::new(),
        accounts: 100,
        users: 10_000,
        numbers: 20_000,
        contacts: 1_000_000,
        calls: 10_000,
        seed: 42,
        single_file: false,
    };
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Accept both `--key value` and `--key=value`.
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if key == "--single-file" {
            if inline.is_some() {
                return Err("--single-file takes no value".into());
            }
            opts.single_file = true;
            continue;
        }
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        const WITH_VALUE: &[&str] = &[
            "--out",
            "--accounts",
            "--users",
            "--numbers",
            "--contacts",
            "--calls",
            "--seed",
        ];
        if !WITH_VALUE.contains(&key.as_str()) {
            return Err(format!("unknown argument {arg:?}"));
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{key} needs a value"))?,
        };
        let num = |v: &str| -> Result<u64, String> {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{key}: not a non-negative integer: {v:?}"))
        };
        match key.as_str() {
            "--out" => out = Some(PathBuf::from(value)),
            "--accounts" => opts.accounts = num(&value)?,
            "--users" => opts.users = num(&value)?,
            "--numbers" => opts.numbers = num(&value)?,
            "--contacts" => opts.contacts = num(&value)?,
            "--calls" => opts.calls = num(&value)?,
            "--seed" => opts.seed = num(&value)?,
            _ => unreachable!("checked above"),
        }
    }
    opts.out = out.ok_or("--out DIR is required")?;
    if opts.accounts == 0 {
        return Err("--accounts must be at least 1".into());
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// Randomness: splitmix64 and a Feistel permutation
// ---------------------------------------------------------------------------------------------

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(mix64(seed ^ 0x5157_4c1e_57a7_e5ed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is negligible for test data). `n > 0`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A seeded bijection of `0..size`: a balanced Feistel network on the smallest even number of
/// bits covering `size`, restricted to `0..size` by cycle walking (at most ~4 rounds expected).
struct Permutation {
    size: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    fn new(size: u64, rng: &mut Rng) -> Self {
        let bits = (64 - size.saturating_sub(1).leading_zeros()).max(2);
        Permutation {
            size,
            half_bits: bits.div_ceil(2),
            keys: [
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
            ],
        }
    }

    fn apply(&self, x: u64) -> u64 {
        debug_assert!(x < self.size);
        let mask = (1u64 << self.half_bits) - 1;
        let mut x = x;
        loop {
            let (mut left, mut right) = (x >> self.half_bits, x & mask);
            for key in self.keys {
                let f = mix64(right ^ key) & mask;
                (left, right) = (right, left ^ f);
            }
            x = (left << self.half_bits) | right;
            if x < self.size {
                return x;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Number ranges
// ---------------------------------------------------------------------------------------------

/// The numbers `prefix` + one of `first` + `rest` more digits, e.g. `+1415` + `[2-9]` +
/// 6 digits for US numbers (NXX exchange, N in 2-9).
struct Range {
    prefix: &'static str,
    first: &'static [u8],
    rest: u32,
    weight: u64,
}

impl Range {
    fn size(&self) -> u64 {
        self.first.len() as u64 * 10u64.pow(self.rest)
    }
}

const N: &[u8] = b"23456789";

const fn us(prefix: &'static str, weight: u64) -> Range {
    Range {
        prefix,
        first: N,
        rest: 6,
        weight,
    }
}

const DID_RANGES: &[Range] = &[
    us("+1800", 3),
    us("+1833", 1),
    us("+1844", 1),
    us("+1855", 1),
    us("+1866", 1),
    us("+1877", 1),
    us("+1888", 2),
    us("+1212", 2),
    us("+1312", 2),
    us("+1617", 2),
    us("+1213", 2),
    us("+1305", 2),
];

const USER_RANGES: &[Range] = &[us("+1415", 2), us("+1650", 1), us("+1408", 1)];

const FORWARD_RANGES: &[Range] = &[us("+1510", 2), us("+1925", 1), us("+1669", 1)];

const CONTACT_RANGES: &[Range] = &[
    us("+1202", 6),
    us("+1206", 6),
    us("+1303", 6),
    us("+1404", 6),
    us("+1503", 6),
    us("+1512", 6),
    us("+1615", 6),
    us("+1702", 6),
    us("+1713", 6),
    us("+1773", 6),
    // London: 020 3xxx xxxx, 020 7xxx xxxx, 020 8xxx xxxx.
    Range {
        prefix: "+4420",
        first: b"378",
        rest: 7,
        weight: 15,
    },
    // Berlin: 030 + 8-digit subscriber numbers.
    Range {
        prefix: "+4930",
        first: N,
        rest: 7,
        weight: 15,
    },
    // Paris: 01 + 8 digits.
    Range {
        prefix: "+331",
        first: b"4567",
        rest: 7,
        weight: 10,
    },
];

const UNKNOWN_CALLER_RANGES: &[Range] = &[
    us("+1919", 2),
    us("+1984", 1),
    // Bristol: 0117 + 7 digits (libphonenumber knows 0117 2/3/4/9xx xxxx only).
    Range {
        prefix: "+44117",
        first: b"2349",
        rest: 6,
        weight: 1,
    },
];

const NO_ACCOUNT_RANGES: &[Range] = &[us("+1646", 1), us("+1929", 1)];

/// Hands out distinct numbers from a set of disjoint ranges: the n-th number taken from a range
/// is `permutation(n)`, so numbers never repeat and look scattered.
struct Allocator {
    name: &'static str,
    ranges: &'static [Range],
    perms: Vec<Permutation>,
    used: Vec<u64>,
    total_weight: u64,
}

impl Allocator {
    fn new(name: &'static str, ranges: &'static [Range], rng: &mut Rng) -> Self {
        Allocator {
            name,
            ranges,
            perms: ranges
                .iter()
                .map(|r| Permutation::new(r.size(), rng))
                .collect(),
            used: vec![0; ranges.len()],
            total_weight: ranges.iter().map(|r| r.weight).sum(),
        }
    }

    fn capacity(&self) -> u64 {
        self.ranges.iter().map(Range::size).sum()
    }

    fn check_capacity(&self, wanted: u64) -> Result<(), String> {
        // Pick-by-weight then spill over, so the whole capacity is usable.
        if wanted > self.capacity() {
            return Err(format!(
                "{} numbers: {wanted} wanted, the ranges hold only {}",
                self.name,
                self.capacity()
            ));
        }
        Ok(())
    }

    fn next(&mut self, rng: &mut Rng) -> String {
        let mut pick = rng.below(self.total_weight);
        let mut i = 0;
        while pick >= self.ranges[i].weight {
            pick -= self.ranges[i].weight;
            i += 1;
        }
        // Spill over to the next range when this one is full.
        let mut tries = 0;
        while self.used[i] == self.ranges[i].size() {
            i = (i + 1) % self.ranges.len();
            tries += 1;
            assert!(
                tries <= self.ranges.len(),
                "{} number ranges exhausted",
                self.name
            );
        }
        let range = &self.ranges[i];
        let n = self.perms[i].apply(self.used[i]);
        self.used[i] += 1;
        let modulus = 10u64.pow(range.rest);
        let first = range.first[(n / modulus) as usize] as char;
        let mut s = String::with_capacity(range.prefix.len() + 1 + range.rest as usize);
        s.push_str(range.prefix);
        s.push(first);
        let _ = write!(s, "{:0width$}", n % modulus, width = range.rest as usize);
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Data model (one account at a time in memory)
// ---------------------------------------------------------------------------------------------

struct User {
    id: String,
    name: String,
    phone: Option<String>,
    numbers: Vec<usize>,
}

struct Number {
    number: String,
    forward_to: Option<String>,
    user: Option<usize>,
}

struct Contact {
    phones: Vec<String>,
    user: Option<usize>,
}

struct Account {
    id: String,
    forward_to: Option<String>,
    ring_number_user_first: bool,
    forward_when_no_phone: bool,
    users: Vec<User>,
    numbers: Vec<Number>,
    contacts: Vec<Contact>,
}

const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carol", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Keiko",
    "Liam", "Maria", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Garcia",
    "Nguyen",
    "Müller",
    "Dubois",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Silva",
    "Johansson",
    "Novak",
    "Haddad",
    "Khan",
    "Larsen",
    "Moreau",
    "Fischer",
    "Costa",
    "Ivanova",
    "Brown",
    "Lee",
    "Martin",
    "Walker",
    "Young",
    "Patel",
];

/// `n` split over `parts`, remainders to the first parts.
fn share(n: u64, parts: u64, i: u64) -> usize {
    (n / parts + u64::from(i < n % parts)) as usize
}

fn digits(n: u64) -> usize {
    n.max(1).ilog10() as usize + 1
}

struct Generator {
    rng: Rng,
    dids: Allocator,
    user_phones: Allocator,
    forwards: Allocator,
    contact_phones: Allocator,
    account_width: usize,
    user_width: usize,
}

impl Generator {
    fn account(&mut self, opts: &Options, a: u64) -> Account {
        let rng = &mut self.rng;
        let n_users = share(opts.users, opts.accounts, a);
        let n_numbers = share(opts.numbers, opts.accounts, a);
        let n_contacts = share(opts.contacts, opts.accounts, a);

        let forward_to = rng.chance(90).then(|| self.forwards.next(rng));
        let ring_number_user_first = !rng.chance(10);
        let forward_when_no_phone = rng.chance(10);

        let mut users: Vec<User> = (0..n_users)
            .map(|u| User {
                id: format!(
                    "u-{a:0aw$}-{u:0uw$}",
                    aw = self.account_width,
                    uw = self.user_width
                ),
                name: format!(
                    "{} {}",
                    FIRST_NAMES[rng.index(FIRST_NAMES.len())],
                    LAST_NAMES[rng.index(LAST_NAMES.len())]
                ),
                phone: (!rng.chance(5)).then(|| self.user_phones.next(rng)),
                numbers: Vec::new(),
            })
            .collect();

        let mut numbers: Vec<Number> = (0..n_numbers)
            .map(|_| Number {
                number: self.dids.next(rng),
                forward_to: rng.chance(50).then(|| self.forwards.next(rng)),
                user: None,
            })
            .collect();

        // Assign a random half of the numbers (partial Fisher-Yates) to random users.
        if !users.is_empty() {
            let mut order: Vec<usize> = (0..n_numbers).collect();
            for k in 0..n_numbers / 2 {
                let j = k + rng.index(n_numbers - k);
                order.swap(k, j);
                let u = rng.index(users.len());
                numbers[order[k]].user = Some(u);
            }
            for (i, number) in numbers.iter().enumerate() {
                if let Some(u) = number.user {
                    users[u].numbers.push(i);
                }
            }
        }

        let contacts = (0..n_contacts)
            .map(|_| {
                let count = if rng.chance(10) { 2 } else { 1 };
                let phones = (0..count).map(|_| self.contact_phones.next(rng)).collect();
                let user = (!users.is_empty() && rng.chance(70)).then(|| rng.index(users.len()));
                Contact { phones, user }
            })
            .collect();

        Account {
            id: format!("acct-{a:0aw$}", aw = self.account_width),
            forward_to,
            ring_number_user_first,
            forward_when_no_phone,
            users,
            numbers,
            contacts,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// YAML output (by hand: the shape is fixed and simple, and this is much faster)
// ---------------------------------------------------------------------------------------------

/// Writes one `- id: ...` item of the `accounts:` list.
fn write_account(w: &mut impl Write, acct: &Account) -> std::io::Result<()> {
    writeln!(w, "  - id: {}", acct.id)?;
    writeln!(w, "    region: US")?;
    if let Some(f) = &acct.forward_to {
        writeln!(w, "    forward_to: \"{f}\"")?;
    }
    writeln!(
        w,
        "    ring_number_user_first: {}",
        acct.ring_number_user_first
    )?;
    let no_phone = if acct.forward_when_no_phone {
        "forward"
    } else {
        "reject"
    };
    writeln!(w, "    when_user_has_no_phone: {no_phone}")?;

    if acct.users.is_empty() {
        writeln!(w, "    users: []")?;
    } else {
        writeln!(w, "    users:")?;
    }
    for user in &acct.users {
        writeln!(w, "      - id: {}", user.id)?;
        writeln!(w, "        name: {}", user.name)?;
        if let Some(p) = &user.phone {
            writeln!(w, "        phone: \"{p}\"")?;
        }
        if !user.numbers.is_empty() {
            w.write_all(b"        numbers: [")?;
            for (k, &i) in user.numbers.iter().enumerate() {
                let sep = if k == 0 { "" } else { ", " };
                write!(w, "{sep}\"{}\"", acct.numbers[i].number)?;
            }
            w.write_all(b"]\n")?;
        }
    }

    if acct.numbers.is_empty() {
        writeln!(w, "    numbers: []")?;
    } else {
        writeln!(w, "    numbers:")?;
    }
    for number in &acct.numbers {
        writeln!(w, "      - number: \"{}\"", number.number)?;
        if let Some(f) = &number.forward_to {
            writeln!(w, "        forward_to: \"{f}\"")?;
        }
    }

    if acct.contacts.is_empty() {
        writeln!(w, "    contacts: []")?;
    } else {
        writeln!(w, "    contacts:")?;
    }
    for contact in &acct.contacts {
        w.write_all(b"      - phones: [")?;
        for (k, p) in contact.phones.iter().enumerate() {
            let sep = if k == 0 { "" } else { ", " };
            write!(w, "{sep}\"{p}\"")?;
        }
        w.write_all(b"]\n")?;
        if let Some(u) = contact.user {
            writeln!(w, "        user: {}", acct.users[u].id)?;
        }
    }
    Ok(())
}

fn create(path: &Path) -> Result<BufWriter<File>, Box<dyn Error>> {
    let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

fn finish(w: BufWriter<File>, path: &Path) -> Result<u64, Box<dyn Error>> {
    let file = w
        .into_inner()
        .map_err(|e| format!("{}: {}", path.display(), e.error()))?;
    Ok(file.metadata()?.len())
}

// ---------------------------------------------------------------------------------------------
// calls.csv
// ---------------------------------------------------------------------------------------------

struct CallGen {
    rng: Rng,
    unknown_callers: Allocator,
    no_account: Allocator,
    rows: Vec<(String, String)>,
}

impl CallGen {
    /// Adds `count` calls drawn from one account's data.
    fn add(&mut self, acct: &Account, count: usize) {
        let rng = &mut self.rng;
        let assigned: Vec<&Contact> = acct.contacts.iter().filter(|c| c.user.is_some()).collect();
        let unassigned: Vec<&Contact> = acct.contacts.iter().filter(|c| c.user.is_none()).collect();
        let pick_phone = |rng: &mut Rng, list: &[&Contact]| -> Option<String> {
            if list.is_empty() {
                return None;
            }
            let c = list[rng.index(list.len())];
            Some(c.phones[rng.index(c.phones.len())].clone())
        };
        for _ in 0..count {
            let roll = rng.below(100);
            let contact = if roll < 40 {
                pick_phone(rng, &assigned)
            } else if roll < 70 {
                pick_phone(rng, &unassigned)
            } else {
                None
            };
            let caller = contact.unwrap_or_else(|| self.unknown_callers.next(rng));
            let dialed = if acct.numbers.is_empty() || rng.chance(10) {
                self.no_account.next(rng)
            } else {
                acct.numbers[rng.index(acct.numbers.len())].number.clone()
            };
            self.rows.push((dialed, caller));
        }
    }

    fn write(mut self, path: &Path) -> Result<u64, Box<dyn Error>> {
        // Accounts were visited in order: shuffle so every stretch of the file mixes accounts.
        for i in (1..self.rows.len()).rev() {
            let j = self.rng.index(i + 1);
            self.rows.swap(i, j);
        }
        let mut w = create(path)?;
        writeln!(w, "SEQUENTIAL")?;
        for (dialed, caller) in &self.rows {
            writeln!(w, "{dialed};{caller};")?;
        }
        finish(w, path)
    }
}

// ---------------------------------------------------------------------------------------------

fn run(opts: &Options) -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;

    // Every permutation key comes from the seed; the data and the calls use separate streams
    // so that the routing data does not depend on --calls.
    let mut keys = Rng::new(opts.seed);
    let dids = Allocator::new("account (DID)", DID_RANGES, &mut keys);
    let user_phones = Allocator::new("user phone", USER_RANGES, &mut keys);
    let forwards = Allocator::new("forwarding", FORWARD_RANGES, &mut keys);
    let contact_phones = Allocator::new("contact phone", CONTACT_RANGES, &mut keys);
    let unknown_callers = Allocator::new("unknown caller", UNKNOWN_CALLER_RANGES, &mut keys);
    let no_account = Allocator::new("no-account", NO_ACCOUNT_RANGES, &mut keys);

    dids.check_capacity(opts.numbers)?;
    user_phones.check_capacity(opts.users)?;
    forwards.check_capacity(opts.accounts.saturating_add(opts.numbers))?;
    contact_phones.check_capacity(opts.contacts.saturating_mul(2))?;
    unknown_callers.check_capacity(opts.calls)?;
    no_account.check_capacity(opts.calls)?;

    let max_users = share(opts.users, opts.accounts, 0) as u64;
    let mut generator = Generator {
        rng: Rng::new(opts.seed.wrapping_add(1)),
        dids,
        user_phones,
        forwards,
        contact_phones,
        account_width: digits(opts.accounts - 1).max(3),
        user_width: digits(max_users.saturating_sub(1)).max(4),
    };
    let mut calls = CallGen {
        rng: Rng::new(opts.seed.wrapping_add(2)),
        unknown_callers,
        no_account,
        rows: Vec::with_capacity(opts.calls.min(1 << 24) as usize),
    };

    let header = format!(
        "# generated by examples/gen_routing.rs: seed {}, {} accounts, {} users, {} numbers, \
         {} contacts\n",
        opts.seed, opts.accounts, opts.users, opts.numbers, opts.contacts
    );
    let mut written: Vec<PathBuf> = Vec::new();
    let mut bytes = 0u64;
    let mut single = if opts.single_file {
        let path = opts.out.join("routing.yaml");
        let mut w = create(&path)?;
        w.write_all(header.as_bytes())?;
        w.write_all(b"accounts:\n")?;
        Some((w, path))
    } else {
        None
    };

    for a in 0..opts.accounts {
        let acct = generator.account(opts, a);
        match &mut single {
            Some((w, _)) => write_account(w, &acct)?,
            None => {
                let path = opts
                    .out
                    .join(format!("account-{a:0w$}.yaml", w = generator.account_width));
                let mut w = create(&path)?;
                w.write_all(header.as_bytes())?;
                w.write_all(b"accounts:\n")?;
                write_account(&mut w, &acct)?;
                bytes += finish(w, &path)?;
                written.push(path);
            }
        }
        calls.add(&acct, share(opts.calls, opts.accounts, a));
    }
    if let Some((w, path)) = single {
        bytes += finish(w, &path)?;
        written.push(path);
    }

    let calls_path = opts.out.join("calls.csv");
    bytes += calls.write(&calls_path)?;
    written.push(calls_path);

    // Leftovers from an earlier run would be loaded together with this data set.
    let stale = fs::read_dir(&opts.out)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .filter(|p| !written.contains(p))
        .count();
    if stale > 0 {
        eprintln!(
            "warning: {} holds {stale} other *.yaml file(s) not written by this run; \
             remove them before loading the directory",
            opts.out.display()
        );
    }

    println!(
        "gen_routing: {} accounts, {} users, {} numbers, {} contacts, {} calls -> {} files, \
         {} bytes in {} ({:.2} s)",
        opts.accounts,
        opts.users,
        opts.numbers,
        opts.contacts,
        opts.calls,
        written.len(),
        bytes,
        opts.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gen_routing: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_routing: {e}");
            ExitCode::FAILURE
        }
    }
}
