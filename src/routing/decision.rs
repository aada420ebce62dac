//! A routing decision as a value: what the SIP layer answers and what
//! `switchboard route` explains. Borrowed from the table it came from.

use std::fmt;

use super::number::E164;
use super::table::{Account, Target, User};

/// What the rules made of a call (docs/routing.md, outcomes), in the
/// domain's words: the SIP edge (`server::redirect`) says which answer
/// each one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The call goes to a target (and perhaps a fallback after it).
    Routed,
    /// The dialed number is not a number of any account.
    UnknownNumber,
    /// The call has nowhere to go: its user has no phone, or there is no
    /// forwarding number.
    Unavailable,
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Rule 1: the dialed number is assigned to a user.
    NumberUser,
    /// Rule 2: the caller is a contact assigned to a user.
    ContactOwner,
    /// Rule 3: the number's (or the account's) forwarding number.
    Forwarding,
    /// No rule applied.
    None,
}

impl Rule {
    /// The name used in JSON output and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NumberUser => "number_user",
            Rule::ContactOwner => "contact_owner",
            Rule::Forwarding => "forwarding",
            Rule::None => "none",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the decision came out as it did; [`Decision::reason`] renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The dialed string is not a phone number at all.
    DialedNotANumber,
    /// No account owns the dialed number.
    UnknownNumber,
    /// Rule 1 picked the number's user, who has a phone.
    NumberUser,
    /// Rule 2 picked the caller's contact owner, who has a phone.
    ContactOwner,
    /// Rule 1 or 2 picked a user without a phone, and the account rejects.
    UserHasNoPhone,
    /// Rule 3 used the number's forwarding number.
    NumberForwarding,
    /// Rule 3 used the account's default forwarding number.
    AccountForwarding,
    /// Nothing matched and no forwarding number is set.
    NoForwarding,
}

/// The outcome of the routing rules for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'t> {
    pub disposition: Disposition,
    pub rule: Rule,
    pub reason: Reason,
    /// The dialed number as the table knows it.
    pub dialed: Option<E164>,
    /// The caller's number, when it matched a contact (rule 2).
    pub contact: Option<E164>,
    pub account: Option<&'t Account>,
    /// The user the call goes to (302) or could not go to (480).
    pub user: Option<&'t User>,
    /// A phoneless user the call passed over on its way to rule 3
    /// (`when_user_has_no_phone: forward`).
    pub passed_over: Option<&'t User>,
    /// Where to send the call (302 only).
    pub target: Option<&'t Target>,
    /// Where to send it when `target` does not answer (`on_no_answer:
    /// forward`, rules 1 and 2 only): rule 3's target.
    pub fallback: Option<&'t Target>,
    /// How long each target rings in proxy mode, when the number or its
    /// account says (else the server's setting).
    pub ring_seconds: Option<u32>,
}

/// One place a 302 sends the call, in the order it is to be tried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Try<'t> {
    pub target: &'t Target,
    /// RFC 3261 §20.10: the client tries higher q first.
    pub q: Preference,
    /// The rule that chose this target.
    pub rule: Rule,
}

/// The q-values a 302 uses: the phone first, its fallback after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    First,
    Fallback,
}

impl Preference {
    /// As written in a Contact's `q` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Preference::First => "1.0",
            Preference::Fallback => "0.5",
        }
    }

    pub fn value(self) -> f32 {
        match self {
            Preference::First => 1.0,
            Preference::Fallback => 0.5,
        }
    }
}

impl<'t> Decision<'t> {
    pub(crate) fn new(disposition: Disposition, rule: Rule, reason: Reason) -> Self {
        Decision {
            disposition,
            rule,
            reason,
            dialed: None,
            contact: None,
            account: None,
            user: None,
            passed_over: None,
            target: None,
            fallback: None,
            ring_seconds: None,
        }
    }

    /// Where the call goes, in order: the target, then the fallback.
    pub fn targets(&self) -> impl Iterator<Item = Try<'t>> + use<'t> {
        let first = self.target.map(|target| Try {
            target,
            q: Preference::First,
            rule: self.rule,
        });
        let fallback = self.fallback.map(|target| Try {
            target,
            q: Preference::Fallback,
            rule: Rule::Forwarding,
        });
        first.into_iter().chain(fallback)
    }

    /// A plain sentence saying why, e.g. `+18005550100 is assigned to alice`.
    pub fn reason(&self) -> ReasonText<'_, 't> {
        ReasonText(self)
    }
}

/// Renders a decision's reason without allocating.
pub struct ReasonText<'d, 't>(&'d Decision<'t>);

impl fmt::Display for ReasonText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let dialed = Optional(d.dialed.as_ref());
        let user = Optional(d.user.map(|u| &u.id));
        let target = Optional(d.target);
        if let Some(skipped) = d.passed_over {
            write!(
                f,
                "user {} has no phone, so the call is forwarded; ",
                skipped.id
            )?;
        }
        match d.reason {
            Reason::DialedNotANumber => f.write_str("the dialed number is not a phone number"),
            Reason::UnknownNumber => write!(f, "{dialed} is not a number of any account"),
            Reason::NumberUser => write!(f, "{dialed} is assigned to user {user}"),
            Reason::ContactOwner => write!(
                f,
                "caller {} is a contact of user {user}",
                Optional(d.contact.as_ref())
            ),
            Reason::UserHasNoPhone => write!(
                f,
                "user {user} has no phone (the account rejects calls to users without one)"
            ),
            Reason::NumberForwarding => write!(f, "{dialed} forwards to {target}"),
            Reason::AccountForwarding => write!(
                f,
                "{dialed} has no forwarding number of its own; account {} forwards to {target}",
                Optional(d.account.map(|a| &a.id))
            ),
            Reason::NoForwarding => write!(
                f,
                "{dialed} has no user for this call and no forwarding number, nor does account {}",
                Optional(d.account.map(|a| &a.id))
            ),
        }?;
        if let Some(fallback) = d.fallback {
            write!(f, "; if the phone does not answer, then {fallback}")?;
        }
        Ok(())
    }
}

/// Displays a value or `-`.
struct Optional<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Optional<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}
