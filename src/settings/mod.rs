//! Server settings: `config/switchboard.yaml` (docs/operations.md). Flags and
//! `SWITCHBOARD_*` environment variables override the file; `serve` joins
//! them. Unknown fields are rejected, like the routing data's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::routing::DiversionStyle;
use crate::routing::{Region, UnknownRegion};
use crate::template::{ContactTemplate, TemplateError};

mod admin_token;
mod proxy;

pub use admin_token::AdminToken;
pub use proxy::{DEFAULT_RING_SECONDS, Mode, ProxySettings, UnknownMode};

/// The Contact a 302 carries when neither the flag, the file nor the
/// account sets one: the number at the host that asked (docs/sip.md).
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

/// What to do with OPTIONS from peers outside the trust list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UntrustedOptions {
    /// Silence: SIPVicious and its kind find servers with OPTIONS.
    #[default]
    Drop,
    /// 200 OK, for a load balancer's health probe from outside the list.
    Answer,
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
    pub untrusted_options: UntrustedOptions,
    /// Admin HTTP address (metrics, health); off when absent.
    pub admin: Option<SocketAddr>,
    /// A file holding the bearer token that turns on the admin endpoints
    /// revealing routing data (`/reloads`, `/route`); off when absent.
    pub admin_token_file: Option<PathBuf>,
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
    /// How a 302 names the dialed number to the next hop; accounts may
    /// override it.
    pub diversion: DiversionStyle,
    /// Also embed the diversion in each Contact URI as an escaped header
    /// (RFC 3261 §19.1.1), for followers that apply URI headers.
    pub contact_headers: bool,
    pub reload: ReloadSettings,
    /// Where compiled routing files are kept so that a restart over
    /// unchanged data skips parsing; when absent, systemd's
    /// `$CACHE_DIRECTORY` (set by `CacheDirectory=`), else no cache.
    pub cache_dir: Option<PathBuf>,
    pub flood: FloodSettings,
    pub limits: LimitSettings,
    pub tls: TlsSettings,
    /// How routed INVITEs are answered: a 302, or relayed (proxy mode).
    pub mode: Mode,
    pub proxy: ProxySettings,
    pub records: RecordsSettings,
}

/// How phone numbers appear in call records (docs/security.md, "Call
/// records").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumbersMode {
    /// As decided: `+16505550123`.
    Full,
    /// The country code and the last four digits: `+1******0123`.
    Masked,
    /// `hmac-sha256:` and a keyed hash (`hmac_key_file`): the same number,
    /// the same value, and nothing to read back.
    Hmac,
}

/// Call records (docs/operations.md, "Call records"): one JSON line per
/// decided call in `dir`, optionally delivered to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsSettings {
    /// Where the record files go; records are off when absent.
    pub dir: Option<PathBuf>,
    /// This server's name in records and file names; the host name when
    /// absent.
    pub instance: Option<String>,
    /// The file being written is rotated past this size...
    pub rotate_bytes: u64,
    /// ...or this age, in seconds.
    pub rotate_seconds: u64,
    /// Rotated files kept (delivered ones; undelivered files are kept).
    pub keep_files: usize,
    /// Rotated files older than this are deleted once delivered, seconds.
    pub keep_seconds: u64,
    /// Records waiting for the writer; past it they are dropped, counted.
    pub queue: usize,
    /// Phone numbers in the files and the webhook: `full` when a webhook
    /// is set, `masked` otherwise (docs/security.md).
    pub numbers: Option<NumbersMode>,
    /// The key for `numbers: hmac`.
    pub hmac_key_file: Option<PathBuf>,
    /// An http:// or https:// URL the records are POSTed to.
    pub webhook: Option<String>,
    /// The Standard Webhooks secret (`whsec_` and base64).
    pub webhook_secret_file: Option<PathBuf>,
    /// Records per POST at most.
    pub webhook_batch: usize,
    /// Undelivered bytes kept at most; past it new records are dropped.
    pub spool_limit_bytes: u64,
    /// Recent records kept in memory for the admin endpoint's `/calls`.
    pub recent: usize,
}

impl Default for RecordsSettings {
    fn default() -> Self {
        RecordsSettings {
            dir: None,
            instance: None,
            rotate_bytes: 64 * 1024 * 1024,
            rotate_seconds: 3600,
            keep_files: 48,
            keep_seconds: 7 * 86_400,
            queue: 65_536,
            numbers: None,
            hmac_key_file: None,
            webhook: None,
            webhook_secret_file: None,
            webhook_batch: 100,
            spool_limit_bytes: 1024 * 1024 * 1024,
            recent: 10_000,
        }
    }
}

impl RecordsSettings {
    /// The numbers mode in force: the setting, else per sink.
    pub fn numbers_mode(&self) -> NumbersMode {
        self.numbers.unwrap_or(if self.webhook.is_some() {
            NumbersMode::Full
        } else {
            NumbersMode::Masked
        })
    }
}

