//! Turning one parsed file into routing accounts, checking everything that
//! can be checked inside an account (docs/routing.md): unknown users, numbers
//! assigned twice, numbers a user has that the account does not, duplicate
//! ids, impossible phone numbers, and the warnings.
//!
//! Checks across accounts and files (an account id or a number used twice)
//! live in `assemble`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tracing::debug;

use super::data_number::{Check, NotANumber, read_number, read_target};
use super::fast::Unsure;
use super::report::Diagnostic;
use super::schema::{AccountDoc, ContactDoc, Lined, NoPhoneDoc, OnNoAnswerDoc, RoutingFile};
use super::yaml::{YamlLimits, parse_routing_file_noting};
use crate::routing::{
    Account, Contacts, E164, NoPhonePolicy, Number, OnNoAnswer, Region, Target, User, UserIndex,
};
use crate::template::ContactTemplate;

/// More warnings of one kind than this, in one account, are summed up in one.
const LISTED_WARNINGS: usize = 5;

/// One file's accounts and what was found wrong in them.
#[derive(Debug, Default)]
pub struct CompiledFile {
    pub accounts: Vec<CompiledAccount>,
    pub diagnostics: Vec<Diagnostic>,
}

/// An account with the lines `assemble` needs for its reports.
#[derive(Debug)]
pub struct CompiledAccount {
    pub account: Arc<Account>,
    /// The line of the account's `id`.
    pub line: u32,
    /// The line of each of `account.numbers`.
    pub number_lines: Vec<u32>,
}

/// Parses and compiles one routing data file.
pub fn compile_file(
    file: &Arc<Path>,
    text: &str,
    default_region: &Region,
    limits: &YamlLimits,
) -> CompiledFile {
    let noted = |unsure: Unsure| {
        debug!(
            file = %file.display(),
            line = unsure.line,
            why = unsure.why,
            "read by the full YAML parser: the fast path does not take this file"
        );
    };
    let doc: RoutingFile = match parse_routing_file_noting(text, limits, noted) {
        Ok(doc) => doc,
        Err(e) => {
            let diagnostic = Diagnostic::error(
                file,
                e.line,
                format!("not valid routing data: {}", e.message),
            )
            .fix("correct the YAML at that line; docs/routing.md shows the format");
            return CompiledFile {
                accounts: Vec::new(),
                diagnostics: vec![diagnostic],
            };
        }
    };
    let mut diagnostics = Vec::new();
    let accounts = doc
        .accounts
        .iter()
        .map(|account| {
            AccountCompiler {
                file,
                doc: account,
                diagnostics: &mut diagnostics,
            }
            .compile(default_region)
        })
        .collect();
    CompiledFile {
        accounts,
        diagnostics,
    }
}

struct AccountCompiler<'a> {
    file: &'a Arc<Path>,
    doc: &'a AccountDoc,
    diagnostics: &'a mut Vec<Diagnostic>,
}

/// An account's numbers while they are read: its `numbers:` list, then
/// the users' own lists assigning them.
struct ListedNumbers {
    numbers: Vec<Number>,
    /// The line of each of `numbers`.
    lines: Vec<u32>,
    /// Where each number's user was set, for "assigned to both" reports.
    assigned_at: Vec<u32>,
    /// Where each number is in `numbers`, to find duplicates and the
    /// numbers users name.
    index: FxHashMap<E164, usize>,
}

/// Where each user came from, for reports.
struct UserInfo {
    line: u32,
    numbers: u32,
    contacts: u32,
}

impl<'a> AccountCompiler<'a> {
    fn id(&self) -> &str {
        &self.doc.id.value
    }

    fn error(&mut self, line: u32, message: String, fix: &str) {
        self.diagnostics
            .push(Diagnostic::error(self.file, line, message).fix(fix));
    }

    fn warning(&mut self, line: u32, message: String, fix: &str) {
        self.diagnostics
            .push(Diagnostic::warning(self.file, line, message).fix(fix));
    }

