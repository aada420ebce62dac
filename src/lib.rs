//! switchboard: a SIP redirect server for CRM call routing.
//!
//! `routing` holds the CRM domain (the rules, numbers, the table);
//! `config` loads, validates and hot-reloads routing data from YAML;
//! `sip` reads requests and writes answers; `tls` keeps the certificates
//! SIP over TLS serves with; `server` is the one seam joining them to
//! sockets.

pub mod routing_data;

pub mod proxy;
pub mod routing;
pub mod server;
pub mod settings;
pub mod sip;
pub mod template;
pub mod tls;
pub mod watch;
