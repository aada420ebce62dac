//! Server settings: `config/switchboard.yaml` (DESIGN §5). Flags and
//! `SWITCHBOARD_*` environment variables override the file; `serve` joins
//! them. Unknown fields are rejected, like the routing data's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::routing::{Region, UnknownRegion};
use crate::template::{ContactTemplate, TemplateError};

/// The Contact a 302 carries when neither the flag, the file nor the
/// account sets one: the number at the host that asked (DESIGN §3).
pub const DEFAULT_CONTACT_TEMPLATE: &str = "sip:{number}@{source_host};user=phone";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What to do with requests from peers outside the trust list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Untrusted {
    /// Silence: scanners learn nothing.
    #[default]
    Drop,
    /// 403 Forbidden.
    Reject,
}

/// Every server setting, with its default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Routing data: a YAML file or a directory of them.
    pub routing: Option<PathBuf>,
    /// SIP listen addresses, UDP and TCP each.
    pub listen: Vec<SocketAddr>,
    /// Peers allowed to ask for routes; replaces the loopback default.
    pub trust: Vec<IpNet>,
    pub untrusted: Untrusted,
    /// Admin HTTP address (metrics, health); off when absent.
    pub admin: Option<SocketAddr>,
    /// Contact URI template for 302s; accounts may override it.
    pub contact_template: String,
    /// Region for national spellings of dialed numbers.
    pub default_region: String,
    pub log_format: LogFormat,
    /// Worker threads; the number of cores when absent.
    pub workers: Option<usize>,
    /// The `Server` header's value.
    pub server_header: String,
    /// Add a header naming the rule that decided (reveals routing).
    pub rule_header: bool,
    pub reload: ReloadSettings,
}

/// How routing data changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadSettings {
    /// Quiet time after a file event before reloading, in milliseconds.
    pub debounce_ms: u64,
    /// Safety-net poll interval, in seconds (0: no poll).
    pub poll_seconds: u64,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        ReloadSettings {
            debounce_ms: 200,
            poll_seconds: 30,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            routing: None,
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 5060))],
            trust: vec![
                "127.0.0.0/8".parse().expect("literal network"),
                "::1/128".parse().expect("literal network"),
            ],
            untrusted: Untrusted::default(),
            admin: None,
            contact_template: DEFAULT_CONTACT_TEMPLATE.to_owned(),
            default_region: "US".to_owned(),
            log_format: LogFormat::default(),
            workers: None,
            server_header: concat!("switchboard/", env!("CARGO_PKG_VERSION")).to_owned(),
            rule_header: false,
            reload: ReloadSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("default_region: {0}")]
    Region(#[from] UnknownRegion),
    #[error("contact_template {template:?}: {source}")]
    Template {
        template: String,
        source: TemplateError,
    },
}

impl Settings {
    /// Reads a settings file.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Settings::from_yaml(&text).map_err(|(line, message)| SettingsError::Parse {
            path: path.to_owned(),
            line,
            message,
        })
    }

    /// Parses settings YAML; on failure, the line and message.
    pub fn from_yaml(text: &str) -> Result<Settings, (u64, String)> {
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
        };
        serde_saphyr::from_str_with_options::<Option<Settings>>(text, options)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                let line = e.location().map_or(0, |l| l.line());
                let message = e.without_snippet().to_string();
                (line, message.lines().next().unwrap_or("").to_owned())
            })
    }

    /// The default region, checked.
    pub fn region(&self) -> Result<Region, SettingsError> {
        Ok(Region::from_code(&self.default_region)?)
    }

    /// The Contact template, checked.
    pub fn template(&self) -> Result<ContactTemplate, SettingsError> {
        ContactTemplate::parse(&self.contact_template).map_err(|source| SettingsError::Template {
            template: self.contact_template.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Settings::from_yaml("").unwrap(), Settings::default());
        assert_eq!(
            Settings::from_yaml("# nothing\n").unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn fields_are_read_and_unknown_ones_rejected() {
        let s = Settings::from_yaml(
            "listen: [\"127.0.0.1:5070\", \"[::1]:5070\"]\ntrust: [10.0.0.0/8]\nuntrusted: reject\nreload:\n  poll_seconds: 5\n",
        )
        .unwrap();
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.trust, vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        assert_eq!(s.untrusted, Untrusted::Reject);
        assert_eq!(s.reload.poll_seconds, 5);
        assert_eq!(s.reload.debounce_ms, 200);
        let (line, message) = Settings::from_yaml("listen: []\nlisen: x\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("lisen"), "{message}");
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.yaml");
        let settings = Settings::from_file(&path).unwrap();
        settings.region().unwrap();
        settings.template().unwrap();
    }
}