    fn compile(mut self, default_region: &Region) -> CompiledAccount {
        let doc = self.doc;
        if doc.id.value.trim().is_empty() {
            self.error(
                doc.id.line,
                "an account has an empty id".into(),
                "give the account an id",
            );
        }
        let region = self.region(default_region);
        let forward_to = doc.forward_to.as_ref().and_then(|raw| {
            self.target(raw, &region, &format!("account {}'s forward_to", self.id()))
        });
        let contact_template = doc.contact_template.as_ref().and_then(|raw| {
            ContactTemplate::parse(&raw.value)
                .map_err(|e| {
                    let message = format!(
                        "account {}'s contact_template {:?}: {e}",
                        self.id(),
                        raw.value
                    );
                    self.error(
                        raw.line,
                        message,
                        "write it like sip:{number}@pstn.example.net;user=phone",
                    );
                })
                .ok()
        });
        let (users, mut infos, user_ids) = self.users(&region);
        let (numbers, number_lines) = self.numbers(&region, &user_ids, &users, &mut infos);
        let (contacts, contacts_listed) = self.contacts(&region, &user_ids, &users, &mut infos);
        let when_user_has_no_phone = match doc.when_user_has_no_phone {
            NoPhoneDoc::Reject => NoPhonePolicy::Reject,
            NoPhoneDoc::Forward => NoPhonePolicy::Forward,
        };
        let account = Account {
            id: doc.id.value.as_str().into(),
            region,
            forward_to,
            ring_number_user_first: doc.ring_number_user_first,
            when_user_has_no_phone,
            contact_template,
            diversion: doc.diversion,
            ring_seconds: doc
                .ring_seconds
                .as_ref()
                .and_then(|r| self.ring_seconds(r, &format!("account {}", doc.id.value))),
            users,
            numbers,
            contacts,
            contacts_listed,
        };
        self.warn_phoneless_users(&account, &infos);
        self.warn_unforwarded_numbers(&account, &number_lines);
        self.warn_forward_on_no_answer_nowhere(&account, &number_lines);
        CompiledAccount {
            account: Arc::new(account),
            line: doc.id.line,
            number_lines,
        }
    }

    fn region(&mut self, default_region: &Region) -> Region {
        let Some(raw) = &self.doc.region else {
            return default_region.clone();
        };
        Region::from_code(&raw.value).unwrap_or_else(|e| {
            let message = format!("account {}: {e}", self.id());
            self.error(
                raw.line,
                message,
                "use an ISO 3166 code such as US, GB or DE",
            );
            default_region.clone()
        })
    }

    /// Reads a phone or forwarding number; `what` names it in reports.
    fn target(&mut self, raw: &Lined<String>, region: &Region, what: &str) -> Option<Target> {
        match read_target(&raw.value, region) {
            Ok((target, valid)) => {
                if !valid {
                    self.warn_invalid(raw.line, &target.to_string(), what);
                }
                Some(target)
            }
            Err(e) => {
                self.not_a_number(raw, what, &e);
                None
            }
        }
    }

    fn not_a_number(&mut self, raw: &Lined<String>, what: &str, e: &NotANumber) {
        let message = format!("{what} {:?} cannot be a phone number: {e}", raw.value);
        self.error(
            raw.line,
            message,
            "write it in E.164 form such as \"+14155550101\" (or a user's phone as a sip: URI)",
        );
    }

    fn warn_invalid(&mut self, line: u32, number: &str, what: &str) {
        let message = format!(
            "{what} {number} is not a valid number according to libphonenumber's data (which can lag new allocations)"
        );
        self.warning(
            line,
            message,
            "check the number; if it is right, ignore this warning",
        );
    }