/// SIP over TLS (docs/security.md, "TLS"): listeners, the serving
/// certificate and key, and peers trusted by their certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// TLS listen addresses (the usual port is 5061); none: no TLS.
    pub listen: Vec<SocketAddr>,
    /// The serving certificate chain, PEM, the server's own first.
    pub cert: Option<PathBuf>,
    /// The serving certificate's private key, PEM.
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that peers' client certificates must chain
    /// to; a peer whose certificate does is trusted like a listed address.
    pub client_ca: Option<PathBuf>,
    /// Refuse the handshake of a peer without such a certificate.
    pub require_client_cert: bool,
    /// When set, only peers whose certificate names one of these (a DNS
    /// subject alternative name) are trusted by it.
    pub trust_names: Vec<String>,
    /// A handshake must be done this long after the connection opens, in
    /// milliseconds.
    pub handshake_ms: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            listen: Vec::new(),
            cert: None,
            key: None,
            client_ca: None,
            require_client_cert: false,
            trust_names: Vec::new(),
            handshake_ms: 5000,
        }
    }
}

/// Flood protection: a token bucket per source address (docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloodSettings {
    /// Requests per second each source may send, sustained; 0 turns
    /// flood protection off.
    pub rate: u32,
    /// Requests a source may send at once above the rate.
    pub burst: u32,
    /// Sources never limited: trunks, proxies, load generators.
    pub exempt: Vec<IpNet>,
    /// Most sources tracked at once; past it, new sources are dropped
    /// until idle ones are evicted (spoofed floods stay bounded).
    pub max_sources: usize,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            rate: 100,
            burst: 200,
            exempt: loopback(),
            max_sources: 100_000,
        }
    }
}

/// Bounds on what a peer can make the server hold (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Largest message: bigger UDP datagrams are dropped, a TCP
    /// connection sending one is closed.
    pub max_message_bytes: usize,
    /// Most header lines in a message (answered with 400 past it).
    pub max_headers: usize,
    /// Longest request line or header, folded lines included (400 past it).
    pub max_header_bytes: usize,
    /// Most TCP connections open at once.
    pub tcp_max_connections: usize,
    /// Most TCP connections open at once from one address.
    pub tcp_max_connections_per_ip: usize,
    /// A TCP connection with nothing to say for this long is closed.
    pub tcp_idle_seconds: u64,
    /// A TCP message must be complete this long after its first byte
    /// (slowloris), in milliseconds.
    pub tcp_message_ms: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 32 * 1024,
            max_headers: crate::sip::request::MAX_HEADERS,
            max_header_bytes: crate::sip::request::MAX_HEADER_BYTES,
            tcp_max_connections: 4096,
            tcp_max_connections_per_ip: 64,
            tcp_idle_seconds: 120,
            tcp_message_ms: 5000,
        }
    }
}

