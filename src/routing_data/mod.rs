//! The CRM's routing data (docs/routing.md): its YAML export read and
//! validated with a report naming file and line, compiled into the
//! `routing` module's table, cached, compared (`diff`), and kept fresh
//! under a running server (hot reload and its audit trail). Knows files
//! and threads; no SIP, no sockets, no server settings.

pub mod assemble;
pub mod audit;
pub mod cache;
pub mod compile;
pub mod contacts_scan;
pub mod data_number;
pub mod diff;
pub mod fast;
pub mod loader;
pub mod memory;
pub mod parallel;
pub mod reload;
pub mod report;
pub mod schema;
mod validity;
pub mod yaml;

pub use loader::{LoadStats, Loaded, Loader};
pub use reload::{HotTable, ReloadOptions, ReloadStatus, TableReader};
pub use report::{Diagnostic, Rejected, Report, Severity};
pub use yaml::YamlLimits;
