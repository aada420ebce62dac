//! What changed for routing between two tables (`switchboard diff`, the
//! reload audit trail): accounts, numbers, forwarding, phones, contacts and
//! switches, compared by identity (ids and E.164 numbers), never by position.

use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::assemble::assemble;
use super::compile::{CompiledFile, compile_file};
use super::loader::Loader;
use super::parallel::{self, WorkerPanicked};
use super::report::Rejected;
use super::yaml::YamlLimits;

use crate::routing::{
    Account, E164, NoPhonePolicy, Number, OnNoAnswer, Region, RoutingTable, Target, UserIndex,
};

/// Every routing change between two tables, by account.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TableDiff {
    /// Ids of accounts only the new table has, sorted.
    pub accounts_added: Vec<String>,
    /// Ids of accounts only the old table has, sorted.
    pub accounts_removed: Vec<String>,
    /// Accounts in both tables whose routing changed, sorted by id.
    pub accounts: Vec<AccountDiff>,
}

/// The routing changes of one account present in both tables.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AccountDiff {
    pub account: String,
    /// How many changes of each kind (kept whole by `truncated`).
    pub counts: ChangeCounts,
    pub numbers_added: Vec<NumberEntry>,
    pub numbers_removed: Vec<NumberEntry>,
    pub numbers_reassigned: Vec<OwnerChange>,
    pub forwarding_changed: Vec<ForwardingChange>,
    pub phones_added: Vec<PhoneChange>,
    pub phones_changed: Vec<PhoneChange>,
    pub phones_removed: Vec<PhoneChange>,
    pub contacts_reassigned: Vec<OwnerChange>,
    pub switches_changed: Vec<SwitchChange>,
}

/// A number added or removed, as it is in the table that has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NumberEntry {
    pub number: String,
    /// Id of the user it is assigned to.
    pub user: Option<String>,
    pub forward_to: Option<String>,
}

/// A number or contact whose user changed (`None`: no user).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnerChange {
    pub number: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A forwarding target that changed: the account's default (`number` is
/// `None`) or a number's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForwardingChange {
    pub number: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A user's phone added (`from` is `None`), changed or removed (`to` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhoneChange {
    pub user: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A switch that changed: the account's (`number` is `None`) or a number's
/// own (`on_no_answer`). Values as spelled in the data; `None` is the
/// server's default (templates, diversion).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SwitchChange {
    pub switch: String,
    pub number: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// How many changes of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChangeCounts {
    pub accounts_added: usize,
    pub accounts_removed: usize,
    pub numbers_added: usize,
    pub numbers_removed: usize,
    pub numbers_reassigned: usize,
    pub forwarding_changed: usize,
    pub phones_added: usize,
    pub phones_changed: usize,
    pub phones_removed: usize,
    pub contacts_reassigned: usize,
    pub switches_changed: usize,
}

impl ChangeCounts {
    fn add(&mut self, other: &ChangeCounts) {
        self.accounts_added += other.accounts_added;
        self.accounts_removed += other.accounts_removed;
        self.numbers_added += other.numbers_added;
        self.numbers_removed += other.numbers_removed;
        self.numbers_reassigned += other.numbers_reassigned;
        self.forwarding_changed += other.forwarding_changed;
        self.phones_added += other.phones_added;
        self.phones_changed += other.phones_changed;
        self.phones_removed += other.phones_removed;
        self.contacts_reassigned += other.contacts_reassigned;
        self.switches_changed += other.switches_changed;
    }

    /// Each kind with its count and its singular and plural wording.
    fn kinds(&self) -> [(usize, &'static str, &'static str); 11] {
        [
            (self.accounts_added, "account added", "accounts added"),
            (self.accounts_removed, "account removed", "accounts removed"),
            (self.numbers_added, "number added", "numbers added"),
            (self.numbers_removed, "number removed", "numbers removed"),
            (
                self.numbers_reassigned,
                "number reassigned",
                "numbers reassigned",
            ),
            (
                self.forwarding_changed,
                "forwarding target changed",
                "forwarding targets changed",
            ),
            (self.phones_added, "phone added", "phones added"),
            (self.phones_changed, "phone changed", "phones changed"),
            (self.phones_removed, "phone removed", "phones removed"),
            (
                self.contacts_reassigned,
                "contact changed owner",
                "contacts changed owner",
            ),
            (self.switches_changed, "switch changed", "switches changed"),
        ]
    }

    /// No change at all.
    pub fn is_zero(&self) -> bool {
        *self == ChangeCounts::default()
    }
}

impl fmt::Display for ChangeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (count, one, many) in self.kinds() {
            if count == 0 {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{count} {}", if count == 1 { one } else { many })?;
        }
        if first {
            f.write_str("no routing change")?;
        }
        Ok(())
    }
}