fn loopback() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("literal network"),
        "::1/128".parse().expect("literal network"),
    ]
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
            trust: loopback(),
            untrusted: Untrusted::default(),
            untrusted_options: UntrustedOptions::default(),
            admin: None,
            admin_token_file: None,
            contact_template: DEFAULT_CONTACT_TEMPLATE.to_owned(),
            default_region: "US".to_owned(),
            log_format: LogFormat::default(),
            workers: None,
            server_header: concat!("switchboard/", env!("CARGO_PKG_VERSION")).to_owned(),
            rule_header: false,
            diversion: DiversionStyle::default(),
            contact_headers: false,
            reload: ReloadSettings::default(),
            cache_dir: None,
            flood: FloodSettings::default(),
            limits: LimitSettings::default(),
            tls: TlsSettings::default(),
            mode: Mode::default(),
            proxy: ProxySettings::default(),
            records: RecordsSettings::default(),
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
    #[error("{0}")]
    Limit(String),
    #[error("admin_token_file {path}: {problem}")]
    AdminToken { path: PathBuf, problem: String },
    /// The problem is in the message, not a `source`: printed as a chain
    /// it would otherwise be said twice.
    #[error("contact_template {template:?}: {problem}")]
    Template {
        template: String,
        problem: TemplateError,
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

    /// Refuses limits that would stop the server from serving at all.
    pub fn check_limits(&self) -> Result<(), SettingsError> {
        let l = &self.limits;
        let bad = |m: &str| Err(SettingsError::Limit(m.to_owned()));
        if !(512..=65_535).contains(&l.max_message_bytes) {
            return bad("limits.max_message_bytes: give 512 to 65535");
        }
        if l.max_headers < 8 || l.max_header_bytes < 64 {
            return bad("limits: max_headers must be at least 8 and max_header_bytes at least 64");
        }
        if l.tcp_max_connections == 0 || l.tcp_max_connections_per_ip == 0 {
            return bad("limits: TCP connection limits must be at least 1");
        }
        if l.tcp_idle_seconds == 0 || l.tcp_message_ms == 0 {
            return bad("limits: tcp_idle_seconds and tcp_message_ms must be at least 1");
        }
        if self.tls.handshake_ms == 0 {
            return bad("tls.handshake_ms must be at least 1");
        }
        let tls = &self.tls;
        let has_files = tls.cert.is_some() || tls.key.is_some();
        if !tls.listen.is_empty() && (tls.cert.is_none() || tls.key.is_none()) {
            return bad("tls.listen needs tls.cert and tls.key (--tls-cert, --tls-key)");
        }
        if tls.listen.is_empty() && (has_files || tls.client_ca.is_some()) {
            return bad("tls.cert, tls.key and tls.client_ca need tls.listen (--tls-listen)");
        }
        if tls.client_ca.is_none() && (tls.require_client_cert || !tls.trust_names.is_empty()) {
            return bad(
                "tls.require_client_cert and tls.trust_names need tls.client_ca (--tls-client-ca)",
            );
        }
        if self.proxy.ring_seconds == 0
            || self.proxy.max_calls == 0
            || self.proxy.t1_ms == 0
            || self.proxy.server_silence_ms == 0
        {
            return bad(
                "proxy: ring_seconds, max_calls, t1_ms and server_silence_ms must be at least 1",
            );
        }
        if self.proxy.tls_client_cert.is_some() != self.proxy.tls_client_key.is_some() {
            return bad("proxy: tls_client_cert and tls_client_key go together");
        }
        if self.proxy.timer_c_seconds <= 180 {
            return bad("proxy.timer_c_seconds must be more than 180 (RFC 3261 §16.8)");
        }
        let records = &self.records;
        if records.dir.is_none() && records.webhook.is_some() {
            return bad(
                "records.webhook needs records.dir (--records-dir): the files are its spool",
            );
        }
        if records.webhook.is_some() != records.webhook_secret_file.is_some() {
            return bad(
                "records.webhook and records.webhook_secret_file go together \
                 (--records-webhook, --records-webhook-secret-file)",
            );
        }
        if records.numbers_mode() == NumbersMode::Hmac && records.hmac_key_file.is_none() {
            return bad("records.numbers: hmac needs records.hmac_key_file");
        }
        if records.queue == 0
            || records.rotate_bytes == 0
            || records.rotate_seconds == 0
            || records.webhook_batch == 0
        {
            return bad(
                "records: queue, rotate_bytes, rotate_seconds and webhook_batch must be at least 1",
            );
        }
        if self.flood.rate > 0 && self.flood.burst == 0 {
            return bad("flood.burst must be at least 1 (or flood.rate 0 to turn it off)");
        }
        Ok(())
    }

    /// The cache directory in force: the setting, else systemd's
    /// `$CACHE_DIRECTORY` (its first entry), else none.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(cache_directory_from_systemd)
    }

    /// The default region, checked.
    pub fn region(&self) -> Result<Region, SettingsError> {
        Ok(Region::from_code(&self.default_region)?)
    }

    /// The admin token, read from `admin_token_file` (its contents,
    /// trimmed); `None` when no file is set. A file that cannot be read,
    /// is empty or holds more than one line is an error.
    pub fn admin_token(&self) -> Result<Option<AdminToken>, SettingsError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(None);
        };
        let problem = |problem: String| SettingsError::AdminToken {
            path: path.clone(),
            problem,
        };
        let text = std::fs::read(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
        let token = text.trim_ascii();
        if token.is_empty() {
            return Err(problem(
                "the file is empty: put the token in it (for example `openssl rand -hex 32`)"
                    .to_owned(),
            ));
        }
        if token.iter().any(|&b| b.is_ascii_control()) {
            return Err(problem(
                "the token must be one line without control characters".to_owned(),
            ));
        }
        Ok(Some(AdminToken::new(token)))
    }

    /// The Contact template, checked.
    pub fn template(&self) -> Result<ContactTemplate, SettingsError> {
        ContactTemplate::parse(&self.contact_template).map_err(|problem| SettingsError::Template {
            template: self.contact_template.clone(),
            problem,
        })
    }
}

