//! The decoder a profile describes: its `[decode]` rules and the local schema files they
//! and `schema_ids` name, read once, relative to the config file, and its schema registry.

use super::{ConfigError, Resolved};
use crate::backend::registry::{Registry, RegistrySchemas};
use crate::format::decode::{Decoder, LocalSchemas, Origin, Schema};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The decoder for `resolved`'s profile, asking its registry (if any) for a schema id
/// when a body needs it: for the command line, which may wait. A schema file that cannot
/// be read or parsed is an error naming the file and the queue or id it was for.
pub fn decoder(resolved: &Resolved) -> Result<Decoder, ConfigError> {
    decoder_with(resolved, super::registry(resolved)?, true)
}

/// The decoder for `resolved`'s profile with `registry` behind its local schemas; it
/// asks the registry itself when `fetch`, else finds only what was fetched beforehand
/// ([`Registry::prefetch`]).
pub fn decoder_with(
    resolved: &Resolved,
    registry: Option<Arc<Registry>>,
    fetch: bool,
) -> Result<Decoder, ConfigError> {
    let base = config_dir(resolved);
    let profile = &resolved.profile;
    let mut schemas = LocalSchemas::default();
    for (queue, rule) in &profile.decode {
        if let Some(file) = &rule.schema {
            schemas.add_queue(queue, false, read(&base, file, &format!("queue {queue}"))?);
        }
        if let Some(file) = rule.key.as_ref().and_then(|k| k.schema.as_ref()) {
            schemas.add_queue(
                queue,
                true,
                read(&base, file, &format!("the keys of {queue}"))?,
            );
        }
    }
    for (id, file) in &profile.schema_ids {
        let n: u32 = id.parse().map_err(|_| {
            ConfigError::Schema(format!(
                "schema_ids: \"{id}\" is not a schema id (a number from 0 to 4294967295)"
            ))
        })?;
        schemas.add_id(n, read(&base, file, &format!("schema id {n}"))?);
    }
    let rules = profile.decode.clone();
    Ok(match registry {
        Some(r) => Decoder::new(rules, Arc::new(RegistrySchemas::new(schemas, r, fetch))),
        None => Decoder::new(rules, Arc::new(schemas)),
    })
}

/// Where files a profile names are read from: beside the config file.
pub(super) fn config_dir(resolved: &Resolved) -> PathBuf {
    resolved
        .config_path
        .as_deref()
        .and_then(|p| Path::new(p).parent())
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(base: &Path, file: &str, what: &str) -> Result<Schema, ConfigError> {
    let path: PathBuf = base.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::Schema(format!(
            "schema for {what}: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let kind = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if kind != "avsc" {
        return Err(ConfigError::Schema(format!(
            "schema for {what}: {} is not an Avro schema (.avsc); Protobuf and JSON Schema are not read yet",
            path.display()
        )));
    }
    Schema::avro(&text, Origin::File(file.to_string()))
        .map_err(|e| ConfigError::Schema(format!("schema for {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Profile, Target};
    use crate::format::decode::{Input, Rule};

    fn resolved(dir: &Path, profile: Profile) -> Resolved {
        Resolved {
            target: Target::parse("local://demo").unwrap(),
            profile_name: Some("p".into()),
            profile,
            read_only: false,
            theme: None,
            colors: Default::default(),
            keys: Default::default(),
            config_path: Some(dir.join("config.toml").display().to_string()),
        }
    }

    #[test]
    fn schema_files_are_read_beside_the_config_and_named_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("n.avsc"), r#""long""#).unwrap();
        let mut profile = Profile::default();
        profile.decode.insert(
            "q".into(),
            Rule {
                schema: Some("n.avsc".into()),
                ..Rule::default()
            },
        );
        profile.schema_ids.insert("5".into(), "n.avsc".into());
        let d = decoder(&resolved(dir.path(), profile.clone())).unwrap();
        let bare = Input {
            bytes: &[0x54],
            queue: "q",
            ..Input::default()
        };
        assert_eq!(d.decode(&bare).unwrap().unwrap().value, 42);
        let framed = Input {
            bytes: &[0, 0, 0, 0, 5, 0x54],
            queue: "other",
            ..Input::default()
        };
        assert_eq!(
            d.decode(&framed).unwrap().unwrap().decoded_as.schema_id,
            Some(5)
        );

        profile.schema_ids.insert("five".into(), "n.avsc".into());
        let e = decoder(&resolved(dir.path(), profile.clone()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("\"five\" is not a schema id"), "{e}");
        profile.schema_ids.clear();
        profile.decode.get_mut("q").unwrap().schema = Some("gone.avsc".into());
        let e = decoder(&resolved(dir.path(), profile)).err().unwrap();
        assert!(
            e.to_string().starts_with("schema for queue q: cannot read"),
            "{e}"
        );
        assert!(e.to_string().contains("gone.avsc"), "{e}");
    }
}