impl TableDiff {
    /// Nothing that routes a call changed.
    pub fn is_empty(&self) -> bool {
        self.counts().is_zero()
    }

    /// How many changes of each kind, summed over accounts.
    pub fn counts(&self) -> ChangeCounts {
        let mut counts = ChangeCounts {
            accounts_added: self.accounts_added.len(),
            accounts_removed: self.accounts_removed.len(),
            ..ChangeCounts::default()
        };
        for account in &self.accounts {
            counts.add(&account.counts);
        }
        counts
    }

    /// The same diff keeping at most `per_kind` examples of each kind in each
    /// account (counts unchanged). Added and removed accounts stay whole.
    pub fn truncated(&self, per_kind: usize) -> TableDiff {
        fn cut<T: Clone>(items: &[T], n: usize) -> Vec<T> {
            items[..items.len().min(n)].to_vec()
        }
        TableDiff {
            accounts_added: self.accounts_added.clone(),
            accounts_removed: self.accounts_removed.clone(),
            accounts: self
                .accounts
                .iter()
                .map(|a| AccountDiff {
                    account: a.account.clone(),
                    counts: a.counts,
                    numbers_added: cut(&a.numbers_added, per_kind),
                    numbers_removed: cut(&a.numbers_removed, per_kind),
                    numbers_reassigned: cut(&a.numbers_reassigned, per_kind),
                    forwarding_changed: cut(&a.forwarding_changed, per_kind),
                    phones_added: cut(&a.phones_added, per_kind),
                    phones_changed: cut(&a.phones_changed, per_kind),
                    phones_removed: cut(&a.phones_removed, per_kind),
                    contacts_reassigned: cut(&a.contacts_reassigned, per_kind),
                    switches_changed: cut(&a.switches_changed, per_kind),
                })
                .collect(),
        }
    }
}

impl TableDiff {
    /// The diff as `switchboard diff` prints it: a line per added or removed
    /// account, a section per changed account with at most `per_kind` lines
    /// of each kind (contacts: one line with at most 5 examples), and a last
    /// line with the counts.
    pub fn to_text(&self, per_kind: usize) -> String {
        let mut out = String::new();
        for id in &self.accounts_added {
            let _ = writeln!(out, "account {id}: added");
        }
        for id in &self.accounts_removed {
            let _ = writeln!(out, "account {id}: removed");
        }
        for a in &self.accounts {
            a.write_text(&mut out, per_kind);
        }
        let _ = writeln!(out, "{}", self.counts());
        out
    }
}

impl AccountDiff {
    /// This account's section of [`TableDiff::to_text`].
    fn write_text(&self, out: &mut String, per_kind: usize) {
        let _ = writeln!(out, "account {}:", self.account);
        let c = &self.counts;
        let number_entry = |verb: &'static str| {
            move |n: &NumberEntry| {
                let mut what = n.user.clone().unwrap_or_else(|| "no user".to_owned());
                if let Some(f) = &n.forward_to {
                    let _ = write!(what, ", forward_to {f}");
                }
                format!("number {} {verb} ({what})", n.number)
            }
        };
        write_kind(
            out,
            &self.numbers_added,
            per_kind,
            c.numbers_added,
            "numbers added",
            number_entry("added"),
        );
        write_kind(
            out,
            &self.numbers_removed,
            per_kind,
            c.numbers_removed,
            "numbers removed",
            number_entry("removed"),
        );
        write_kind(
            out,
            &self.numbers_reassigned,
            per_kind,
            c.numbers_reassigned,
            "numbers reassigned",
            |n| {
                format!(
                    "number {}: {} → {}",
                    n.number,
                    or_none(&n.from),
                    or_none(&n.to)
                )
            },
        );
        write_kind(
            out,
            &self.forwarding_changed,
            per_kind,
            c.forwarding_changed,
            "forwarding targets changed",
            |f| {
                let whose = match &f.number {
                    Some(n) => format!("number {n} forward_to"),
                    None => "forward_to".to_owned(),
                };
                format!("{whose}: {} → {}", or_none(&f.from), or_none(&f.to))
            },
        );
        for (list, total, what) in [
            (&self.phones_added, c.phones_added, "phones added"),
            (&self.phones_changed, c.phones_changed, "phones changed"),
            (&self.phones_removed, c.phones_removed, "phones removed"),
        ] {
            write_kind(out, list, per_kind, total, what, |p| {
                format!(
                    "user {}: phone {} → {}",
                    p.user,
                    or_none(&p.from),
                    or_none(&p.to)
                )
            });
        }
        self.write_contacts(out, per_kind);
        write_kind(
            out,
            &self.switches_changed,
            per_kind,
            c.switches_changed,
            "switches changed",
            |s| {
                let whose = match &s.number {
                    Some(n) => format!("{} of number {n}", s.switch),
                    None => s.switch.clone(),
                };
                format!(
                    "switch {whose}: {} → {}",
                    or_default(&s.from),
                    or_default(&s.to)
                )
            },
        );
    }

    /// The one line on contacts: how many changed owner, with at most
    /// [`CONTACT_EXAMPLES`] of them (an export can move thousands).
    fn write_contacts(&self, out: &mut String, per_kind: usize) {
        let total = self.counts.contacts_reassigned;
        if total == 0 {
            return;
        }
        let examples: Vec<String> = self
            .contacts_reassigned
            .iter()
            .take(per_kind.min(CONTACT_EXAMPLES))
            .map(|o| format!("{}: {} → {}", o.number, or_none(&o.from), or_none(&o.to)))
            .collect();
        let etc = if total > examples.len() { ", ..." } else { "" };
        let _ = writeln!(
            out,
            "  contacts: {total} changed owner, e.g. {}{etc}",
            examples.join(", ")
        );
    }
}

