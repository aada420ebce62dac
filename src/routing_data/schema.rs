//! The routing data file format (docs/routing.md): what the CRM exports.
//!
//! Field names are a contract: unknown fields are rejected, new fields come
//! only with defaults. Values whose problems we report carry their line.

use serde::{Deserialize, Deserializer};

/// A value with the (1-based) line it was written on.
///
/// A line-only wrapper around `serde_saphyr::Spanned`: a million contacts
/// need a line each, not two full locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lined<T> {
    pub value: T,
    pub line: u32,
}

/// Line 0: not written at all.
impl<T: Default> Default for Lined<T> {
    fn default() -> Self {
        Lined {
            value: T::default(),
            line: 0,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lined<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Lined {
            line: u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX),
            value: spanned.value,
        })
    }
}

/// One routing data file: one or more accounts.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    #[serde(default)]
    pub accounts: Vec<AccountDoc>,
}

/// What happens when rule 1 or 2 picks a user without a phone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoPhoneDoc {
    /// 480 Temporarily Unavailable.
    #[default]
    Reject,
    /// Go on to rule 3.
    Forward,
}

/// Whether a 302 to a user's phone also names the number's forwarding
/// target, to be tried when the phone does not answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoAnswerDoc {
    /// One Contact: the phone.
    #[default]
    None,
    /// A second Contact with a lower q: the forwarding target.
    Forward,
}

fn yes() -> bool {
    true
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDoc {
    pub id: Lined<String>,
    /// ISO 3166 region for national spellings; the server's default region
    /// when absent.
    #[serde(default)]
    pub region: Option<Lined<String>>,
    #[serde(default)]
    pub forward_to: Option<Lined<String>>,
    #[serde(default = "yes")]
    pub ring_number_user_first: bool,
    #[serde(default)]
    pub when_user_has_no_phone: NoPhoneDoc,
    /// For the account's numbers that do not set their own.
    #[serde(default)]
    pub on_no_answer: OnNoAnswerDoc,
    #[serde(default)]
    pub contact_template: Option<Lined<String>>,
    /// Overrides the server's `diversion` setting for this account.
    #[serde(default)]
    pub diversion: Option<crate::routing::DiversionStyle>,
    /// Overrides the server's `proxy.ring_seconds` for this account.
    #[serde(default)]
    pub ring_seconds: Option<Lined<u32>>,
    #[serde(default)]
    pub users: Vec<UserDoc>,
    #[serde(default)]
    pub numbers: Vec<NumberDoc>,
    /// With the line the sequence starts on: where `contacts_scan` took a
    /// block out, the parser sees `contacts: []` on the key's line.
    #[serde(default)]
    pub contacts: Lined<Vec<ContactDoc>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    pub id: Lined<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// An E.164 number or a sip:/sips: URI; missing means calls to this
    /// user get 480.
    #[serde(default)]
    pub phone: Option<Lined<String>>,
    /// The account numbers assigned to this user (direct lines).
    #[serde(default)]
    pub numbers: Vec<Lined<String>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberDoc {
    pub number: Lined<String>,
    /// The number's Call Forwarding setting.
    #[serde(default)]
    pub forward_to: Option<Lined<String>>,
    /// The user the number is assigned to: the same as listing it in that
    /// user's `numbers` (an addition to the original data shape, defaulting to
    /// none, for exports that record the assignment on the number).
    #[serde(default)]
    pub user: Option<Lined<String>>,
    /// Overrides the account's `on_no_answer` for this number.
    #[serde(default)]
    pub on_no_answer: Option<Lined<OnNoAnswerDoc>>,
    /// Overrides the account's `ring_seconds` for this number.
    #[serde(default)]
    pub ring_seconds: Option<Lined<u32>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDoc {
    pub phones: Vec<Lined<String>>,
    /// The user who owns the contact; unassigned contacts route like
    /// unknown callers.
    #[serde(default)]
    pub user: Option<Lined<String>>,
    /// The contact's name, for people reading the file.
    #[serde(default)]
    pub name: Option<String>,
}