/// The directory systemd made for the unit's `CacheDirectory=`: its first
/// entry when there are several (colon-separated).
pub fn cache_directory_from_systemd() -> Option<PathBuf> {
    let value = std::env::var_os("CACHE_DIRECTORY")?;
    let value = value.to_string_lossy();
    let first = value.split(':').next().unwrap_or_default();
    (!first.is_empty()).then(|| PathBuf::from(first))
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
        assert_eq!(s.cache_dir, None);
        let s = Settings::from_yaml("cache_dir: /var/cache/switchboard\n").unwrap();
        assert_eq!(
            s.cache_dir.as_deref(),
            Some(Path::new("/var/cache/switchboard"))
        );
        let (line, message) = Settings::from_yaml("listen: []\nlisen: x\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("lisen"), "{message}");
    }

    #[test]
    fn the_diversion_settings_are_read() {
        let s = Settings::from_yaml("diversion: history-info\ncontact_headers: true\n").unwrap();
        assert_eq!(s.diversion, DiversionStyle::HistoryInfo);
        assert!(s.contact_headers);
        // `off` stays a word here, not YAML 1.1's false.
        let s = Settings::from_yaml("diversion: off\n").unwrap();
        assert_eq!(s.diversion, DiversionStyle::Off);
        assert!(Settings::from_yaml("diversion: history_info\n").is_err());
    }

    #[test]
    fn bounds_are_read_and_unusable_ones_refused() {
        let s = Settings::from_yaml(
            "flood:\n  rate: 5\n  exempt: [192.0.2.0/24]\nlimits:\n  tcp_idle_seconds: 7\n",
        )
        .unwrap();
        assert_eq!(s.flood.rate, 5);
        assert_eq!(s.flood.burst, FloodSettings::default().burst);
        assert_eq!(s.flood.exempt.len(), 1);
        assert_eq!(s.limits.tcp_idle_seconds, 7);
        s.check_limits().unwrap();
        Settings::default().check_limits().unwrap();
        for bad in [
            "limits:\n  max_message_bytes: 100\n",
            "limits:\n  max_message_bytes: 70000\n",
            "limits:\n  max_headers: 2\n",
            "limits:\n  tcp_max_connections: 0\n",
            "limits:\n  tcp_message_ms: 0\n",
            "flood:\n  burst: 0\n",
        ] {
            let settings = Settings::from_yaml(bad).unwrap();
            assert!(settings.check_limits().is_err(), "{bad}");
        }
        assert!(Settings::from_yaml("limits:\n  max_mesage_bytes: 1\n").is_err());
    }

    #[test]
    fn the_admin_token_is_read_trimmed_and_bad_files_refused() {
        assert!(Settings::default().admin_token().unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  s3cret-token\n").unwrap();
        let s = Settings::from_yaml(&format!("admin_token_file: {}\n", file.display())).unwrap();
        assert_eq!(s.admin_token_file.as_deref(), Some(file.as_path()));
        let token = s.admin_token().unwrap().expect("a token");
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-token\n"));
        for (contents, expected) in [("\n \n", "empty"), ("one\ntwo\n", "one line")] {
            std::fs::write(&file, contents).unwrap();
            let e = s.admin_token().unwrap_err().to_string();
            assert!(
                e.contains(expected) && e.contains("admin_token_file"),
                "{e}"
            );
        }
        let missing = Settings {
            admin_token_file: Some(dir.path().join("absent")),
            ..Settings::default()
        };
        let e = missing.admin_token().unwrap_err().to_string();
        assert!(e.contains("cannot read it"), "{e}");
    }

    #[test]
    fn records_settings_are_read_and_unusable_ones_refused() {
        let s = Settings::from_yaml(
            "records:\n  dir: /var/lib/switchboard/records\n  rotate_bytes: 1024\n  numbers: hmac\n  hmac_key_file: /k\n",
        )
        .unwrap();
        assert_eq!(s.records.rotate_bytes, 1024);
        assert_eq!(s.records.numbers_mode(), NumbersMode::Hmac);
        assert_eq!(s.records.keep_files, RecordsSettings::default().keep_files);
        s.check_limits().unwrap();
        // The default numbers mode follows the sink.
        let mut records = RecordsSettings::default();
        assert_eq!(records.numbers_mode(), NumbersMode::Masked);
        records.webhook = Some("https://crm.example/hook".into());
        assert_eq!(records.numbers_mode(), NumbersMode::Full);
        for bad in [
            "records:\n  webhook: http://x/\n  webhook_secret_file: /s\n",
            "records:\n  dir: /d\n  webhook: http://x/\n",
            "records:\n  dir: /d\n  numbers: hmac\n",
            "records:\n  dir: /d\n  queue: 0\n",
        ] {
            let settings = Settings::from_yaml(bad).unwrap();
            assert!(settings.check_limits().is_err(), "{bad}");
        }
        assert!(Settings::from_yaml("records:\n  numbers: partial\n").is_err());
        assert!(Settings::from_yaml("records:\n  dri: /d\n").is_err());
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.yaml");
        let settings = Settings::from_file(&path).unwrap();
        settings.check_limits().unwrap();
        assert_eq!(settings.flood, FloodSettings::default());
        assert_eq!(settings.limits, LimitSettings::default());
        settings.region().unwrap();
        settings.template().unwrap();
    }
}