/// One kind of change in an account's section of the text: a line for
/// each of the first `per_kind` of `items`, then, when the account has
/// more (`total` counts them all, `items` may be truncated), how many more.
fn write_kind<T>(
    out: &mut String,
    items: &[T],
    per_kind: usize,
    total: usize,
    what: &str,
    line: impl Fn(&T) -> String,
) {
    for item in items.iter().take(per_kind) {
        let _ = writeln!(out, "  {}", line(item));
    }
    let shown = items.len().min(per_kind);
    if total > shown {
        let _ = writeln!(out, "  ... and {} more {what}", total - shown);
    }
}

/// A value of the text, "none" when absent.
fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

/// A switch's value in the text, "default" when the data leaves it out.
fn or_default(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("default")
}

/// Contacts whose owner changed that the text names, per account.
pub const CONTACT_EXAMPLES: usize = 5;

/// The routing changes from `old` to `new`.
///
/// Accounts are matched by id. An account that is the same `Arc` in both
/// tables (a reload reuses unchanged accounts) is skipped without a look;
/// every other account present in both is walked once, in parallel.
///
/// Fails, rather than returning a diff with accounts missing, if the walk
/// of an account panicked (a bug: no data makes it panic).
pub fn try_diff_tables(
    old: &RoutingTable,
    new: &RoutingTable,
) -> Result<TableDiff, WorkerPanicked> {
    let old_by_id: FxHashMap<&str, &Arc<Account>> =
        old.accounts().iter().map(|a| (&*a.id, a)).collect();
    let new_by_id: FxHashMap<&str, &Arc<Account>> =
        new.accounts().iter().map(|a| (&*a.id, a)).collect();
    let mut accounts_added: Vec<String> = new_by_id
        .keys()
        .filter(|id| !old_by_id.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    let mut accounts_removed: Vec<String> = old_by_id
        .keys()
        .filter(|id| !new_by_id.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    accounts_added.sort();
    accounts_removed.sort();

    let pairs: Vec<(&Account, &Account)> = new
        .accounts()
        .iter()
        .filter_map(|n| {
            let o = old_by_id.get(&*n.id)?;
            (!Arc::ptr_eq(o, n)).then_some((&***o, &**n))
        })
        .collect();
    let mut accounts = diff_pairs(&pairs)?;
    accounts.sort_by(|a, b| a.account.cmp(&b.account));
    Ok(TableDiff {
        accounts_added,
        accounts_removed,
        accounts,
    })
}

/// [`try_diff_tables`] for a caller with no use for the error, `switchboard
/// diff`'s command line, which ends the command with a panic's message
/// either way.
///
/// # Panics
///
/// If the walk of an account panicked, with that panic's message.
pub fn diff_tables(old: &RoutingTable, new: &RoutingTable) -> TableDiff {
    try_diff_tables(old, new).unwrap_or_else(|e| panic!("comparing the routing tables: {e}"))
}

/// `diff_accounts` over `pairs`, spread over the machine's cores when there
/// is enough work to pay for the threads.
fn diff_pairs(pairs: &[(&Account, &Account)]) -> Result<Vec<AccountDiff>, WorkerPanicked> {
    let work: usize = pairs
        .iter()
        .map(|(o, _)| o.contacts.len() + o.numbers.len())
        .sum();
    let workers = if work < 50_000 { 1 } else { parallel::cores() };
    // Accounts differ in size: the map's threads take the next account as
    // they free up. The order does not matter: the caller sorts by id.
    let diffs = parallel::parallel_map(pairs, workers, |(o, n)| diff_accounts(o, n))?;
    Ok(diffs.into_iter().flatten().collect())
}

fn target(t: &Option<Target>) -> Option<String> {
    t.as_ref().map(Target::to_string)
}

fn no_phone(p: NoPhonePolicy) -> &'static str {
    match p {
        NoPhonePolicy::Reject => "reject",
        NoPhonePolicy::Forward => "forward",
    }
}

fn no_answer(p: OnNoAnswer) -> &'static str {
    match p {
        OnNoAnswer::None => "none",
        OnNoAnswer::Forward => "forward",
    }
}

