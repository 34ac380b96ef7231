//! Where to connect and how: target URLs, the profiles file in the XDG config dir, and
//! environment overrides. Passwords come from the URL, an environment variable, a
//! command or the terminal (see [`password`]), are kept in [`Secret`], and never
//! appear in output, logs or errors.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod password;
pub mod theme;

pub use password::password_for;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bad URL \"{url}\": {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("no profile named \"{name}\" in {path}{known}")]
    NoProfile {
        name: String,
        path: String,
        known: String,
    },
    #[error("{0}")]
    Password(String),
    /// A user was named and no password given: sending none (or lapin's default,
    /// "guest") would only be refused, or worse, accepted for the wrong account.
    #[error(
        "no password for user \"{user}\" at {target} ({why}); give it in MQSCOPE_PASSWORD, the profile's password_env or password_command, or the URL ({example}), or run mqscope at a terminal to be asked"
    )]
    NoPassword {
        user: String,
        target: String,
        why: String,
        example: String,
    },
}

/// A password or other secret: printing it shows only that it is there.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for handing to a client library and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The local broker: a scenario, its seed, and whether its clock is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    pub scenario: String,
    pub seed: u64,
    /// A manual clock starting at a fixed date: output depends only on the seed.
    pub fixed_clock: bool,
}

impl LocalTarget {
    pub fn demo(seed: u64) -> Self {
        Self {
            scenario: "demo".into(),
            seed,
            fixed_clock: false,
        }
    }
}

pub const DEFAULT_SEED: u64 = 42;

impl fmt::Display for LocalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "local://{}", self.scenario)?;
        let mut sep = '?';
        if self.seed != DEFAULT_SEED {
            write!(f, "{sep}seed={}", self.seed)?;
            sep = '&';
        }
        if self.fixed_clock {
            write!(f, "{sep}clock=fixed")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpTarget {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Decoded virtual host name (`/` for the default).
    pub vhost: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTarget {
    /// `host:port` bootstrap servers.
    pub brokers: Vec<String>,
}

/// What to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local(LocalTarget),
    Amqp(AmqpTarget),
    Kafka(KafkaTarget),
}

/// A host as it goes in a URL: IPv6 addresses in brackets.
pub fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Percent-encode a vhost for a URL path segment (`/` becomes `%2F`).
pub fn encode_vhost(vhost: &str) -> String {
    url::form_urlencoded::byte_serialize(vhost.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Target {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::BadUrl {
            url: redact_raw(raw),
            reason: reason.to_string(),
        };
        let scheme = raw
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .ok_or_else(|| {
                bad("expected scheme://..., e.g. amqp://, amqps://, kafka:// or local://demo")
            })?;
        match scheme.as_str() {
            "local" => parse_local(raw).map_err(|r| bad(&r)),
            "amqp" | "amqps" => parse_amqp(raw).map_err(|r| bad(&r)),
            "kafka" => parse_kafka(raw).map_err(|r| bad(&r)),
            other => Err(bad(&format!(
                "unknown scheme \"{other}\" (use amqp://, amqps://, kafka:// or local://demo)"
            ))),
        }
    }

    /// The target as a URL without any password.
    pub fn redacted(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local(l) => write!(f, "{l}"),
            Target::Amqp(a) => {
                let scheme = if a.tls { "amqps" } else { "amqp" };
                let user = a
                    .user
                    .as_deref()
                    .map(|u| format!("{}@", encode_vhost(u)))
                    .unwrap_or_default();
                let host = url_host(&a.host);
                write!(
                    f,
                    "{scheme}://{user}{host}:{}/{}",
                    a.port,
                    encode_vhost(&a.vhost)
                )
            }
            Target::Kafka(k) => write!(f, "kafka://{}", k.brokers.join(",")),
        }
    }
}

/// Remove a password from a URL we could not parse, for error messages: everything
/// between the scheme (or the start) and the last `@` is treated as user information and
/// only the user name before the first `:` is kept.
fn redact_raw(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), raw),
    };
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}{user}{masked}@{}", &rest[at + 1..])
        }
        None => raw.to_string(),
    }
}

