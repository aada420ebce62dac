//! The byte layout of one cache entry: a header saying which program,
//! settings, data file and content it was compiled from, then the compiled
//! file (accounts and diagnostics), and the reader that refuses anything
//! that is not exactly such an entry.
//!
//! Everything is little-endian and length-prefixed, read through a bounded
//! cursor: a corrupt, truncated or foreign entry is refused with the reason,
//! never read past its end, never panics and never allocates more than its
//! own length allows (fuzz/fuzz_targets/cache_entry.rs). The contacts, which
//! are nearly all of an entry, are two plain arrays copied straight into
//! [`Contacts`], so a hit costs a copy, not a parse.
//!
//! The header is checked field by field before the checksum, so each kind
//! of mismatch is reported as what it is (another program, another file,
//! a changed file); the checksum (xxh3-64 over everything after the fixed
//! header) then catches damage anywhere else.
//!
//! Bump [`FORMAT_VERSION`] whenever this layout changes. Entries from
//! another build of the program are refused anyway (the program id is a hash
//! of the executable), so a change to what compiling produces needs no bump.

use std::path::Path;
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use crate::routing::DiversionStyle;
use crate::routing::{
    Account, Contacts, E164, NoPhonePolicy, Number, OnNoAnswer, Region, Target, User, UserIndex,
};
use crate::routing_data::compile::{CompiledAccount, CompiledFile};
use crate::routing_data::report::{Diagnostic, Severity};
use crate::template::ContactTemplate;

/// The first bytes of every entry.
pub const MAGIC: [u8; 8] = *b"SWBCACHE";

/// The layout's version.
pub const FORMAT_VERSION: u32 = 2;

/// The fixed part of the header: magic, format, reserved, program,
/// content, settings, payload length, checksum.
pub const HEADER_BYTES: usize = 8 + 4 + 4 + 16 + 16 + 8 + 8 + 8;

/// What an entry must have been compiled from to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey {
    /// A hash of the running executable: another build, another id.
    pub program: u128,
    /// A hash of the settings that change what compiling produces (the
    /// default region, the YAML limits).
    pub settings: u64,
    /// The data file's path, as the loader names it.
    pub path: Vec<u8>,
    /// xxh3-128 of the data file's bytes.
    pub content: u128,
}