/// The routing changes of one account (the same id in both tables), `None`
/// when there are none. Users are matched by id, numbers and contacts by
/// E.164 number; names and the order of lists do not count.
pub fn diff_accounts(old: &Account, new: &Account) -> Option<AccountDiff> {
    let users = UserMatch::new(old, new);
    let mut d = AccountDiff {
        account: new.id.to_string(),
        ..AccountDiff::default()
    };
    diff_phones(old, new, &users, &mut d);
    diff_account_settings(old, new, &mut d);
    // After the account's settings: its own switches come first in
    // `switches_changed`, then the numbers' `on_no_answer`.
    diff_numbers(old, new, &users, &mut d);
    d.contacts_reassigned = diff_contacts(old, new, &users);
    d.counts = ChangeCounts {
        numbers_added: d.numbers_added.len(),
        numbers_removed: d.numbers_removed.len(),
        numbers_reassigned: d.numbers_reassigned.len(),
        forwarding_changed: d.forwarding_changed.len(),
        phones_added: d.phones_added.len(),
        phones_changed: d.phones_changed.len(),
        phones_removed: d.phones_removed.len(),
        contacts_reassigned: d.contacts_reassigned.len(),
        switches_changed: d.switches_changed.len(),
        ..ChangeCounts::default()
    };
    (!d.counts.is_zero()).then_some(d)
}

/// The users of an account's old and new versions, matched by id.
struct UserMatch<'a> {
    /// The new version's users by id.
    new_by_id: FxHashMap<&'a str, UserIndex>,
    /// Old index -> new index of the same id.
    remap: Vec<Option<UserIndex>>,
}

impl<'a> UserMatch<'a> {
    fn new(old: &Account, new: &'a Account) -> Self {
        let new_by_id: FxHashMap<&str, UserIndex> = new
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (&*u.id, i as UserIndex))
            .collect();
        let remap = old
            .users
            .iter()
            .map(|u| new_by_id.get(&*u.id).copied())
            .collect();
        UserMatch { new_by_id, remap }
    }

    /// Whether an old owner and a new one are the same user (or both none).
    fn same_owner(&self, o: Option<UserIndex>, n: Option<UserIndex>) -> bool {
        match (o, n) {
            (None, None) => true,
            (Some(o), Some(n)) => self.remap.get(o as usize).copied().flatten() == Some(n),
            _ => false,
        }
    }
}

/// The id of user `i` of `account`.
fn user_id(account: &Account, i: Option<UserIndex>) -> Option<String> {
    i.and_then(|i| account.user(i)).map(|u| u.id.to_string())
}

/// Phones added, changed and removed, each sorted by user id.
fn diff_phones(old: &Account, new: &Account, users: &UserMatch<'_>, d: &mut AccountDiff) {
    let mut old_users: FxHashMap<&str, ()> = FxHashMap::default();
    for u in &old.users {
        old_users.insert(&u.id, ());
        let now = users.new_by_id.get(&*u.id).and_then(|&i| new.user(i));
        let now_phone = now.and_then(|n| n.phone.as_ref());
        if u.phone.as_ref() == now_phone {
            continue;
        }
        let change = PhoneChange {
            user: u.id.to_string(),
            from: target(&u.phone),
            to: now_phone.map(Target::to_string),
        };
        match (&u.phone, now_phone) {
            (None, _) => d.phones_added.push(change),
            (_, None) => d.phones_removed.push(change),
            _ => d.phones_changed.push(change),
        }
    }
    for u in &new.users {
        if u.phone.is_some() && !old_users.contains_key(&*u.id) {
            d.phones_added.push(PhoneChange {
                user: u.id.to_string(),
                from: None,
                to: target(&u.phone),
            });
        }
    }
    d.phones_added.sort_by(|a, b| a.user.cmp(&b.user));
    d.phones_changed.sort_by(|a, b| a.user.cmp(&b.user));
    d.phones_removed.sort_by(|a, b| a.user.cmp(&b.user));
}