    fn users(
        &mut self,
        region: &Region,
    ) -> (Vec<User>, Vec<UserInfo>, FxHashMap<&'a str, UserIndex>) {
        let doc: &'a AccountDoc = self.doc;
        let mut users = Vec::with_capacity(doc.users.len());
        let mut infos = Vec::with_capacity(doc.users.len());
        let mut ids: FxHashMap<&str, UserIndex> = FxHashMap::default();
        for user in &doc.users {
            let id = user.id.value.as_str();
            if id.trim().is_empty() {
                self.error(
                    user.id.line,
                    format!("a user of account {} has an empty id", self.id()),
                    "give the user an id",
                );
                continue;
            }
            if let Some(&first) = ids.get(id) {
                let first_line: u32 = infos.get(first as usize).map_or(0, |i: &UserInfo| i.line);
                let message = format!(
                    "user id {id} is used twice in account {} (lines {first_line} and {})",
                    self.id(),
                    user.id.line
                );
                self.error(user.id.line, message, "give each user its own id");
                continue;
            }
            let phone = user
                .phone
                .as_ref()
                .and_then(|raw| self.target(raw, region, &format!("user {id}'s phone")));
            ids.insert(id, users.len() as UserIndex);
            infos.push(UserInfo {
                line: user.id.line,
                numbers: 0,
                contacts: 0,
            });
            users.push(User {
                id: id.into(),
                name: user.name.as_deref().map(Into::into),
                phone,
            });
        }
        (users, infos, ids)
    }

    fn numbers(
        &mut self,
        region: &Region,
        user_ids: &FxHashMap<&str, UserIndex>,
        users: &[User],
        infos: &mut [UserInfo],
    ) -> (Vec<Number>, Vec<u32>) {
        let mut listed = self.listed_numbers(region, user_ids);
        self.assign_users_numbers(region, user_ids, users, &mut listed);
        for number in &listed.numbers {
            if let Some(user) = number.user {
                infos[user as usize].numbers += 1;
            }
        }
        (listed.numbers, listed.lines)
    }

    /// The account's `numbers:` list, each assigned to the user its entry
    /// names, if any.
    fn listed_numbers(
        &mut self,
        region: &Region,
        user_ids: &FxHashMap<&str, UserIndex>,
    ) -> ListedNumbers {
        let doc = self.doc;
        let mut listed = ListedNumbers {
            numbers: Vec::with_capacity(doc.numbers.len()),
            lines: Vec::with_capacity(doc.numbers.len()),
            assigned_at: Vec::with_capacity(doc.numbers.len()),
            index: FxHashMap::default(),
        };
        for entry in &doc.numbers {
            let raw = &entry.number;
            let read = match read_number(&raw.value, region, Check::Validity) {
                Ok(read) => read,
                Err(e) => {
                    self.not_a_number(raw, "number", &e);
                    continue;
                }
            };
            if !read.valid {
                self.warn_invalid(raw.line, &read.number.to_string(), "number");
            }
            if let Some(&first) = listed.index.get(&read.number) {
                let message = format!(
                    "number {} is listed twice in account {} (lines {} and {})",
                    read.number,
                    self.id(),
                    listed.lines[first],
                    raw.line
                );
                self.error(raw.line, message, "remove one of the two entries");
                continue;
            }
            let what = format!("number {}'s forward_to", read.number);
            let forward_to = entry
                .forward_to
                .as_ref()
                .and_then(|f| self.target(f, region, &what));
            let user = entry
                .user
                .as_ref()
                .and_then(|u| self.known_user(u, user_ids, &format!("number {}", read.number)));
            listed.index.insert(read.number, listed.numbers.len());
            listed.lines.push(raw.line);
            listed
                .assigned_at
                .push(entry.user.as_ref().map_or(0, |u| u.line));
            let on_no_answer = entry
                .on_no_answer
                .as_ref()
                .map_or(doc.on_no_answer, |o| o.value);
            let ring_seconds = entry
                .ring_seconds
                .as_ref()
                .and_then(|r| self.ring_seconds(r, &format!("number {}", read.number)));
            listed.numbers.push(Number {
                number: read.number,
                user,
                forward_to,
                on_no_answer: on_no_answer_policy(on_no_answer),
                ring_seconds,
            });
        }
        listed
    }

