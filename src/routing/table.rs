//! The routing table: every account with its users, numbers and contacts,
//! as one immutable value.
//!
//! A table is built whole (by `config`) and then only read; reload swaps in a
//! new one. Accounts sit behind `Arc` so that a reload which changes one
//! account reuses every other account as it is, contacts included.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::number::E164;
use super::region::Region;
use crate::routing::DiversionStyle;
use crate::template::ContactTemplate;

/// Index of a user inside its account's `users`.
pub type UserIndex = u32;

/// Where a call can be sent: an E.164 number, or a SIP URI used as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Number(E164),
    Uri(Box<str>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Number(n) => n.fmt(f),
            Target::Uri(uri) => f.write_str(uri),
        }
    }
}

/// What to do when rule 1 or 2 picks a user who has no phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoPhonePolicy {
    /// Answer 480: the CRM's documented behaviour.
    #[default]
    Reject,
    /// Go on to rule 3 (the forwarding number).
    Forward,
}

/// Whether a 302 to a user's phone also names the number's forwarding
/// target, tried when the phone does not answer (RFC 3261 §8.1.3.4: the
/// client tries Contacts in order of q).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnNoAnswer {
    /// One Contact: the phone.
    #[default]
    None,
    /// The phone first, then the forwarding target.
    Forward,
}

/// A CRM user: someone calls can ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Box<str>,
    pub name: Option<Box<str>>,
    pub phone: Option<Target>,
}

/// One of an account's phone numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub number: E164,
    /// The user the number is assigned to (rule 1).
    pub user: Option<UserIndex>,
    /// The number's own Call Forwarding setting (rule 3).
    pub forward_to: Option<Target>,
    /// Its own setting, else its account's.
    pub on_no_answer: OnNoAnswer,
    /// In proxy mode, how long a call to it rings a target before the next
    /// one is tried; `None`: the account's, else the server's.
    pub ring_seconds: Option<u32>,
}

/// A CRM account (sub-account, location) with everything it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Box<str>,
    /// Region for national spellings of callers.
    pub region: Region,
    /// Default forwarding number for the account's numbers (rule 3).
    pub forward_to: Option<Target>,
    /// `false` swaps rules 1 and 2: a known contact's owner wins.
    pub ring_number_user_first: bool,
    pub when_user_has_no_phone: NoPhonePolicy,
    /// Overrides the server's Contact template for this account.
    pub contact_template: Option<ContactTemplate>,
    /// Overrides the server's diversion style for this account.
    pub diversion: Option<DiversionStyle>,
    /// Overrides the server's ring time (proxy mode) for this account.
    pub ring_seconds: Option<u32>,
    pub users: Vec<User>,
    pub numbers: Vec<Number>,
    /// Assigned contacts: caller number → owning user (rule 2). Unassigned
    /// contacts are left out: they route exactly like unknown callers.
    pub contacts: Contacts,
    /// How many contact entries the data listed, assigned or not.
    pub contacts_listed: usize,
}

impl Account {
    /// The user at `index`; indices come from this account's own data.
    pub fn user(&self, index: UserIndex) -> Option<&User> {
        self.users.get(index as usize)
    }
}

/// An account's assigned contacts: caller number → owning user, as two
/// parallel arrays sorted by number, searched by bisection.
///
/// Contacts are nearly all of a large table (tens of millions against
/// thousands of users and numbers). A hash map spends about 36 bytes on
/// each (16 for the pair, padding, the control byte, and a load factor of
/// at most 7/8 rounded up to a power of two); these arrays spend 12: the
/// 8-byte number and the 4-byte user, no padding (docs/performance.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    numbers: Box<[u64]>,
    users: Box<[UserIndex]>,
}

/// The arrays given to [`Contacts::from_sorted`] are not a contact list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactsError {
    #[error("{numbers} numbers but {users} users")]
    Lengths { numbers: usize, users: usize },
    #[error("number at {0} is not above the one before it")]
    Unsorted(usize),
    #[error("number at {0} is not an E.164 number")]
    NotE164(usize),
}

impl Contacts {
    /// Builds the list from `(number, user)` pairs in the data's order: a
    /// number listed more than once keeps its first user.
    pub fn from_pairs(mut pairs: Vec<(E164, UserIndex)>) -> Self {
        // Stable: among equal numbers the first listed stays first.
        pairs.sort_by_key(|&(number, _)| number);
        pairs.dedup_by_key(|&mut (number, _)| number);
        let numbers = pairs.iter().map(|&(n, _)| n.value()).collect();
        let users = pairs.iter().map(|&(_, u)| u).collect();
        Contacts { numbers, users }
    }