fn parse_local(raw: &str) -> Result<Target, String> {
    let u = url::Url::parse(raw).map_err(|e| e.to_string())?;
    let scenario = u.host_str().unwrap_or("").to_string();
    if scenario.is_empty() {
        return Err("name a scenario: local://demo or local://empty".into());
    }
    if !matches!(u.path(), "" | "/") {
        return Err("local URLs take no path".into());
    }
    let mut t = LocalTarget {
        scenario,
        seed: DEFAULT_SEED,
        fixed_clock: false,
    };
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "seed" => {
                t.seed = v
                    .parse()
                    .map_err(|_| format!("seed must be a whole number, not \"{v}\""))?
            }
            "clock" => {
                t.fixed_clock = match v.as_ref() {
                    "fixed" => true,
                    "system" => false,
                    _ => return Err(format!("clock must be fixed or system, not \"{v}\"")),
                }
            }
            other => return Err(format!("unknown option \"{other}\" (seed, clock)")),
        }
    }
    Ok(Target::Local(t))
}

fn decode(s: &str) -> Result<String, String> {
    percent_decode(s).ok_or_else(|| format!("\"{s}\" is not valid percent-encoded UTF-8"))
}

/// Decode the user name or the password of a URL. The error does not repeat it: the text
/// may be a password, or a password typed where the user name goes.
fn decode_userinfo(s: &str, what: &str) -> Result<String, String> {
    percent_decode(s).ok_or_else(|| {
        format!("the {what} is not valid percent-encoded UTF-8 (write a % in it as %25)")
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_amqp(raw: &str) -> Result<Target, String> {
    let u = url::Url::parse(raw).map_err(|e| e.to_string())?;
    // An '@' the parser did not take as the end of the user information: a '/', '?' or
    // '#' in the password cut the URL short there, and the rest of the password would
    // become a port, a vhost or an option, and be printed as one.
    let after_scheme = raw.split_once("://").map_or(raw, |(_, r)| r);
    if after_scheme.contains('@') && u.username().is_empty() && u.password().is_none() {
        return Err(
            "the URL has an '@' outside its user part: percent-encode '/', '?', '#' and '@' in a user name or password (%2F, %3F, %23, %40)"
                .into(),
        );
    }
    let tls = u.scheme() == "amqps";
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err("no host".into()),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = u.port().unwrap_or(if tls { 5671 } else { 5672 });
    let path = u.path();
    let vhost = match path {
        "" | "/" => "/".to_string(),
        p => {
            let seg = &p[1..];
            if seg.contains('/') {
                return Err(
                    "a vhost containing '/' must be written %2F, e.g. amqp://host/%2F for \"/\""
                        .into(),
                );
            }
            decode(seg)?
        }
    };
    let user = match u.username() {
        "" => None,
        name => Some(decode_userinfo(name, "user name")?),
    };
    // `guest:@host` names a user and gives no password.
    let password = u
        .password()
        .filter(|p| !p.is_empty())
        .map(|p| decode_userinfo(p, "password"))
        .transpose()?
        .map(Secret::new);
    if let Some((k, _)) = u.query_pairs().next() {
        return Err(format!(
            "unsupported option \"{k}\"; put connection settings in a profile"
        ));
    }
    Ok(Target::Amqp(AmqpTarget {
        tls,
        host,
        port,
        vhost,
        user,
        password,
    }))
}

fn parse_kafka(raw: &str) -> Result<Target, String> {
    let rest = &raw["kafka://".len()..];
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('@') {
        return Err(
            "expected kafka://host:port[,host:port...]; put credentials and options in a profile"
                .into(),
        );
    }
    let mut brokers = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err("empty broker address".into());
        }
        let (host, port) = if let Some(v6) = part.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed [ in IPv6 address")?;
            (h, after.strip_prefix(':'))
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in \"{part}\""));
        }
        let port: u16 = match port {
            Some(p) => p.parse().map_err(|_| format!("bad port in \"{part}\""))?,
            None => 9092,
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        brokers.push(format!("{host}:{port}"));
    }
    Ok(Target::Kafka(KafkaTarget { brokers }))
}

/// TLS settings of a profile.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Skip certificate verification. For test brokers only.
    #[serde(default)]
    pub insecure: bool,
}

/// A named connection in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub url: String,
    /// RabbitMQ management API, when not at http(s)://host:15672.
    pub management_url: Option<String>,
    pub user: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// Command whose standard output is the password (e.g. `pass show rabbit/prod`).
    pub password_command: Option<String>,
    /// How long `password_command` may run before it is killed, e.g. `"5s"` (the
    /// default) or `"1500ms"`.
    pub password_command_timeout: Option<String>,
    /// Refused on purpose: see [`load_config`].
    password: Option<toml::Value>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub tls: TlsSettings,
    /// Extra librdkafka properties (e.g. `"security.protocol" = "SASL_SSL"`).
    #[serde(default)]
    pub kafka: BTreeMap<String, String>,
}