    /// Users' own `numbers:` lists assign the account's numbers to them.
    fn assign_users_numbers(
        &mut self,
        region: &Region,
        user_ids: &FxHashMap<&str, UserIndex>,
        users: &[User],
        listed: &mut ListedNumbers,
    ) {
        for user_doc in &self.doc.users {
            let Some(&user) = user_ids.get(user_doc.id.value.as_str()) else {
                continue;
            };
            if users[user as usize].id.as_ref() != user_doc.id.value {
                continue;
            }
            for raw in &user_doc.numbers {
                let number = match read_number(&raw.value, region, Check::OnlyAmbiguous) {
                    Ok(read) => read.number,
                    Err(e) => {
                        self.not_a_number(raw, &format!("user {}'s number", user_doc.id.value), &e);
                        continue;
                    }
                };
                let Some(&i) = listed.index.get(&number) else {
                    let message = format!(
                        "user {} has number {number}, which is not one of account {}'s numbers",
                        user_doc.id.value,
                        self.id()
                    );
                    let fix = format!(
                        "add `- number: \"{number}\"` to the account's numbers, or remove it from the user"
                    );
                    self.error(raw.line, message, &fix);
                    continue;
                };
                match listed.numbers[i].user {
                    None => {
                        listed.numbers[i].user = Some(user);
                        listed.assigned_at[i] = raw.line;
                    }
                    Some(same) if same == user => {}
                    Some(other) => {
                        let message = format!(
                            "number {number} is assigned to both {} (line {}) and {} (line {})",
                            users[other as usize].id,
                            listed.assigned_at[i],
                            user_doc.id.value,
                            raw.line
                        );
                        self.error(
                            raw.line,
                            message,
                            "a number rings one user: remove it from one of them",
                        );
                    }
                }
            }
        }
    }

    fn known_user(
        &mut self,
        id: &Lined<String>,
        user_ids: &FxHashMap<&str, UserIndex>,
        what: &str,
    ) -> Option<UserIndex> {
        let found = user_ids.get(id.value.as_str()).copied();
        if found.is_none() {
            let message = format!(
                "{what} is assigned to user {}, but account {} has no such user",
                id.value,
                self.id()
            );
            self.error(
                id.line,
                message,
                "add the user to the account's users, or correct the id",
            );
        }
        found
    }

    fn contacts(
        &mut self,
        region: &Region,
        user_ids: &FxHashMap<&str, UserIndex>,
        users: &[User],
        infos: &mut [UserInfo],
    ) -> (Contacts, usize) {
        let doc = self.doc;
        // Every assigned phone with its user and line, in the data's order;
        // sorted by number below, where equal numbers keep this order.
        let docs = &doc.contacts.value;
        let mut listed: Vec<(E164, UserIndex, u32)> = Vec::with_capacity(docs.len());
        for contact in docs {
            let user = contact
                .user
                .as_ref()
                .and_then(|u| self.known_user(u, user_ids, "a contact"));
            if let Some(user) = user {
                infos[user as usize].contacts += 1;
            }
            for raw in &contact.phones {
                let number = match read_number(&raw.value, region, Check::OnlyAmbiguous) {
                    Ok(read) => read.number,
                    Err(e) => {
                        self.not_a_number(raw, "contact phone", &e);
                        continue;
                    }
                };
                let Some(user) = user else { continue };
                listed.push((number, user, raw.line));
            }
        }
        listed.sort_by_key(|&(number, _, _)| number);
        // The first listed owner wins; a later entry naming another user
        // is a clash, reported at its own line.
        let mut clashes: Vec<(E164, u32, UserIndex)> = Vec::new();
        let mut pairs: Vec<(E164, UserIndex)> = Vec::with_capacity(listed.len());
        for &(number, user, line) in &listed {
            match pairs.last() {
                Some(&(previous, owner)) if previous == number => {
                    if owner != user {
                        clashes.push((number, line, user));
                    }
                }
                _ => pairs.push((number, user)),
            }
        }
        drop(listed);
        let contacts = Contacts::from_pairs(pairs);
        if !clashes.is_empty() {
            clashes.sort_by_key(|&(_, line, _)| line);
            self.warn_contact_clashes(docs, region, &contacts, &clashes, users);
        }
        (contacts, docs.len())
    }

