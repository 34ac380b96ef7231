//! A profile's schema registry: `schema_registry = { url = "...", ... }`, its secret read
//! from the environment or a command (as the profile's password is), never from the file.

use super::password::{command_timeout, run_command};
use super::{ConfigError, Profile, Resolved, Secret};
use crate::backend::registry::{Registry, RegistryAuth, RegistrySettings};
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// Overrides the profile's registry URL (keeping its credentials), or names one for a
/// target given by URL alone.
pub const REGISTRY_ENV: &str = "MQSCOPE_SCHEMA_REGISTRY";

/// The `schema_registry` table of a profile.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// e.g. `http://registry:8081`, or Apicurio's `.../apis/ccompat/v7`.
    #[serde(default)]
    pub url: String,
    /// Basic authentication's user (Confluent Cloud: the API key).
    pub user: Option<String>,
    /// The environment variable holding the basic-auth password.
    pub password_env: Option<String>,
    /// A command whose output is the basic-auth password.
    pub password_command: Option<String>,
    /// The environment variable holding a bearer token (instead of a user and password).
    pub token_env: Option<String>,
    /// A command whose output is a bearer token.
    pub token_command: Option<String>,
    /// A PEM file of certificate authorities to trust, relative to the config file.
    pub ca_file: Option<String>,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |c: &Option<String>| c.as_ref().map(|_| "***");
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password_env", &self.password_env)
            .field("password_command", &masked(&self.password_command))
            .field("token_env", &self.token_env)
            .field("token_command", &masked(&self.token_command))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The registry `resolved`'s profile names (or [`REGISTRY_ENV`] does), its secret looked
/// up now; `None` when there is none.
pub fn registry(resolved: &Resolved) -> Result<Option<Arc<Registry>>, ConfigError> {
    let mut config = resolved.profile.schema_registry.clone().unwrap_or_default();
    if let Ok(url) = std::env::var(REGISTRY_ENV)
        && !url.trim().is_empty()
    {
        config.url = url.trim().to_string();
    }
    if config.url.is_empty() {
        return Ok(None);
    }
    let base = super::schemas::config_dir(resolved);
    let wrong = |reason: String| ConfigError::Schema(format!("schema_registry: {reason}"));
    let auth = auth(&config, &resolved.profile).map_err(wrong)?;
    let settings = RegistrySettings {
        url: config.url.clone(),
        auth,
        ca_file: config.ca_file.as_ref().map(|f| base.join(f)),
    };
    let registry = Registry::new(settings).map_err(|e| wrong(e.to_string()))?;
    Ok(Some(Arc::new(registry)))
}

fn auth(config: &RegistryConfig, profile: &Profile) -> Result<RegistryAuth, String> {
    let token = secret(&config.token_env, &config.token_command, "token", profile)?;
    let password = secret(
        &config.password_env,
        &config.password_command,
        "password",
        profile,
    )?;
    match (token, &config.user, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err("give a token or a user and password, not both".into())
        }
        (Some(t), None, None) => Ok(RegistryAuth::Bearer(t)),
        (None, Some(user), Some(password)) => Ok(RegistryAuth::Basic {
            user: user.clone(),
            password,
        }),
        (None, Some(user), None) => Err(format!(
            "user \"{user}\" has no password: give password_env or password_command"
        )),
        (None, None, Some(_)) => Err("a password without a user: give user too".into()),
        (None, None, None) => Ok(RegistryAuth::None),
    }
}

/// A secret from its variable (which must be set and not empty) or its command.
fn secret(
    env: &Option<String>,
    command: &Option<String>,
    what: &str,
    profile: &Profile,
) -> Result<Option<Secret>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            Ok(_) => Err(format!("${var} ({what}_env) is empty")),
            Err(_) => Err(format!("${var} ({what}_env) is not set")),
        };
    }
    if let Some(cmd) = command {
        let timeout = command_timeout(profile).map_err(|e| e.to_string())?;
        let v = run_command(cmd, timeout).map_err(|e| format!("{what}_command: {e}"))?;
        if v.is_empty() {
            return Err(format!("{what}_command printed nothing"));
        }
        return Ok(Some(Secret::new(v)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::written;

    fn config(f: impl FnOnce(&mut RegistryConfig)) -> RegistryConfig {
        let mut c = RegistryConfig {
            url: "http://registry:8081".into(),
            ..RegistryConfig::default()
        };
        f(&mut c);
        c
    }

    #[test]
    fn a_profile_names_its_registry_in_one_table_and_a_misspelt_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(
            dir.path(),
            "config.toml",
            "[profiles.k]\nurl = \"kafka://k1:9092\"\nschema_registry = { url = \"http://r:8081\", user = \"u\", password_command = \"printf Pw9\", ca_file = \"ca.pem\" }\n",
        );
        let cfg = crate::config::load_config(&path, true).unwrap();
        let p = &cfg.profiles["k"];
        let r = p.schema_registry.as_ref().unwrap();
        assert_eq!(r.url, "http://r:8081");
        assert_eq!(r.ca_file.as_deref(), Some("ca.pem"));
        assert!(!format!("{p:?}").contains("Pw9"));
        std::fs::write(
            &path,
            "[profiles.k]\nurl = \"kafka://k1:9092\"\nschema_registry = { url = \"http://r:8081\", passwrd_env = \"X\" }\n",
        )
        .unwrap();
        let e = crate::config::load_config(&path, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("passwrd_env"), "{e}");
    }

    #[test]
    fn basic_or_bearer_secrets_come_from_commands_or_variables_and_never_show() {
        let p = Profile::default();
        let c = config(|c| {
            c.user = Some("key".into());
            c.password_command = Some("printf S3cretReg".into());
        });
        let RegistryAuth::Basic { user, password } = auth(&c, &p).unwrap() else {
            panic!()
        };
        assert_eq!((user.as_str(), password.expose()), ("key", "S3cretReg"));
        assert!(!format!("{c:?} {password:?}").contains("S3cretReg"));
        let c = config(|c| c.token_command = Some("printf Tok3n".into()));
        assert!(matches!(auth(&c, &p).unwrap(), RegistryAuth::Bearer(t) if t.expose() == "Tok3n"));
        let c = config(|c| c.token_env = Some("MQSCOPE_TEST_UNSET_REGISTRY_TOKEN".into()));
        let e = auth(&c, &p).unwrap_err();
        assert!(e.contains("is not set"), "{e}");
        let c = config(|c| c.user = Some("key".into()));
        assert!(auth(&c, &p).unwrap_err().contains("has no password"));
        let c = config(|c| {
            c.user = Some("key".into());
            c.password_command = Some("printf a".into());
            c.token_command = Some("printf b".into());
        });
        assert!(auth(&c, &p).unwrap_err().contains("not both"));
        assert!(matches!(
            auth(&config(|_| {}), &p).unwrap(),
            RegistryAuth::None
        ));
    }
}
