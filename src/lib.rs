//! switchboard: a SIP redirect server for CRM call routing.
//!
//! `routing` holds the CRM domain (the rules, numbers, the table);
//! `config` loads, validates and hot-reloads routing data from YAML.

pub mod admin;
pub mod config;
pub mod diversion;
pub mod routing;
pub mod server;
pub mod sip;
pub mod template;
