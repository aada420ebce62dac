//! switchboard: a SIP redirect server for CRM call routing
//! (docs/architecture.md has the module map and its seams).
//!
//! - `routing`: the CRM domain (accounts, users, numbers, contacts, the
//!   three rules); no SIP, no I/O;
//! - `routing_data`: the CRM's YAML export read, validated, compiled,
//!   cached, compared and hot-reloaded into a `routing` table;
//! - `settings`: the server's settings (file, environment, flags);
//! - `sip`: RFC 3261 messages read and written; no routing, no sockets;
//! - `template`: Contact templates; `tls`: the certificates SIP over TLS
//!   serves with; `watch`: waking a reload on file events or SIGHUP;
//! - `records`: call records written, rotated and delivered to a webhook;
//! - `server`: the sockets, and the one seam (`server::handler`) where
//!   bytes from a peer meet the routing table.

pub mod proxy;
pub mod records;
pub mod routing;
pub mod routing_data;
pub mod server;
pub mod settings;
pub mod sip;
pub mod template;
pub mod tls;
pub mod watch;