    /// "A contact phone listed for two different users": the first listed
    /// wins. The winner's line is found by one more pass, only when needed.
    fn warn_contact_clashes(
        &mut self,
        docs: &[ContactDoc],
        region: &Region,
        contacts: &Contacts,
        clashes: &[(E164, u32, UserIndex)],
        users: &[User],
    ) {
        let wanted: FxHashSet<E164> = clashes.iter().map(|c| c.0).collect();
        let mut first_line: FxHashMap<E164, u32> = FxHashMap::default();
        for contact in docs.iter().filter(|c| c.user.is_some()) {
            for raw in &contact.phones {
                if let Ok(read) = read_number(&raw.value, region, Check::OnlyAmbiguous)
                    && wanted.contains(&read.number)
                {
                    first_line.entry(read.number).or_insert(raw.line);
                }
            }
        }
        let name = |index: UserIndex| users.get(index as usize).map_or("?", |u| &u.id);
        for &(number, line, loser) in clashes {
            let winner = contacts.get(number).unwrap_or(loser);
            let message = format!(
                "contact phone {number} is listed for both {} (line {}) and {} (line {line}); calls from it ring {}, the first",
                name(winner),
                first_line.get(&number).copied().unwrap_or(0),
                name(loser),
                name(winner),
            );
            self.warning(line, message, "keep the phone on one user's contact only");
        }
    }

    fn warn_phoneless_users(&mut self, account: &Account, infos: &[UserInfo]) {
        for (user, info) in account.users.iter().zip(infos) {
            if user.phone.is_some() || info.numbers + info.contacts == 0 {
                continue;
            }
            let outcome = match account.when_user_has_no_phone {
                NoPhonePolicy::Reject => {
                    "those calls will fail to connect (480 Temporarily Unavailable)"
                }
                NoPhonePolicy::Forward => "those calls go to the forwarding number instead",
            };
            let message = format!(
                "user {} has no phone, but {} and {} route calls to them: {outcome}",
                user.id,
                plural(info.numbers, "number"),
                plural(info.contacts, "contact"),
            );
            let fix = format!(
                "add a phone to {}, or assign the numbers and contacts to someone else",
                user.id
            );
            self.warning(info.line, message, &fix);
        }
    }

    /// Numbers set to try their forwarding target when the phone does not
    /// answer, with no forwarding target at all: their 302s name the
    /// phone alone.
    fn warn_forward_on_no_answer_nowhere(&mut self, account: &Account, lines: &[u32]) {
        if account.forward_to.is_some() {
            return;
        }
        let nowhere: Vec<(&Number, u32)> = account
            .numbers
            .iter()
            .zip(lines.iter().copied())
            .filter(|(n, _)| n.on_no_answer == OnNoAnswer::Forward && n.forward_to.is_none())
            .collect();
        let fix = "set the number's forward_to or a default forward_to on the account, or drop on_no_answer: forward";
        self.warn_numbers(
            &nowhere,
            |number| format!(
                "number {} has on_no_answer: forward but no forward_to, and account {} has no default forward_to: its 302s name the phone alone",
                number.number, account.id
            ),
            format!(
                "{} numbers of account {} have on_no_answer: forward but no forward_to, and the account has no default forward_to: their 302s name the phone alone (",
                nowhere.len(),
                account.id
            ),
            fix,
        );
    }

    /// Numbers whose calls can reach rule 3 with nowhere to go.
    fn warn_unforwarded_numbers(&mut self, account: &Account, lines: &[u32]) {
        if account.forward_to.is_some() {
            return;
        }
        let reaches_rule_3 = |number: &Number| match number.user.and_then(|u| account.user(u)) {
            None => true,
            Some(user) => {
                user.phone.is_none() && account.when_user_has_no_phone == NoPhonePolicy::Forward
            }
        };
        let stranded: Vec<(&Number, u32)> = account
            .numbers
            .iter()
            .zip(lines.iter().copied())
            .filter(|(n, _)| n.forward_to.is_none() && reaches_rule_3(n))
            .collect();
        let fix = "set the number's forward_to, or a default forward_to on the account";
        self.warn_numbers(
            &stranded,
            |number| format!(
                "number {} has no forward_to and account {} has no default forward_to: calls to it that no user takes get 480",
                number.number, account.id
            ),
            format!(
                "{} numbers of account {} have no forward_to and the account has no default forward_to: calls to them that no user takes get 480 (",
                stranded.len(),
                account.id
            ),
            fix,
        );
    }