/// A URL for display: parsed and shown without its password, or masked when unparsable.
fn shown_url(url: &str) -> String {
    Target::parse(url)
        .map(|t| t.redacted())
        .unwrap_or_else(|_| redact_raw(url))
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kafka: BTreeMap<&str, &str> = self
            .kafka
            .iter()
            .map(|(k, v)| {
                let secret = ["password", "secret", "token", "key"]
                    .iter()
                    .any(|w| k.contains(w));
                (k.as_str(), if secret { "***" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("Profile")
            .field("url", &shown_url(&self.url))
            .field(
                "management_url",
                &self.management_url.as_deref().map(shown_url),
            )
            .field("user", &self.user)
            .field("password_env", &self.password_env)
            .field(
                "password_command",
                &self.password_command.as_ref().map(|_| "***"),
            )
            .field("password_command_timeout", &self.password_command_timeout)
            .field("read_only", &self.read_only)
            .field("tls", &self.tls)
            .field("kafka", &kafka)
            .finish()
    }
}

impl fmt::Debug for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selection")
            .field("url", &self.url.as_deref().map(shown_url))
            .field("profile", &self.profile)
            .field("config", &self.config)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub default_profile: Option<String>,
    pub theme: Option<String>,
    /// Single theme roles to override, e.g. `dead_letter = "#ff0000"`.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
    /// Key bindings: action name to keys, e.g. `quit = ["q", "ctrl-c"]`.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// `$XDG_CONFIG_HOME/mqscope/config.toml` (or the platform's equivalent).
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mqscope").join("config.toml"))
}

/// Read a config file. A missing file is an error only when it was asked for by name.
pub fn load_config(path: &Path, explicit: bool) -> Result<ConfigFile, ConfigError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(ConfigFile::default());
        }
        Err(e) => {
            return Err(ConfigError::Read {
                path: shown,
                reason: e.to_string(),
            });
        }
    };
    let cfg: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: shown.clone(),
        reason: e.message().to_string()
            + &e.span()
                .map(|s| line_of(&text, s.start))
                .unwrap_or_default(),
    })?;
    for (name, p) in &cfg.profiles {
        if p.password.is_some() {
            return Err(ConfigError::Parse {
                path: shown,
                reason: format!(
                    "profile \"{name}\": plain-text passwords are not read; use password_env or password_command"
                ),
            });
        }
        Target::parse(&p.url).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            reason: format!("profile \"{name}\": {e}"),
        })?;
        if let Some(m) = &p.management_url {
            check_management_url(m).map_err(|reason| ConfigError::Parse {
                path: shown.clone(),
                reason: format!("profile \"{name}\": management_url: {reason}"),
            })?;
        }
        if let Some(t) = &p.password_command_timeout {
            crate::config::password::parse_timeout(t).map_err(|reason| ConfigError::Parse {
                path: shown.clone(),
                reason: format!("profile \"{name}\": password_command_timeout \"{t}\": {reason}"),
            })?;
        }
    }
    Ok(cfg)
}

/// A management API address: http(s), and no credentials in it. Those would be printed
/// with every message that names the API, and the profile's user and password are the
/// ones sent anyway. The reason never repeats the URL.
pub fn check_management_url(raw: &str) -> Result<(), String> {
    let u = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("expected http:// or https://".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "must not hold a user or password: the profile's user and password are sent".into(),
        );
    }
    Ok(())
}

fn line_of(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!(" (line {line})")
}

/// Everything the command line said about where to connect.
#[derive(Clone, Default)]
pub struct Selection {
    pub url: Option<String>,
    pub profile: Option<String>,
    pub config: Option<PathBuf>,
    pub read_only: bool,
}

/// The connection to use, with credentials resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub target: Target,
    pub profile_name: Option<String>,
    pub profile: Profile,
    pub read_only: bool,
    pub theme: Option<String>,
    pub colors: BTreeMap<String, String>,
    pub keys: BTreeMap<String, Vec<String>>,
    /// The config file it came from, for messages about it.
    pub config_path: Option<String>,
}

/// Pick the target: `--url`, else `--profile`, else the config's default profile, else
/// the demo. A URL given with a profile overrides the profile's URL but keeps its
/// credentials and settings. A user named without a password is an error: see
/// [`resolve_asking`] to ask for it instead.
pub fn resolve(sel: &Selection) -> Result<Resolved, ConfigError> {
    resolve_asking(sel, &|_| None)
}

