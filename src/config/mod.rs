//! Routing data on disk: the YAML schema, loading and validation with a
//! report naming file and line, and hot reload (docs/routing.md).

pub mod assemble;
pub mod audit;
pub mod cache;
pub mod compile;
pub mod contacts_scan;
pub mod data_number;
pub mod diff;
pub mod loader;
pub mod reload;
pub mod report;
pub mod schema;
pub mod settings;
mod validity;
pub mod yaml;

pub use loader::{LoadStats, Loaded, Loader};
pub use reload::{HotTable, ReloadOptions, ReloadStatus, TableReader};
pub use report::{Diagnostic, Rejected, Report, Severity};
pub use yaml::YamlLimits;
