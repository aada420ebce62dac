//! Proxy mode's socket side (docs/architecture.md, "Proxy mode"): the
//! request path hands routed INVITEs, CANCELs, ACKs and responses to one
//! driver thread through a bounded inbox; the driver runs the sans-IO
//! call state machines of `crate::proxy` against the clock and the
//! sockets. The handler only decides who is relayed and what the legs are.

pub mod inbox;
pub mod plan;

use std::net::IpAddr;
use std::time::Duration;

use crate::settings::{Mode, ProxySettings};
use inbox::Inbox;

/// What the handler needs to relay: the driver's inbox and who is relayed.
#[derive(Debug)]
pub struct Relay {
    pub inbox: Inbox,
    pub mode: Mode,
    pub settings: ProxySettings,
}

impl Relay {
    /// Whether `peer`'s INVITEs are relayed.
    pub fn relays(&self, peer: IpAddr) -> bool {
        self.settings.mode_for(self.mode, peer) == Mode::Proxy
    }

    /// How long each leg rings.
    pub fn ring(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.ring_seconds))
    }
}