/// Why an entry was not used. Only [`Refusal::Stale`] is expected in normal
/// running (the data file changed since the entry was written); the others
/// mean something wrote or damaged the cache that should not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("truncated ({0} bytes, shorter than its header says)")]
    Truncated(usize),
    #[error("not a switchboard cache entry (bad magic)")]
    NotAnEntry,
    #[error("written in cache format {0}, this program reads {FORMAT_VERSION}")]
    OtherFormat(u32),
    #[error("written by another build of switchboard")]
    OtherProgram,
    #[error("compiled under other settings (default region or limits)")]
    OtherSettings,
    #[error("compiled from another data file")]
    OtherFile,
    #[error("compiled from an earlier version of the file")]
    Stale,
    #[error("{0} bytes longer than its header says")]
    TrailingBytes(usize),
    #[error("checksum mismatch (the entry is damaged)")]
    Checksum,
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// Writes `file` as an entry for `key`.
pub fn encode(key: &EntryKey, file: &CompiledFile) -> Vec<u8> {
    let mut body = Writer::default();
    body.bytes(&key.path);
    write_file(&mut body, file);
    let body = body.0;
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&key.program.to_le_bytes());
    out.extend_from_slice(&key.content.to_le_bytes());
    out.extend_from_slice(&key.settings.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxh3_64(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Makes `bytes`' header agree with its body: the body's length and
/// checksum. For the fuzzer and the tests, which hand the reader bodies that
/// lie in ways the checksum would otherwise hide from it; never used on an
/// entry read from disk.
pub fn seal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_BYTES {
        return;
    }
    let body_len = (bytes.len() - HEADER_BYTES) as u64;
    let sum = xxh3_64(&bytes[HEADER_BYTES..]);
    bytes[HEADER_BYTES - 16..HEADER_BYTES - 8].copy_from_slice(&body_len.to_le_bytes());
    bytes[HEADER_BYTES - 8..HEADER_BYTES].copy_from_slice(&sum.to_le_bytes());
}

/// Reads an entry, refusing it unless it was written for exactly `key`;
/// its diagnostics are attached to `file`.
pub fn decode(bytes: &[u8], key: &EntryKey, file: &Arc<Path>) -> Result<CompiledFile, Refusal> {
    let mut header = Reader::new(bytes);
    let truncated = Refusal::Truncated(bytes.len());
    let magic = header.take(8).map_err(|_| truncated.clone())?;
    if magic != MAGIC {
        return Err(Refusal::NotAnEntry);
    }
    let format = header.u32().map_err(|_| truncated.clone())?;
    if format != FORMAT_VERSION {
        return Err(Refusal::OtherFormat(format));
    }
    let fixed = (|| {
        Ok::<_, Refusal>((
            header.u32()?,
            header.u128()?,
            header.u128()?,
            header.u64()?,
            header.u64()?,
            header.u64()?,
        ))
    })()
    .map_err(|_| truncated.clone())?;
    let (reserved, program, content, settings, body_len, checksum) = fixed;
    if reserved != 0 {
        return Err(Refusal::Malformed("reserved header bits set"));
    }
    if program != key.program {
        return Err(Refusal::OtherProgram);
    }
    if settings != key.settings {
        return Err(Refusal::OtherSettings);
    }
    let body = header.rest();
    let body_len = usize::try_from(body_len).map_err(|_| truncated.clone())?;
    if body.len() < body_len {
        return Err(truncated);
    }
    if body.len() > body_len {
        return Err(Refusal::TrailingBytes(body.len() - body_len));
    }
    if xxh3_64(body) != checksum {
        return Err(Refusal::Checksum);
    }
    let mut r = Reader::new(body);
    if r.bytes()? != key.path.as_slice() {
        return Err(Refusal::OtherFile);
    }
    if content != key.content {
        return Err(Refusal::Stale);
    }
    let compiled = read_file(&mut r, file)?;
    if !r.rest().is_empty() {
        return Err(Refusal::Malformed("bytes after the last account"));
    }
    Ok(compiled)
}

fn write_file(w: &mut Writer, file: &CompiledFile) {
    w.len(file.diagnostics.len());
    for d in &file.diagnostics {
        w.u8(match d.severity {
            Severity::Error => 0,
            Severity::Warning => 1,
        });
        w.u32(d.line);
        w.str(&d.message);
        w.opt_str(d.fix.as_deref());
    }
    w.len(file.accounts.len());
    for compiled in &file.accounts {
        write_account(w, compiled);
    }
}

fn write_account(w: &mut Writer, compiled: &CompiledAccount) {
    let a = &compiled.account;
    w.str(&a.id);
    w.u32(compiled.line);
    w.str(a.region.code());
    w.opt_target(a.forward_to.as_ref());
    w.u8(u8::from(a.ring_number_user_first));
    w.u8(match a.when_user_has_no_phone {
        NoPhonePolicy::Reject => 0,
        NoPhonePolicy::Forward => 1,
    });
    w.opt_str(a.contact_template.as_ref().map(ContactTemplate::as_str));
    w.u8(match a.diversion {
        None => 0,
        Some(DiversionStyle::Header) => 1,
        Some(DiversionStyle::HistoryInfo) => 2,
        Some(DiversionStyle::Off) => 3,
    });
    w.opt_u32(a.ring_seconds);
    w.u64(a.contacts_listed as u64);
    w.len(a.users.len());
    for user in &a.users {
        w.str(&user.id);
        w.opt_str(user.name.as_deref());
        w.opt_target(user.phone.as_ref());
    }
    w.len(a.numbers.len());
    for (number, &line) in a.numbers.iter().zip(&compiled.number_lines) {
        w.u64(number.number.value());
        w.opt_u32(number.user);
        w.opt_target(number.forward_to.as_ref());
        w.u8(match number.on_no_answer {
            OnNoAnswer::None => 0,
            OnNoAnswer::Forward => 1,
        });
        w.opt_u32(number.ring_seconds);
        w.u32(line);
    }
    w.len(a.contacts.len());
    for &n in a.contacts.numbers() {
        w.u64(n);
    }
    for &u in a.contacts.users() {
        w.u32(u);
    }
}

fn read_file(r: &mut Reader<'_>, file: &Arc<Path>) -> Result<CompiledFile, Refusal> {
    // Each diagnostic takes at least 14 bytes: severity, line, two lengths
    // and the fix's tag.
    let count = r.count(14)?;
    let mut diagnostics = Vec::with_capacity(count);
    for _ in 0..count {
        let severity = r.u8()?;
        let line = r.u32()?;
        let message = r.str()?;
        let fix = r.opt_str()?;
        let mut d = match severity {
            0 => Diagnostic::error(file, line, message),
            1 => Diagnostic::warning(file, line, message),
            _ => return Err(Refusal::Malformed("unknown severity")),
        };
        d.fix = fix;
        diagnostics.push(d);
    }
    // An account takes at least 40 bytes.
    let count = r.count(40)?;
    let mut accounts = Vec::with_capacity(count);
    for _ in 0..count {
        accounts.push(read_account(r)?);
    }
    Ok(CompiledFile {
        accounts,
        diagnostics,
    })
}

fn read_account(r: &mut Reader<'_>) -> Result<CompiledAccount, Refusal> {
    let id = r.str()?;
    let line = r.u32()?;
    let region =
        Region::from_code(&r.str()?).map_err(|_| Refusal::Malformed("unknown region code"))?;
    let forward_to = r.opt_target()?;
    let ring_number_user_first = r.bool()?;
    let when_user_has_no_phone = match r.u8()? {
        0 => NoPhonePolicy::Reject,
        1 => NoPhonePolicy::Forward,
        _ => return Err(Refusal::Malformed("unknown no-phone policy")),
    };
    let contact_template = r
        .opt_str()?
        .map(|t| ContactTemplate::parse(&t))
        .transpose()
        .map_err(|_| Refusal::Malformed("contact template"))?;
    let diversion = match r.u8()? {
        0 => None,
        1 => Some(DiversionStyle::Header),
        2 => Some(DiversionStyle::HistoryInfo),
        3 => Some(DiversionStyle::Off),
        _ => return Err(Refusal::Malformed("unknown diversion style")),
    };
    let ring_seconds = r.opt_u32()?;
    let contacts_listed =
        usize::try_from(r.u64()?).map_err(|_| Refusal::Malformed("contact count out of range"))?;
    // A user takes at least 6 bytes: an id length and two tags.
    let count = r.count(6)?;
    let mut users = Vec::with_capacity(count);
    for _ in 0..count {
        users.push(User {
            id: r.str()?.into(),
            name: r.opt_str()?.map(Into::into),
            phone: r.opt_target()?,
        });
    }
    let known = |index: UserIndex| (index as usize) < users.len();
    // A number takes at least 19 bytes.
    let count = r.count(19)?;
    let mut numbers = Vec::with_capacity(count);
    let mut number_lines = Vec::with_capacity(count);
    for _ in 0..count {
        let number = r.e164()?;
        let user = r.opt_u32()?;
        if user.is_some_and(|u| !known(u)) {
            return Err(Refusal::Malformed("a number's user is out of range"));
        }
        let forward_to = r.opt_target()?;
        let on_no_answer = match r.u8()? {
            0 => OnNoAnswer::None,
            1 => OnNoAnswer::Forward,
            _ => return Err(Refusal::Malformed("unknown on_no_answer")),
        };
        let ring_seconds = r.opt_u32()?;
        numbers.push(Number {
            number,
            user,
            forward_to,
            on_no_answer,
            ring_seconds,
        });
        number_lines.push(r.u32()?);
    }
    let count = r.count(12)?;
    let contact_numbers: Vec<u64> = r
        .take(count * 8)?
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    let contact_users: Vec<UserIndex> = r
        .take(count * 4)?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    if !contact_users.iter().all(|&u| known(u)) {
        return Err(Refusal::Malformed("a contact's user is out of range"));
    }
    let contacts = Contacts::from_sorted(contact_numbers, contact_users)
        .map_err(|_| Refusal::Malformed("contacts not sorted E.164 numbers"))?;
    let account = Account {
        id: id.into(),
        region,
        forward_to,
        ring_number_user_first,
        when_user_has_no_phone,
        contact_template,
        diversion,
        ring_seconds,
        users,
        numbers,
        contacts,
        contacts_listed,
    };
    Ok(CompiledAccount {
        account: Arc::new(account),
        line,
        number_lines,
    })
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Counts and lengths are u32: a data file is at most 4 GiB.
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
        }
    }
    fn opt_target(&mut self, t: Option<&Target>) {
        match t {
            None => self.u8(0),
            Some(Target::Number(n)) => {
                self.u8(1);
                self.u64(n.value());
            }
            Some(Target::Uri(uri)) => {
                self.u8(2);
                self.str(uri);
            }
        }
    }
}