/// The account's own switches and default forwarding.
fn diff_account_settings(old: &Account, new: &Account, d: &mut AccountDiff) {
    if old.forward_to != new.forward_to {
        d.forwarding_changed.push(ForwardingChange {
            number: None,
            from: target(&old.forward_to),
            to: target(&new.forward_to),
        });
    }
    let mut switch =
        |name: &str, number: Option<String>, from: Option<String>, to: Option<String>| {
            if from != to {
                d.switches_changed.push(SwitchChange {
                    switch: name.to_string(),
                    number,
                    from,
                    to,
                });
            }
        };
    switch(
        "ring_number_user_first",
        None,
        Some(old.ring_number_user_first.to_string()),
        Some(new.ring_number_user_first.to_string()),
    );
    switch(
        "when_user_has_no_phone",
        None,
        Some(no_phone(old.when_user_has_no_phone).into()),
        Some(no_phone(new.when_user_has_no_phone).into()),
    );
    switch(
        "region",
        None,
        Some(old.region.code().into()),
        Some(new.region.code().into()),
    );
    switch(
        "contact_template",
        None,
        old.contact_template.as_ref().map(|t| t.as_str().into()),
        new.contact_template.as_ref().map(|t| t.as_str().into()),
    );
    switch(
        "diversion",
        None,
        old.diversion.map(|s| s.as_str().into()),
        new.diversion.map(|s| s.as_str().into()),
    );
    switch(
        "ring_seconds",
        None,
        old.ring_seconds.map(|s| s.to_string()),
        new.ring_seconds.map(|s| s.to_string()),
    );
}

/// Numbers added, removed and reassigned, each sorted by number; their own
/// forwarding and `on_no_answer` after the account's, by number.
fn diff_numbers(old: &Account, new: &Account, users: &UserMatch<'_>, d: &mut AccountDiff) {
    // Numbers, in the order of the new data then the removed ones.
    let old_numbers: FxHashMap<E164, &Number> = old.numbers.iter().map(|n| (n.number, n)).collect();
    let new_numbers: FxHashMap<E164, &Number> = new.numbers.iter().map(|n| (n.number, n)).collect();
    let mut on_no_answer = Vec::new();
    for n in &new.numbers {
        let Some(o) = old_numbers.get(&n.number) else {
            d.numbers_added.push(NumberEntry {
                number: n.number.to_string(),
                user: user_id(new, n.user),
                forward_to: target(&n.forward_to),
            });
            continue;
        };
        if !users.same_owner(o.user, n.user) {
            d.numbers_reassigned.push(OwnerChange {
                number: n.number.to_string(),
                from: user_id(old, o.user),
                to: user_id(new, n.user),
            });
        }
        if o.forward_to != n.forward_to {
            d.forwarding_changed.push(ForwardingChange {
                number: Some(n.number.to_string()),
                from: target(&o.forward_to),
                to: target(&n.forward_to),
            });
        }
        if o.on_no_answer != n.on_no_answer {
            on_no_answer.push(SwitchChange {
                switch: "on_no_answer".into(),
                number: Some(n.number.to_string()),
                from: Some(no_answer(o.on_no_answer).into()),
                to: Some(no_answer(n.on_no_answer).into()),
            });
        }
        if o.ring_seconds != n.ring_seconds {
            on_no_answer.push(SwitchChange {
                switch: "ring_seconds".into(),
                number: Some(n.number.to_string()),
                from: o.ring_seconds.map(|s| s.to_string()),
                to: n.ring_seconds.map(|s| s.to_string()),
            });
        }
    }
    for o in &old.numbers {
        if !new_numbers.contains_key(&o.number) {
            d.numbers_removed.push(NumberEntry {
                number: o.number.to_string(),
                user: user_id(old, o.user),
                forward_to: target(&o.forward_to),
            });
        }
    }
    let by_number = |a: &String, b: &String| a.cmp(b);
    d.numbers_added
        .sort_by(|a, b| by_number(&a.number, &b.number));
    d.numbers_removed
        .sort_by(|a, b| by_number(&a.number, &b.number));
    d.numbers_reassigned
        .sort_by(|a, b| by_number(&a.number, &b.number));
    // The account's default first, then numbers in order.
    d.forwarding_changed.sort_by(|a, b| a.number.cmp(&b.number));
    on_no_answer.sort_by(|a, b| a.number.cmp(&b.number));
    d.switches_changed.extend(on_no_answer);
}

/// Contacts whose owner changed (assigned, unassigned, moved, added with
/// an owner or removed from one), sorted by number.
fn diff_contacts(old: &Account, new: &Account, users: &UserMatch<'_>) -> Vec<OwnerChange> {
    // One pass over the old map, and over the new one only when it may
    // hold numbers the old one lacks.
    let mut contacts: Vec<(E164, Option<UserIndex>, Option<UserIndex>)> = Vec::new();
    let mut kept = 0usize;
    for (phone, o) in old.contacts.iter() {
        match new.contacts.get(phone) {
            Some(n) if users.same_owner(Some(o), Some(n)) => kept += 1,
            Some(n) => {
                kept += 1;
                contacts.push((phone, Some(o), Some(n)));
            }
            None => contacts.push((phone, Some(o), None)),
        }
    }
    if kept < new.contacts.len() {
        for (phone, n) in new.contacts.iter() {
            if !old.contacts.contains(phone) {
                contacts.push((phone, None, Some(n)));
            }
        }
    }
    contacts.sort_unstable_by_key(|c| c.0);
    contacts
        .into_iter()
        .map(|(phone, o, n)| OwnerChange {
            number: phone.to_string(),
            from: user_id(old, o),
            to: user_id(new, n),
        })
        .collect()
}