    /// A warning per number, each on its line, up to `LISTED_WARNINGS` of
    /// them; past that, one warning on the first's line: `summary`, then
    /// the first few with their lines and how many more.
    fn warn_numbers(
        &mut self,
        numbers: &[(&Number, u32)],
        one: impl Fn(&Number) -> String,
        mut summary: String,
        fix: &'static str,
    ) {
        if numbers.len() <= LISTED_WARNINGS {
            for &(number, line) in numbers {
                self.warning(line, one(number), fix);
            }
            return;
        }
        for (i, (number, line)) in numbers.iter().take(LISTED_WARNINGS).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(summary, "{sep}{} on line {line}", number.number);
        }
        let _ = write!(summary, " and {} more)", numbers.len() - LISTED_WARNINGS);
        let first_line = numbers.first().map_or(0, |s| s.1);
        self.warning(first_line, summary, fix);
    }
}

/// The longest ring time the data may ask for: ten minutes is longer than
/// any phone rings before its own network gives up.
const MAX_RING_SECONDS: u32 = 600;

impl AccountCompiler<'_> {
    /// A `ring_seconds` value, checked: 1 to 600.
    fn ring_seconds(&mut self, raw: &Lined<u32>, what: &str) -> Option<u32> {
        if (1..=MAX_RING_SECONDS).contains(&raw.value) {
            return Some(raw.value);
        }
        let message = format!("{what}'s ring_seconds {} is out of range", raw.value);
        self.error(raw.line, message, "give a number of seconds from 1 to 600");
        None
    }
}