/// [`resolve`], asking `ask` (given the question) for the password of a user named
/// without one; `ask` answers `None` when it cannot ask or nothing was entered.
pub fn resolve_asking(
    sel: &Selection,
    ask: &dyn Fn(&str) -> Option<Secret>,
) -> Result<Resolved, ConfigError> {
    let (path, explicit) = match &sel.config {
        Some(p) => (Some(p.clone()), true),
        None => (default_config_path(), false),
    };
    let cfg = match &path {
        Some(p) => load_config(p, explicit)?,
        None => ConfigFile::default(),
    };
    let shown = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no config file)".into());
    let profile_name = sel.profile.clone().or_else(|| {
        if sel.url.is_none() {
            cfg.default_profile.clone()
        } else {
            None
        }
    });
    let profile = match &profile_name {
        Some(name) => cfg
            .profiles
            .get(name)
            .cloned()
            .ok_or_else(|| ConfigError::NoProfile {
                name: name.clone(),
                path: shown,
                known: if cfg.profiles.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (known: {})",
                        cfg.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
            })?,
        None => Profile::default(),
    };
    let url = sel
        .url
        .clone()
        .or_else(|| (!profile.url.is_empty()).then(|| profile.url.clone()))
        .unwrap_or_else(|| "local://demo".into());
    let mut target = Target::parse(&url)?;
    if let Target::Amqp(a) = &mut target {
        if a.user.is_none() {
            a.user = profile.user.clone();
        }
        if a.password.is_none() {
            let found = crate::config::password::lookup(&profile)?;
            a.password = found.secret;
            // No user at all is RabbitMQ's guest/guest (see RabbitBackend::connect); a
            // user named without a password gets only what the person gives.
            if a.password.is_none()
                && let Some(user) = a.user.clone()
            {
                let shown = Target::Amqp(a.clone()).redacted();
                match ask(&format!("Password for {shown}: ")) {
                    Some(p) => a.password = Some(p),
                    None => {
                        return Err(ConfigError::NoPassword {
                            example: format!(
                                "{}://{}:PASSWORD@{}/...",
                                if a.tls { "amqps" } else { "amqp" },
                                encode_vhost(&user),
                                url_host(&a.host)
                            ),
                            user,
                            target: shown,
                            why: if found.empty.is_empty() {
                                "none given".into()
                            } else {
                                found.empty.join(", ")
                            },
                        });
                    }
                }
            }
        }
    }
    Ok(Resolved {
        read_only: sel.read_only || profile.read_only,
        theme: cfg.theme.clone(),
        colors: cfg.colors.clone(),
        keys: cfg.keys.clone(),
        config_path: path.map(|p| p.display().to_string()),
        target,
        profile_name,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amqp(raw: &str) -> AmqpTarget {
        match Target::parse(raw).unwrap() {
            Target::Amqp(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn amqp_vhosts_and_credentials() {
        let a = amqp("amqp://guest:gu%40st@127.0.0.1:5672/%2f");
        assert_eq!(
            (a.host.as_str(), a.port, a.vhost.as_str()),
            ("127.0.0.1", 5672, "/")
        );
        assert_eq!(a.user.as_deref(), Some("guest"));
        assert_eq!(a.password.as_ref().map(Secret::expose), Some("gu@st"));
        assert_eq!(amqp("amqp://h").vhost, "/");
        assert_eq!(amqp("amqp://h/").vhost, "/");
        assert_eq!(amqp("amqp://h/my%20vhost%2Fprod").vhost, "my vhost/prod");
        assert_eq!(amqp("amqp://h/caf%C3%A9").vhost, "café");
        let s = amqps_default_port();
        assert_eq!(s.port, 5671);
        assert_eq!(amqp("amqp://[::1]:5673/x").host, "::1");
        assert!(Target::parse("amqp://h/a/b").is_err());
        assert!(Target::parse("amqp:///vhost").is_err());
    }

    fn amqps_default_port() -> AmqpTarget {
        amqp("amqps://rabbit.example.com/")
    }

    #[test]
    fn password_never_shown() {
        let t = Target::parse("amqp://ops:s3cr3t@rabbit:5672/prod%2Feu").unwrap();
        assert_eq!(t.to_string(), "amqp://ops@rabbit:5672/prod%2Feu");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        let err = Target::parse("amqp://ops:s3cr3t@rabbit:notaport/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(err.contains("ops:***@"), "{err}");
    }

    #[test]
    fn url_errors_never_repeat_a_password() {
        for raw in [
            "amqp://guest:Zq%Sec9@rabbit/",
            "amqp://guest:4242?Sec9@rabbit/",
            "amqp://guest:12/Sec9@rabbit",
            "amqp://guest:12#Sec9@rabbit/",
            "amqp://guest:12/Zq%Sec9@rabbit",
        ] {
            let e = Target::parse(raw).unwrap_err().to_string();
            assert!(!e.contains("Sec9"), "{raw}: {e}");
        }
        let e = Target::parse("amqp://Us%zz:Sec9@rabbit/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user name") && !e.contains("Sec9"), "{e}");
        // `user:@host` names a user and gives no password: none, not an empty one.
        assert!(amqp("amqp://guest:@rabbit/").password.is_none());
        assert_eq!(amqp("amqp://guest:@rabbit/").user.as_deref(), Some("guest"));
        // An '@' escaped as %40 in a vhost is still fine.
        assert_eq!(amqp("amqp://rabbit/a%40b").vhost, "a@b");
        for bad in ["http://u:Sec9@h:15672", "http://u:Sec9@[::1", "ftp://h"] {
            let e = check_management_url(bad).unwrap_err();
            assert!(!e.contains("Sec9"), "{e}");
        }
        assert!(check_management_url("https://rabbit:15671/").is_ok());
    }

    #[test]
    fn kafka_broker_lists() {
        let Target::Kafka(k) = Target::parse("kafka://a:9092,b:9093, c").unwrap() else {
            panic!()
        };
        assert_eq!(k.brokers, vec!["a:9092", "b:9093", "c:9092"]);
        let Target::Kafka(k) = Target::parse("kafka://[::1]:19092").unwrap() else {
            panic!()
        };
        assert_eq!(k.brokers, vec!["[::1]:19092"]);
        assert!(Target::parse("kafka://").is_err());
        assert!(Target::parse("kafka://a:x").is_err());
        assert!(Target::parse("kafka://a,,b").is_err());
    }

    #[test]
    fn local_options() {
        let Target::Local(l) = Target::parse("local://demo?seed=7&clock=fixed").unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.scenario.as_str(), l.seed, l.fixed_clock),
            ("demo", 7, true)
        );
        assert_eq!(
            Target::Local(l).to_string(),
            "local://demo?seed=7&clock=fixed"
        );
        assert!(Target::parse("local://demo?seed=x").is_err());
        assert!(Target::parse("local://demo?color=red").is_err());
        assert!(Target::parse("local://").is_err());
        assert!(Target::parse("redis://x").is_err());
        assert!(Target::parse("just words").is_err());
    }

    #[test]
    fn config_file_profiles_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            r#"
default_profile = "prod"
[profiles.prod]
url = "amqp://rabbit.internal/%2f"
user = "ops"
password_command = "printf 'from-command\n'"
read_only = true
[profiles.kafka]
url = "kafka://k1:9092,k2:9092"
kafka = { "security.protocol" = "SASL_SSL" }
"#,
        )
        .unwrap();
        let sel = Selection {
            config: Some(path.clone()),
            ..Selection::default()
        };
        let r = resolve(&sel).unwrap();
        assert_eq!(r.profile_name.as_deref(), Some("prod"));
        assert!(r.read_only);
        let Target::Amqp(a) = &r.target else { panic!() };
        assert_eq!(a.user.as_deref(), Some("ops"));
        assert_eq!(
            a.password.as_ref().map(Secret::expose),
            Some("from-command")
        );
        // A URL alone ignores the default profile.
        let sel2 = Selection {
            url: Some("local://demo".into()),
            config: Some(path.clone()),
            ..Selection::default()
        };
        assert!(matches!(resolve(&sel2).unwrap().target, Target::Local(_)));
        let missing = Selection {
            profile: Some("nope".into()),
            config: Some(path.clone()),
            ..Selection::default()
        };
        let e = resolve(&missing).unwrap_err().to_string();
        assert!(e.contains("known: kafka, prod"), "{e}");

        std::fs::write(
            &path,
            "[profiles.x]\nurl = \"amqp://h\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        let e = load_config(&path, true).unwrap_err().to_string();
        assert!(e.contains("password_env") && !e.contains("hunter2"), "{e}");
        std::fs::write(&path, "[profiles.x]\nurl = \"amqp://h\"\nbogus = 1\n").unwrap();
        let e = load_config(&path, true).unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("line 3"), "{e}");
        assert!(load_config(&dir.path().join("absent.toml"), false).is_ok());
        assert!(load_config(&dir.path().join("absent.toml"), true).is_err());
    }
}
