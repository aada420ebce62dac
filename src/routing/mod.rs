//! The CRM domain: accounts, users, numbers and contacts, and the routing
//! rules of docs/routing.md. Knows nothing of SIP, files or sockets.

mod decision;
mod diversion_style;
mod number;
mod region;
mod rules;
mod table;

pub use decision::{Decision, Disposition, Preference, Reason, ReasonText, Rule, Try};
pub use diversion_style::{DiversionStyle, UnknownDiversionStyle};
pub use number::{Candidates, E164, MAX_E164_DIGITS, Spelling, SpellingError};
pub use region::{Region, UnknownRegion};
pub use table::{
    Account, Contacts, ContactsError, Counts, NoPhonePolicy, Number, NumberClash, OnNoAnswer,
    RoutingTable, Target, User, UserIndex,
};