fn on_no_answer_policy(doc: OnNoAnswerDoc) -> OnNoAnswer {
    match doc {
        OnNoAnswerDoc::None => OnNoAnswer::None,
        OnNoAnswerDoc::Forward => OnNoAnswer::Forward,
    }
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing_data::report::Severity;

    fn compile(text: &str) -> CompiledFile {
        let file: Arc<Path> = Arc::from(Path::new("t.yaml"));
        compile_file(&file, text, &Region::us(), &YamlLimits::default())
    }

    fn messages(file: &CompiledFile, severity: Severity) -> Vec<(u32, String)> {
        file.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(|d| (d.line, d.message.clone()))
            .collect()
    }

    #[test]
    fn a_contact_phone_of_two_users_warns_and_the_first_wins() {
        let file = compile(
            "accounts:
  - id: a
    forward_to: \"+14155550000\"
    users:
      - id: bob
        phone: \"+14155550101\"
      - id: carol
        phone: \"+14155550102\"
    contacts:
      - phones: [\"+16505550123\"]
        user: bob
      - phones: [\"650-555-0123\"]
        user: carol
",
        );
        assert_eq!(
            messages(&file, Severity::Warning),
            [(12, "contact phone +16505550123 is listed for both bob (line 10) and carol (line 12); calls from it ring bob, the first".to_owned())]
        );
        let account = &file.accounts[0].account;
        let owner = account
            .contacts
            .get(E164::parse_plus("+16505550123").unwrap())
            .unwrap();
        assert_eq!(account.users[owner as usize].id.as_ref(), "bob");
    }

    #[test]
    fn a_number_listed_twice_and_a_bad_template_are_errors() {
        let file = compile(
            "accounts:
  - id: a
    forward_to: \"+14155550000\"
    contact_template: \"sip:{num}@x\"
    numbers:
      - number: \"+18005550100\"
      - number: \"800-555-0100\"
",
        );
        let errors = messages(&file, Severity::Error);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 4);
        assert!(
            errors[0].1.contains("{num} is not a placeholder"),
            "{errors:?}"
        );
        assert_eq!(
            errors[1],
            (
                7,
                "number +18005550100 is listed twice in account a (lines 6 and 7)".to_owned()
            )
        );
    }

    #[test]
    fn phoneless_users_warn_only_when_calls_reach_them() {
        let file = compile(
            "accounts:
  - id: a
    forward_to: \"+14155550000\"
    when_user_has_no_phone: forward
    users:
      - id: idle
      - id: busy
        numbers: [\"+18005550100\"]
    numbers:
      - number: \"+18005550100\"
",
        );
        assert_eq!(
            messages(&file, Severity::Warning),
            [(7, "user busy has no phone, but 1 number and 0 contacts route calls to them: those calls go to the forwarding number instead".to_owned())]
        );
    }

    #[test]
    fn many_unforwarded_numbers_are_summed_up_in_one_warning() {
        let mut text = String::from("accounts:\n  - id: a\n    numbers:\n");
        for i in 0..8 {
            text.push_str(&format!("      - number: \"+1800555010{i}\"\n"));
        }
        let file = compile(&text);
        let warnings = messages(&file, Severity::Warning);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].0, 4);
        assert!(
            warnings[0]
                .1
                .starts_with("8 numbers of account a have no forward_to")
                && warnings[0]
                    .1
                    .ends_with("+18005550104 on line 8 and 3 more)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn ring_seconds_are_read_from_the_account_and_the_number_and_checked() {
        let file = compile(
            "accounts:
  - id: a
    forward_to: \"+14155550000\"
    ring_seconds: 25
    numbers:
      - number: \"+18005550100\"
      - number: \"+18005550111\"
        ring_seconds: 8
      - number: \"+18005550122\"
        ring_seconds: 0
",
        );
        assert_eq!(
            messages(&file, Severity::Error),
            [(
                10,
                "number +18005550122's ring_seconds 0 is out of range".to_owned()
            )]
        );
        let account = &file.accounts[0].account;
        assert_eq!(account.ring_seconds, Some(25));
        let rings: Vec<Option<u32>> = account.numbers.iter().map(|n| n.ring_seconds).collect();
        assert_eq!(rings, [None, Some(8), None]);
    }

    #[test]
    fn forward_on_no_answer_with_nowhere_to_go_is_a_warning() {
        let file = compile(
            "accounts:
  - id: a
    on_no_answer: forward
    users:
      - id: bob
        phone: \"+14155550101\"
        numbers: [\"+18005550100\", \"+18005550111\", \"+18005550122\"]
    numbers:
      - number: \"+18005550100\"
      - number: \"+18005550111\"
        forward_to: \"+14155550199\"
      - number: \"+18005550122\"
        on_no_answer: none
",
        );
        assert_eq!(
            messages(&file, Severity::Warning),
            [(9, "number +18005550100 has on_no_answer: forward but no forward_to, and account a has no default forward_to: its 302s name the phone alone".to_owned())]
        );
        let table = file.accounts.first().expect("the account");
        let policies: Vec<OnNoAnswer> = table
            .account
            .numbers
            .iter()
            .map(|n| n.on_no_answer)
            .collect();
        assert_eq!(
            policies,
            [OnNoAnswer::Forward, OnNoAnswer::Forward, OnNoAnswer::None]
        );
    }

    #[test]
    fn assignment_on_the_number_and_on_the_user_agree_or_clash() {
        let file = compile(
            "accounts:
  - id: a
    forward_to: \"+14155550000\"
    users:
      - id: bob
        phone: \"+14155550101\"
        numbers: [\"+18005550100\", \"+18005550111\"]
      - id: carol
        phone: \"+14155550102\"
    numbers:
      - number: \"+18005550100\"
        user: bob
      - number: \"+18005550111\"
        user: carol
",
        );
        assert_eq!(
            messages(&file, Severity::Error),
            [(
                7,
                "number +18005550111 is assigned to both carol (line 14) and bob (line 7)"
                    .to_owned()
            )]
        );
    }
}