    /// Takes arrays already in this type's layout (from the compiled-data
    /// cache), checking that they are: same length, numbers strictly
    /// increasing and each an E.164 number. User indices are the caller's
    /// to check against its users.
    pub fn from_sorted(numbers: Vec<u64>, users: Vec<UserIndex>) -> Result<Self, ContactsError> {
        if numbers.len() != users.len() {
            return Err(ContactsError::Lengths {
                numbers: numbers.len(),
                users: users.len(),
            });
        }
        for (i, &n) in numbers.iter().enumerate() {
            if E164::from_value(n).is_none() {
                return Err(ContactsError::NotE164(i));
            }
            if i > 0 && numbers[i - 1] >= n {
                return Err(ContactsError::Unsorted(i));
            }
        }
        Ok(Contacts {
            numbers: numbers.into_boxed_slice(),
            users: users.into_boxed_slice(),
        })
    }

    /// The user owning the contact whose phone is `number`.
    pub fn get(&self, number: E164) -> Option<UserIndex> {
        let i = self.numbers.binary_search(&number.value()).ok()?;
        self.users.get(i).copied()
    }

    pub fn contains(&self, number: E164) -> bool {
        self.get(number).is_some()
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Every contact, by number.
    pub fn iter(&self) -> impl Iterator<Item = (E164, UserIndex)> + '_ {
        self.numbers
            .iter()
            .zip(self.users.iter())
            .filter_map(|(&n, &u)| Some((E164::from_value(n)?, u)))
    }

    /// The numbers, ascending (for the cache's writer).
    pub fn numbers(&self) -> &[u64] {
        &self.numbers
    }

    /// Each number's user, in the same order.
    pub fn users(&self) -> &[UserIndex] {
        &self.users
    }
}

/// Where a number lives: which account, which entry of its `numbers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumberSlot {
    account: u32,
    number: u32,
}

/// Two accounts claim the same number; the table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("number {number} belongs to both account {first} and account {second}")]
pub struct NumberClash {
    pub number: E164,
    pub first: Box<str>,
    pub second: Box<str>,
}

/// How much a table holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub accounts: usize,
    pub users: usize,
    pub numbers: usize,
    pub contacts: usize,
}

/// All routing data, indexed for the request path.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    accounts: Vec<Arc<Account>>,
    numbers: FxHashMap<E164, NumberSlot>,
    default_region: Region,
}

impl RoutingTable {
    /// Indexes `accounts`. `default_region` reads national spellings of
    /// dialed numbers (docs/routing.md).
    pub fn new(accounts: Vec<Arc<Account>>, default_region: Region) -> Result<Self, NumberClash> {
        let total: usize = accounts.iter().map(|a| a.numbers.len()).sum();
        let mut numbers = FxHashMap::with_capacity_and_hasher(total, Default::default());
        for (account_index, account) in accounts.iter().enumerate() {
            for (number_index, number) in account.numbers.iter().enumerate() {
                let slot = NumberSlot {
                    account: account_index as u32,
                    number: number_index as u32,
                };
                if let Some(previous) = numbers.insert(number.number, slot) {
                    return Err(NumberClash {
                        number: number.number,
                        first: accounts[previous.account as usize].id.clone(),
                        second: account.id.clone(),
                    });
                }
            }
        }
        Ok(RoutingTable {
            accounts,
            numbers,
            default_region,
        })
    }

    /// An empty table: every number is unknown.
    pub fn empty(default_region: Region) -> Self {
        RoutingTable {
            accounts: Vec::new(),
            numbers: FxHashMap::default(),
            default_region,
        }
    }

    pub fn accounts(&self) -> &[Arc<Account>] {
        &self.accounts
    }

    pub fn default_region(&self) -> &Region {
        &self.default_region
    }

    /// The account and number entry for `number`, if any account owns it.
    pub fn number(&self, number: E164) -> Option<(&Account, &Number)> {
        let slot = self.numbers.get(&number)?;
        let account = self.accounts.get(slot.account as usize)?;
        let entry = account.numbers.get(slot.number as usize)?;
        Some((account, entry))
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            accounts: self.accounts.len(),
            ..Counts::default()
        };
        for account in &self.accounts {
            counts.users += account.users.len();
            counts.numbers += account.numbers.len();
            counts.contacts += account.contacts_listed;
        }
        counts
    }
}