/// A cursor that refuses to read past the end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        if n > self.rest.len() {
            return Err(Refusal::Malformed("a length runs past the end"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Refusal> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Refusal> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, Refusal> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Refusal> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, Refusal> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    fn bool(&mut self) -> Result<bool, Refusal> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Refusal::Malformed("a flag is neither 0 nor 1")),
        }
    }

    /// A count of items each at least `min_bytes` long: refused when the
    /// rest could not hold that many, before anything is allocated.
    fn count(&mut self, min_bytes: usize) -> Result<usize, Refusal> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes) > self.rest.len() {
            return Err(Refusal::Malformed("a count runs past the end"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Refusal> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, Refusal> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| Refusal::Malformed("text is not UTF-8"))
    }
    fn opt_str(&mut self) -> Result<Option<String>, Refusal> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(Refusal::Malformed("bad option tag")),
        }
    }
    fn opt_u32(&mut self) -> Result<Option<u32>, Refusal> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.u32().map(Some),
            _ => Err(Refusal::Malformed("bad option tag")),
        }
    }
    fn e164(&mut self) -> Result<E164, Refusal> {
        E164::from_value(self.u64()?).ok_or(Refusal::Malformed("not an E.164 number"))
    }
    fn opt_target(&mut self) -> Result<Option<Target>, Refusal> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.e164().map(|n| Some(Target::Number(n))),
            2 => self.str().map(|s| Some(Target::Uri(s.into()))),
            _ => Err(Refusal::Malformed("bad target tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing_data::compile::compile_file;
    use crate::routing_data::yaml::YamlLimits;
    use proptest::prelude::*;

    /// Every field the format carries, and a warning.
    const DATA: &str = "accounts:
  - id: acme
    region: GB
    forward_to: \"sip:desk@pbx.example.net\"
    ring_number_user_first: false
    when_user_has_no_phone: forward
    contact_template: \"sip:{number}@{source_host};user=phone\"
    diversion: history-info
    ring_seconds: 25
    on_no_answer: forward
    users:
      - id: bob
        name: Bob
        phone: \"+442071234567\"
        numbers: [\"+442079460000\"]
      - id: carol
        phone: \"sip:carol@pbx.example.net\"
      - id: dave
    numbers:
      - number: \"+442079460000\"
      - number: \"+442079460001\"
        forward_to: \"+442079460099\"
        user: carol
        on_no_answer: none
        ring_seconds: 12
    contacts:
      - phones: [\"+16505550123\", \"020 7946 0123\"]
        user: bob
      - phones: [\"+16505550123\"]
        user: carol
      - phones: [\"+16505550999\"]
  - id: other
    numbers:
      - number: \"+18005550100\"
";

    fn file() -> Arc<Path> {
        Arc::from(Path::new("/data/acme.yaml"))
    }

    fn key() -> EntryKey {
        EntryKey {
            program: 0x1234_5678_9abc_def0_0fed_cba9_8765_4321,
            settings: 42,
            path: b"/data/acme.yaml".to_vec(),
            content: 7,
        }
    }

    fn compiled() -> CompiledFile {
        compile_file(&file(), DATA, &Region::us(), &YamlLimits::default())
    }

    fn assert_same(a: &CompiledFile, b: &CompiledFile) {
        assert_eq!(a.diagnostics, b.diagnostics);
        assert_eq!(a.accounts.len(), b.accounts.len());
        for (x, y) in a.accounts.iter().zip(&b.accounts) {
            assert_eq!(x.account, y.account);
            assert_eq!(x.line, y.line);
            assert_eq!(x.number_lines, y.number_lines);
        }
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let original = compiled();
        assert!(
            original.diagnostics.iter().any(|d| d.line == 29),
            "the contact clash warns: {:?}",
            original.diagnostics
        );
        assert_eq!(original.accounts[0].account.contacts.len(), 2);
        let bytes = encode(&key(), &original);
        let read = decode(&bytes, &key(), &file()).expect("its own entry");
        assert_same(&original, &read);
    }

    #[test]
    fn an_entry_for_another_key_is_refused_as_such() {
        let bytes = encode(&key(), &compiled());
        let other = |change: fn(&mut EntryKey)| {
            let mut k = key();
            change(&mut k);
            decode(&bytes, &k, &file()).map(|_| ()).unwrap_err()
        };
        assert_eq!(other(|k| k.program ^= 1), Refusal::OtherProgram);
        assert_eq!(other(|k| k.settings += 1), Refusal::OtherSettings);
        assert_eq!(
            other(|k| k.path = b"/data/other.yaml".to_vec()),
            Refusal::OtherFile
        );
        assert_eq!(other(|k| k.content += 1), Refusal::Stale);
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(
            decode(&newer, &key(), &file()).map(|_| ()).unwrap_err(),
            Refusal::OtherFormat(FORMAT_VERSION + 1)
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(&key(), &compiled());
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len], &key(), &file()).is_err(),
                "accepted {len} of {} bytes",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer, &key(), &file()).map(|_| ()).unwrap_err(),
            Refusal::TrailingBytes(1)
        );
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = encode(&key(), &compiled());
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut damaged = bytes.clone();
                damaged[i] ^= bit;
                assert!(
                    decode(&damaged, &key(), &file()).is_err(),
                    "accepted a flip of bit {bit:#x} at byte {i}"
                );
            }
        }
    }

    /// A body that passes the checksum but lies inside (what a bug in the
    /// writer, or a forged entry, would produce) is still refused.
    #[test]
    fn a_well_summed_body_that_lies_is_refused() {
        let original = compiled();
        let reseal = |mut bytes: Vec<u8>| {
            seal(&mut bytes);
            bytes
        };
        let good = encode(&key(), &original);
        // An entry of `acme` alone ends with its contacts: two numbers,
        // then two users, so the last 4 bytes are the last contact's user.
        let acme_only = CompiledFile {
            accounts: vec![CompiledAccount {
                account: Arc::clone(&original.accounts[0].account),
                line: 2,
                number_lines: original.accounts[0].number_lines.clone(),
            }],
            diagnostics: Vec::new(),
        };
        let mut bytes = encode(&key(), &acme_only);
        let end = bytes.len();
        bytes[end - 4..].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(
            decode(&reseal(bytes), &key(), &file())
                .map(|_| ())
                .unwrap_err(),
            Refusal::Malformed("a contact's user is out of range")
        );
        // Contacts out of order.
        let mut bytes = encode(&key(), &acme_only);
        let numbers_at = bytes.len() - 2 * 4 - 2 * 8;
        let (a, b) = bytes[numbers_at..numbers_at + 16].split_at(8);
        let swapped: Vec<u8> = b.iter().chain(a).copied().collect();
        bytes[numbers_at..numbers_at + 16].copy_from_slice(&swapped);
        assert_eq!(
            decode(&reseal(bytes), &key(), &file())
                .map(|_| ())
                .unwrap_err(),
            Refusal::Malformed("contacts not sorted E.164 numbers")
        );
        assert!(decode(&reseal(good), &key(), &file()).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary bytes, with or without a valid header in front: never
        /// a panic, never an entry.
        #[test]
        fn arbitrary_bytes_are_refused(tail in proptest::collection::vec(any::<u8>(), 0..512), keep in 0usize..200) {
            let good = encode(&key(), &compiled());
            let mut bytes = good[..keep.min(good.len())].to_vec();
            bytes.extend_from_slice(&tail);
            prop_assume!(bytes != good);
            prop_assert!(decode(&bytes, &key(), &file()).is_err());
        }

        /// A few bytes overwritten anywhere: refused.
        #[test]
        fn overwritten_bytes_are_refused(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let good = encode(&key(), &compiled());
            let mut bytes = good.clone();
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            prop_assume!(bytes != good);
            prop_assert!(decode(&bytes, &key(), &file()).is_err());
        }
    }
}
