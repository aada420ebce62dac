//! The three routing rules of docs/routing.md, applied to one call.
//!
//! 1. the dialed number is assigned to a user → that user's phone;
//! 2. else the caller is a contact of the account, assigned to a user →
//!    that user's phone;
//! 3. else the number's forwarding number, else the account's.
//!
//! `ring_number_user_first: false` swaps 1 and 2; a picked user without a
//! phone gives 480, or goes on to rule 3 with `when_user_has_no_phone:
//! forward`. With `on_no_answer: forward`, a call rule 1 or 2 sends to a
//! phone also names rule 3's target, to be tried when the phone does not
//! answer. Pure functions over the table: no I/O, no SIP.

use super::decision::{Decision, Disposition, Reason, Rule};
use super::number::{E164, Spelling};
use super::table::{Account, NoPhonePolicy, Number, OnNoAnswer, RoutingTable, Target, UserIndex};

impl RoutingTable {
    /// Decides where a call to `dialed` from `caller` goes. Both are
    /// numbers in any spelling (a URI's user part, a `tel:` number...);
    /// an absent, anonymous or unparseable caller matches no contact.
    pub fn decide(&self, dialed: &[u8], caller: Option<&[u8]>) -> Decision<'_> {
        let Ok(spelling) = Spelling::parse(dialed) else {
            return Decision::new(
                Disposition::UnknownNumber,
                Rule::None,
                Reason::DialedNotANumber,
            );
        };
        let candidates = spelling.candidates(self.default_region());
        let found = candidates
            .iter()
            .find_map(|candidate| self.number(candidate).map(|hit| (candidate, hit)));
        let Some((dialed, (account, number))) = found else {
            let mut decision = Decision::new(
                Disposition::UnknownNumber,
                Rule::None,
                Reason::UnknownNumber,
            );
            // Name the reading a person most likely meant: the last one
            // (national, for a spelling without `+`).
            decision.dialed = candidates.iter().last();
            return decision;
        };
        let mut decision = decide_in_account(account, number, caller);
        decision.dialed = Some(dialed);
        decision.account = Some(account);
        decision.ring_seconds = number.ring_seconds.or(account.ring_seconds);
        decision
    }
}

fn decide_in_account<'t>(
    account: &'t Account,
    number: &'t Number,
    caller: Option<&[u8]>,
) -> Decision<'t> {
    let user_rules = if account.ring_number_user_first {
        [Rule::NumberUser, Rule::ContactOwner]
    } else {
        [Rule::ContactOwner, Rule::NumberUser]
    };
    let mut passed_over = None;
    for rule in user_rules {
        // The contact lookup runs only when its rule's turn comes.
        let pick = match rule {
            Rule::NumberUser => number.user.map(|user| (user, None)),
            _ => contact_owner(account, caller).map(|(user, contact)| (user, Some(contact))),
        };
        let Some((user_index, contact)) = pick else {
            continue;
        };
        let Some(user) = account.user(user_index) else {
            continue;
        };
        let mut decision = match (&user.phone, account.when_user_has_no_phone) {
            (Some(phone), _) => {
                let reason = if rule == Rule::NumberUser {
                    Reason::NumberUser
                } else {
                    Reason::ContactOwner
                };
                let mut d = Decision::new(Disposition::Routed, rule, reason);
                d.target = Some(phone);
                d.fallback = fallback(account, number, phone);
                d
            }
            (None, NoPhonePolicy::Reject) => {
                Decision::new(Disposition::Unavailable, rule, Reason::UserHasNoPhone)
            }
            (None, NoPhonePolicy::Forward) => {
                passed_over = Some(user);
                break;
            }
        };
        decision.user = Some(user);
        decision.contact = contact;
        return decision;
    }
    let mut decision = forwarding(account, number);
    decision.passed_over = passed_over;
    decision
}

/// Rule 2's lookup: the user owning the contact whose phone is `caller`,
/// trying the caller's spellings in order (docs/routing.md).
fn contact_owner(account: &Account, caller: Option<&[u8]>) -> Option<(UserIndex, E164)> {
    let spelling = Spelling::parse(caller?).ok()?;
    spelling
        .candidates(&account.region)
        .iter()
        .find_map(|candidate| {
            account
                .contacts
                .get(candidate)
                .map(|user| (user, candidate))
        })
}

/// With `on_no_answer: forward`, where a call to `phone` goes when the
/// phone does not answer: the target rule 3 would pick, unless there is
/// none or it is the phone itself.
fn fallback<'t>(account: &'t Account, number: &'t Number, phone: &Target) -> Option<&'t Target> {
    if number.on_no_answer != OnNoAnswer::Forward {
        return None;
    }
    forwarding_target(account, number)
        .map(|(target, _)| target)
        .filter(|&target| target != phone)
}

/// Rule 3's target: the number's forwarding number, else the account's.
fn forwarding_target<'t>(account: &'t Account, number: &'t Number) -> Option<(&'t Target, Reason)> {
    match (&number.forward_to, &account.forward_to) {
        (Some(target), _) => Some((target, Reason::NumberForwarding)),
        (None, Some(target)) => Some((target, Reason::AccountForwarding)),
        (None, None) => None,
    }
}

/// Rule 3: the number's forwarding number, else the account's.
fn forwarding<'t>(account: &'t Account, number: &'t Number) -> Decision<'t> {
    let Some((target, reason)) = forwarding_target(account, number) else {
        return Decision::new(Disposition::Unavailable, Rule::None, Reason::NoForwarding);
    };
    let mut decision = Decision::new(Disposition::Routed, Rule::Forwarding, reason);
    decision.target = Some(target);
    decision
}
