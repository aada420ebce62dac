//! A routing decision as the legs of a relayed call (RFC 3261 §16.5,
//! serial forking; docs/sip.md, "Proxy mode"): the same targets, in the
//! same order, as a 302's Contacts, with the same URIs (the Contact
//! template's expansion), and the dialed number for each leg's
//! `Diversion` or `History-Info`.

use std::time::Duration;

use super::inbox::{DivertedFrom, LegPlan};
use crate::routing::{Decision, DiversionStyle};
use crate::server::redirect::{self, Origin, Presentation};
use crate::sip::diversion::DiversionReason;

/// The legs of `decision`, each ringing for the number's or the account's
/// `ring_seconds`, else `ring` (the last rings until Timer C, whatever it
/// says), and how they name the dialed number.
pub fn legs(
    decision: &Decision<'_>,
    presentation: &Presentation,
    origin: Origin,
    ring: Duration,
) -> (Vec<LegPlan>, DivertedFrom, &'static str) {
    let ring = decision
        .ring_seconds
        .map_or(ring, |seconds| Duration::from_secs(u64::from(seconds)));
    let legs = decision
        .targets()
        .map(|next| {
            let mut uri = Vec::with_capacity(64);
            redirect::write_target(&mut uri, presentation, decision, next.target, origin);
            LegPlan { uri, ring }
        })
        .collect();
    let style = decision
        .account
        .and_then(|a| a.diversion)
        .unwrap_or(presentation.diversion);
    let dialed_uri = |dialed| {
        let mut uri = Vec::with_capacity(64);
        redirect::write_number(&mut uri, presentation, decision, dialed, origin);
        uri
    };
    let diverted_from = match (style, decision.dialed) {
        (DiversionStyle::Header, Some(dialed)) => DivertedFrom::Diversion(dialed_uri(dialed)),
        (DiversionStyle::HistoryInfo, Some(dialed)) => {
            DivertedFrom::HistoryInfo(dialed_uri(dialed))
        }
        _ => DivertedFrom::Off,
    };
    let first_reason = decision
        .targets()
        .next()
        .map_or(DiversionReason::Unconditional, redirect::reason)
        .as_str();
    (legs, diverted_from, first_reason)
}