/// Loads the two data sets of `switchboard diff`, each validated exactly as
/// [`Loader::load`] does, but compiling a file that both hold under the same
/// name with the same content once: the two tables then share that file's
/// accounts (the same `Arc`), which [`diff_tables`] skips unseen. Two data
/// sets that differ in one file cost about one load, not two, and no more
/// memory: each file's text is dropped once compiled.
///
/// Data that is not valid (or cannot be listed or read) is loaded again by
/// the [`Loader`] itself, so its report is the one `check` prints.
pub fn load_pair(
    old: &Path,
    new: &Path,
    default_region: &Region,
) -> (
    Result<RoutingTable, Rejected>,
    Result<RoutingTable, Rejected>,
) {
    let limits = YamlLimits::default();
    let by_loader = |path: &Path| {
        Loader::new(path, default_region.clone())
            .load()
            .map(|loaded| loaded.table)
    };
    let (Some(old_files), Some(new_files)) = (list_files(old), list_files(new)) else {
        return (by_loader(old), by_loader(new));
    };
    // Pair the files by name: (old index, new index).
    let new_by_name: FxHashMap<&std::ffi::OsStr, usize> = new_files
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((p.file_name()?, i)))
        .collect();
    let mut paired_new = vec![false; new_files.len()];
    let mut tasks: Vec<(Option<usize>, Option<usize>)> = Vec::new();
    for (i, path) in old_files.iter().enumerate() {
        let j = path.file_name().and_then(|n| new_by_name.get(n)).copied();
        if let Some(j) = j {
            paired_new[j] = true;
        }
        tasks.push((Some(i), j));
    }
    tasks.extend(
        (0..new_files.len())
            .filter(|&j| !paired_new[j])
            .map(|j| (None, Some(j))),
    );
    // Largest first, so that no core is left with a big file at the end.
    let size = |p: &PathBuf| fs::metadata(p).map_or(0, |m| m.len());
    tasks.sort_by_cached_key(|&(i, j)| {
        std::cmp::Reverse(
            i.map_or(0, |i| size(&old_files[i])) + j.map_or(0, |j| size(&new_files[j])),
        )
    });
    let compile = |path: &Path, text: &str| {
        let path: Arc<Path> = Arc::from(path);
        Arc::new(compile_file(&path, text, default_region, &limits))
    };
    type Compiled = Option<Arc<CompiledFile>>;
    // A task that panicked (a bug) leaves both its files uncompiled: each
    // side is then loaded by the Loader, whose report names the file if it
    // panics again, as `check` would say it.
    let done = parallel::map_each(&tasks, parallel::cores(), |&(i, j)| {
        let old_path = i.map(|i| old_files[i].as_path());
        let new_path = j.map(|j| new_files[j].as_path());
        let old_text = old_path.and_then(|p| read_text(p, &limits));
        let new_text = new_path.and_then(|p| read_text(p, &limits));
        let old_compiled = old_path
            .zip(old_text.as_deref())
            .map(|(p, t)| compile(p, t));
        let new_compiled = match (&old_compiled, &old_text, new_path, &new_text) {
            (Some(shared), Some(o), Some(_), Some(n)) if o == n => Some(Arc::clone(shared)),
            (_, _, Some(p), Some(n)) => Some(compile(p, n)),
            _ => None,
        };
        (old_compiled, new_compiled)
    });
    let mut old_compiled: Vec<Compiled> = vec![None; old_files.len()];
    let mut new_compiled: Vec<Compiled> = vec![None; new_files.len()];
    for (&(i, j), outcome) in tasks.iter().zip(done) {
        let (o, n) = outcome.unwrap_or_default();
        if let Some(i) = i {
            old_compiled[i] = o;
        }
        if let Some(j) = j {
            new_compiled[j] = n;
        }
    }
    let side = |paths: &[PathBuf], compiled: Vec<Compiled>, root: &Path| {
        let mut files = Vec::with_capacity(paths.len());
        for (path, compiled) in paths.iter().zip(compiled) {
            let Some(compiled) = compiled else {
                return by_loader(root);
            };
            files.push((Arc::from(path.as_path()), compiled));
        }
        match assemble(&files, default_region) {
            (Some(table), _) => Ok(table),
            (None, _) => by_loader(root),
        }
    };
    (
        side(&old_files, old_compiled, old),
        side(&new_files, new_compiled, new),
    )
}

/// The routing files under `path` as [`Loader`] lists them; `None` when it
/// would refuse (unreadable, or a directory with none).
fn list_files(path: &Path) -> Option<Vec<PathBuf>> {
    super::loader::list_files(path)
        .ok()
        .filter(|files| !files.is_empty())
}

