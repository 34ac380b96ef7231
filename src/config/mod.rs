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

use crate::backend::kafka_properties_shown;
use crate::backend::target::redact_raw;
pub use crate::backend::target::{
    AmqpTarget, BadUrl, DEFAULT_SEED, KafkaTarget, LocalTarget, Secret, Target, TlsSettings,
    check_management_url, encode_vhost, url_host,
};
use crate::backend::{ConnectSettings, PasswordLookup};
pub use password::password_for;

mod registry;
mod schemas;
pub use registry::{REGISTRY_ENV, RegistryConfig, registry};
pub use schemas::{decoder, decoder_with};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
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
    #[error("{0}")]
    Schema(String),
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
    /// The database `mqscope record` writes for this profile: traces (CLI and TUI) merge
    /// the journey recorded there with what the broker holds now.
    pub record_db: Option<PathBuf>,
    /// How to read what is inside each queue's or topic's messages, by name, e.g.
    /// `orders = { format = "avro", schema = "orders.avsc" }` (see `format::decode::Rule`).
    #[serde(default)]
    pub decode: BTreeMap<String, crate::format::decode::Rule>,
    /// Schemas by Confluent schema id, from local files, for framed bodies without a
    /// registry: `schema_ids = { "42" = "orders-v2.avsc" }`.
    #[serde(default)]
    pub schema_ids: BTreeMap<String, String>,
    /// A Confluent-compatible schema registry for Confluent-framed bodies:
    /// `schema_registry = { url = "http://registry:8081" }` (see [`RegistryConfig`]).
    pub schema_registry: Option<RegistryConfig>,
}

/// A URL for display: parsed and shown without its password, or masked when unparsable.
fn shown_url(url: &str) -> String {
    Target::parse(url)
        .map(|t| t.redacted())
        .unwrap_or_else(|_| redact_raw(url))
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kafka = kafka_properties_shown(&self.kafka);
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
            .field("record_db", &self.record_db)
            .field("decode", &self.decode)
            .field("schema_ids", &self.schema_ids)
            .field("schema_registry", &self.schema_registry)
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

impl Profile {
    /// What a backend needs of this profile to connect to `target`. For a Kafka target whose
    /// profile names a user or a password source and whose librdkafka properties hold no
    /// password, the backend gets this profile's password lookup, run when it connects (AMQP
    /// passwords went into the target at [`resolve`]).
    pub fn connect_settings(&self, target: &Target) -> ConnectSettings {
        let sasl_password = (matches!(target, Target::Kafka(_))
            && !self.kafka.contains_key("sasl.password")
            && (self.user.is_some()
                || self.password_env.is_some()
                || self.password_command.is_some()))
        .then(|| {
            let profile = self.clone();
            PasswordLookup::new(move || password_for(&profile).map_err(|e| e.to_string()))
        });
        ConnectSettings {
            management_url: self.management_url.clone(),
            tls: self.tls.clone(),
            kafka: self.kafka.clone(),
            user: self.user.clone(),
            sasl_password,
        }
    }
}

/// What a backend needs of a resolved profile to connect: see [`Profile::connect_settings`].
pub fn connect_settings(resolved: &Resolved) -> ConnectSettings {
    resolved.profile.connect_settings(&resolved.target)
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
    use crate::testing::written;

    #[test]
    fn only_kafka_targets_look_up_a_sasl_password_and_only_when_the_profile_lacks_one() {
        let kafka = Target::parse("kafka://k1:9092").unwrap();
        let amqp = Target::parse("amqp://rabbit/").unwrap();
        let p = Profile {
            user: Some("ops".into()),
            password_command: Some("printf Kf7Secret".into()),
            ..Profile::default()
        };
        let found = p.connect_settings(&kafka).sasl_password.map(|l| l.get());
        assert_eq!(
            found
                .as_ref()
                .map(|r| r.as_ref().map(|pw| pw.as_ref().map(Secret::expose))),
            Some(Ok(Some("Kf7Secret")))
        );
        assert!(!format!("{:?}", p.connect_settings(&kafka)).contains("Kf7Secret"));
        // AMQP passwords went into the target at resolve: the command is not run again.
        assert!(p.connect_settings(&amqp).sasl_password.is_none());
        let mut given = p.clone();
        given.kafka.insert("sasl.password".into(), "inline".into());
        assert!(given.connect_settings(&kafka).sasl_password.is_none());
        let failing = Profile {
            password_command: Some("exit 3".into()),
            ..p
        };
        assert!(matches!(
            failing
                .connect_settings(&kafka)
                .sasl_password
                .map(|l| l.get()),
            Some(Err(_))
        ));
    }

    #[test]
    fn config_file_profiles_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(
            dir.path(),
            "config.toml",
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
        );
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