/// The file's text, `None` when [`Loader`] would refuse it (unreadable, over
/// the size limit, not UTF-8).
fn read_text(path: &Path, limits: &YamlLimits) -> Option<String> {
    super::loader::read_text(path, limits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml: &str) -> RoutingTable {
        let file: Arc<Path> = Arc::from(Path::new("t.yaml"));
        let compiled = compile_file(&file, yaml, &Region::us(), &YamlLimits::default());
        let (table, report) = assemble(&[(file, Arc::new(compiled))], &Region::us());
        table.unwrap_or_else(|| panic!("invalid test data:\n{report}"))
    }

    const BASE: &str = r#"
accounts:
  - id: acme
    forward_to: "+14155550000"
    users:
      - id: alice
        phone: "+14155550101"
        numbers: ["+18005550100"]
      - id: bob
        phone: "+14155550102"
    numbers:
      - number: "+18005550100"
      - number: "+18005550101"
    contacts:
      - phones: ["+16505550123"]
        user: bob
      - phones: ["+16505550124"]
"#;

    #[test]
    fn the_same_data_has_no_change_and_shared_accounts_are_not_walked() {
        let old = table(BASE);
        assert!(diff_tables(&old, &table(BASE)).is_empty());
        // The same table: every account is the same Arc.
        assert_eq!(diff_tables(&old, &old), TableDiff::default());
    }

    #[test]
    fn users_are_matched_by_id_not_by_position_and_names_do_not_count() {
        let reordered = r#"
accounts:
  - id: acme
    forward_to: "+14155550000"
    users:
      - id: bob
        name: Robert
        phone: "+1 415 555 0102"
      - id: alice
        name: Alice
        phone: "+14155550101"
    numbers:
      - number: "+18005550101"
      - number: "+18005550100"
        user: alice
    contacts:
      - phones: ["+16505550124"]
        name: someone
      - phones: ["+16505550123"]
        user: bob
"#;
        let diff = diff_tables(&table(BASE), &table(reordered));
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(diff.counts().to_string(), "no routing change");
    }

    #[test]
    fn a_removed_user_shows_as_numbers_reassigned_to_none_and_a_phone_removed() {
        let new = BASE
            .replace("      - id: alice\n        phone: \"+14155550101\"\n        numbers: [\"+18005550100\"]\n", "");
        let diff = diff_tables(&table(BASE), &table(&new));
        let acme = &diff.accounts[0];
        assert_eq!(
            acme.numbers_reassigned,
            vec![OwnerChange {
                number: "+18005550100".into(),
                from: Some("alice".into()),
                to: None,
            }]
        );
        assert_eq!(acme.phones_removed.len(), 1);
        assert_eq!(
            diff.counts().to_string(),
            "1 number reassigned, 1 phone removed"
        );
    }

    #[test]
    fn contacts_assigned_unassigned_and_moved_all_change_owner() {
        let new = BASE
            .replace("      - phones: [\"+16505550123\"]\n        user: bob\n", "      - phones: [\"+16505550123\"]\n        user: alice\n")
            .replace("      - phones: [\"+16505550124\"]\n", "      - phones: [\"+16505550124\"]\n        user: bob\n      - phones: [\"+16505550125\"]\n        user: bob\n");
        let diff = diff_tables(&table(BASE), &table(&new));
        let owners: Vec<_> = diff.accounts[0]
            .contacts_reassigned
            .iter()
            .map(|c| (c.number.as_str(), c.from.as_deref(), c.to.as_deref()))
            .collect();
        assert_eq!(
            owners,
            [
                ("+16505550123", Some("bob"), Some("alice")),
                ("+16505550124", None, Some("bob")),
                ("+16505550125", None, Some("bob")),
            ]
        );
        // And back: assigned contacts that vanish become no one's.
        let back = diff_tables(&table(&new), &table(BASE));
        assert_eq!(back.counts().contacts_reassigned, 3);
    }

    #[test]
    fn phones_added_changed_and_removed_and_a_new_user_without_phone_is_no_change() {
        let new = BASE
            .replace("        phone: \"+14155550101\"\n", "        phone: \"sip:alice@pbx.example.net\"\n")
            .replace("        phone: \"+14155550102\"\n", "")
            .replace("    numbers:\n      - number", "      - id: carol\n        phone: \"+14155550103\"\n      - id: dave\n    numbers:\n      - number");
        let diff = diff_tables(&table(BASE), &table(&new));
        let acme = &diff.accounts[0];
        assert_eq!(
            acme.phones_changed[0].to.as_deref(),
            Some("sip:alice@pbx.example.net")
        );
        assert_eq!(acme.phones_removed[0].user, "bob");
        assert_eq!(acme.phones_added[0].user, "carol");
        assert_eq!(
            diff.counts().to_string(),
            "1 phone added, 1 phone changed, 1 phone removed"
        );
    }

    #[test]
    fn a_number_moving_between_accounts_is_removed_from_one_and_added_to_the_other() {
        let two = |owner_of_101: &str| {
            let (acme, beta) = if owner_of_101 == "acme" {
                ("\n      - number: \"+18005550101\"", "")
            } else {
                ("", "\n      - number: \"+18005550101\"")
            };
            format!(
                "accounts:\n  - id: acme\n    forward_to: \"+14155550000\"\n    numbers:\n      - number: \"+18005550100\"{acme}\n  - id: beta\n    forward_to: \"+14155550000\"\n    numbers:\n      - number: \"+18005550200\"{beta}\n"
            )
        };
        let diff = diff_tables(&table(&two("acme")), &table(&two("beta")));
        assert_eq!(diff.accounts.len(), 2);
        assert_eq!(diff.accounts[0].numbers_removed[0].number, "+18005550101");
        assert_eq!(diff.accounts[1].numbers_added[0].number, "+18005550101");
        assert_eq!(
            diff.counts().to_string(),
            "1 number added, 1 number removed"
        );
    }

    #[test]
    fn switches_and_forwarding_are_compared_with_their_spelled_values() {
        let new = BASE.replace(
            "    forward_to: \"+14155550000\"\n",
            "    forward_to: \"+14155550001\"\n    ring_number_user_first: false\n    region: GB\n    diversion: history-info\n",
        );
        let diff = diff_tables(&table(BASE), &table(&new));
        let acme = &diff.accounts[0];
        let switches: Vec<_> = acme
            .switches_changed
            .iter()
            .map(|s| (s.switch.as_str(), s.from.as_deref(), s.to.as_deref()))
            .collect();
        assert_eq!(
            switches,
            [
                ("ring_number_user_first", Some("true"), Some("false")),
                ("region", Some("US"), Some("GB")),
                ("diversion", None, Some("history-info")),
            ]
        );
        assert_eq!(acme.forwarding_changed[0].number, None);
    }

    #[test]
    fn truncated_keeps_the_counts_and_at_most_n_examples() {
        let mut contacts = String::new();
        for i in 0..30 {
            contacts.push_str(&format!(
                "      - phones: [\"+1650555{:04}\"]\n        user: bob\n",
                1000 + i
            ));
        }
        let new = BASE.replace("    contacts:\n", &format!("    contacts:\n{contacts}"));
        let diff = diff_tables(&table(BASE), &table(&new));
        let short = diff.truncated(5);
        assert_eq!(short.counts(), diff.counts());
        assert_eq!(short.counts().contacts_reassigned, 30);
        assert_eq!(short.accounts[0].contacts_reassigned.len(), 5);
        assert_eq!(diff.accounts[0].contacts_reassigned.len(), 30);
        assert!(
            short
                .to_text(5)
                .contains("  contacts: 30 changed owner, e.g. +16505551000: none → bob, "),
            "{}",
            short.to_text(5)
        );
    }

    #[test]
    fn counts_read_as_one_line_with_plurals() {
        let counts = ChangeCounts {
            numbers_reassigned: 2,
            phones_changed: 1,
            ..ChangeCounts::default()
        };
        assert_eq!(counts.to_string(), "2 numbers reassigned, 1 phone changed");
        assert_eq!(ChangeCounts::default().to_string(), "no routing change");
    }

    #[test]
    fn load_pair_shares_the_accounts_of_files_with_the_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(&new).unwrap();
        fs::write(old.join("acme.yaml"), BASE).unwrap();
        fs::write(new.join("acme.yaml"), BASE).unwrap();
        let beta = "accounts:\n  - id: beta\n    forward_to: \"+14155550000\"\n    numbers:\n      - number: \"+18005550200\"\n";
        fs::write(old.join("beta.yaml"), beta).unwrap();
        fs::write(new.join("beta.yaml"), beta.replace("0200", "0201")).unwrap();
        let (a, b) = load_pair(&old, &new, &Region::us());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(Arc::ptr_eq(&a.accounts()[0], &b.accounts()[0]));
        assert!(!Arc::ptr_eq(&a.accounts()[1], &b.accounts()[1]));
        assert_eq!(
            diff_tables(&a, &b).counts().to_string(),
            "1 number added, 1 number removed"
        );
        // Invalid data: the loader's own report, naming the new side's file.
        fs::write(new.join("beta.yaml"), "accounts: [").unwrap();
        let (a, b) = load_pair(&old, &new, &Region::us());
        assert!(a.is_ok());
        let report = b.unwrap_err().report.to_string();
        assert!(report.contains("new/beta.yaml"), "{report}");
    }
}
