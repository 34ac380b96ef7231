//! The decoder a profile describes: its `[decode]` rules and the local schema files they
//! and `schema_ids` name (`.avsc`, `.proto` compiled here, descriptor sets), read once,
//! relative to the config file, and its schema registry.

use super::{ConfigError, Resolved};
use crate::backend::registry::{Registry, RegistrySchemas};
use crate::format::decode::{Decoder, FramingRule, LocalSchemas, Origin, Rule, Schema, SchemaKind};
use protox::file::{ChainFileResolver, IncludeFileResolver};
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
            let what = format!("queue {queue}");
            schemas.add_queue(queue, false, read(&base, file, Some(rule), &what)?);
        }
        if let Some(key) = rule.key.as_deref()
            && let Some(file) = &key.schema
        {
            let what = format!("the keys of {queue}");
            schemas.add_queue(queue, true, read(&base, file, Some(key), &what)?);
        }
    }
    for (id, file) in &profile.schema_ids {
        let n: u32 = id.parse().map_err(|_| {
            ConfigError::Schema(format!(
                "schema_ids: \"{id}\" is not a schema id (a number from 0 to 4294967295)"
            ))
        })?;
        schemas.add_id(n, read(&base, file, None, &format!("schema id {n}"))?);
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

/// The schema file `file` (relative to `base`) for `what`, read by its extension; `rule`
/// is the queue's (none for `schema_ids`), naming a Protobuf message and include paths.
fn read(base: &Path, file: &str, rule: Option<&Rule>, what: &str) -> Result<Schema, ConfigError> {
    let path: PathBuf = base.join(file);
    let err = |why: String| ConfigError::Schema(format!("schema for {what}: {why}"));
    let cannot = |e: std::io::Error| err(format!("cannot read {}: {e}", path.display()));
    let origin = Origin::File(file.to_string());
    let message = rule.and_then(|r| r.message.as_deref());
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let schema = match ext.as_str() {
        "avsc" => Schema::avro(&std::fs::read_to_string(&path).map_err(cannot)?, origin),
        "proto" => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(file);
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if !path.is_file() {
                // protox says only that the file is not in an include path.
                std::fs::metadata(&path).map_err(cannot)?;
            }
            let mut resolver = ChainFileResolver::new();
            resolver.add(IncludeFileResolver::new(dir));
            for include in rule.map(|r| &r.includes[..]).unwrap_or_default() {
                resolver.add(IncludeFileResolver::new(base.join(include)));
            }
            Schema::protobuf_compiled(name, resolver, message, origin)
        }
        "desc" | "pb" | "binpb" | "protoset" => {
            Schema::protobuf_descriptor_set(&std::fs::read(&path).map_err(cannot)?, message, origin)
        }
        _ => {
            return Err(err(format!(
                "{} is not a schema file mqscope reads (.avsc, .proto, or a descriptor set: .desc, .pb, .binpb, .protoset)",
                path.display()
            )));
        }
    }
    .map_err(|e| err(e.to_string()))?;
    // A bare Protobuf payload says nothing of its type: a queue's rule must name it, unless
    // its payloads are all Confluent-framed (their message indexes name it).
    if let (SchemaKind::Protobuf(p), Some(rule)) = (&schema.kind, rule)
        && p.message().is_none()
        && rule.framing != Some(FramingRule::Confluent)
    {
        return Err(err(format!(
            "{file} is Protobuf: name the message type with message = \"...\" (it has {})",
            p.message_names().join(", ")
        )));
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Profile, Target};
    use crate::format::decode::Input;

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

    #[test]
    fn a_proto_file_compiles_with_its_imports_and_needs_a_message_name() {
        let dir = tempfile::tempdir().unwrap();
        let common = dir.path().join("common");
        std::fs::create_dir_all(dir.path().join("protos")).unwrap();
        std::fs::create_dir_all(&common).unwrap();
        std::fs::write(
            common.join("money.proto"),
            "syntax = \"proto3\"; package common; message Money { int64 cents = 1; }",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("protos/pay.proto"),
            "syntax = \"proto3\"; package pay; import \"money.proto\";\n\
             message Payment { common.Money amount = 1; }\nmessage Refund { string why = 1; }",
        )
        .unwrap();
        let mut profile = Profile::default();
        let rule = Rule {
            schema: Some("protos/pay.proto".into()),
            message: Some("Payment".into()),
            includes: vec!["common".into()],
            ..Rule::default()
        };
        profile.decode.insert("q".into(), rule);
        let d = decoder(&resolved(dir.path(), profile.clone())).unwrap();
        let body = [0x0a, 0x02, 0x08, 0x05];
        let got = d
            .decode(&Input {
                bytes: &body,
                queue: "q",
                ..Input::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!(got.value, serde_json::json!({"amount": {"cents": "5"}}));
        assert_eq!(got.decoded_as.message.as_deref(), Some("pay.Payment"));

        profile.decode.get_mut("q").unwrap().message = None;
        let e = decoder(&resolved(dir.path(), profile.clone()))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "schema for queue q: protos/pay.proto is Protobuf: name the message type with message = \"...\" (it has pay.Payment, pay.Refund)"
        );
        // Confluent-framed payloads name their message by index: none is needed.
        profile.decode.get_mut("q").unwrap().framing = Some(FramingRule::Confluent);
        assert!(decoder(&resolved(dir.path(), profile.clone())).is_ok());

        profile.decode.get_mut("q").unwrap().includes.clear();
        let e = decoder(&resolved(dir.path(), profile.clone()))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("import 'money.proto' not found"),
            "{e}"
        );
        profile.decode.get_mut("q").unwrap().schema = Some("protos/none.proto".into());
        let e = decoder(&resolved(dir.path(), profile)).err().unwrap();
        assert!(e.to_string().contains("cannot read"), "{e}");
        assert!(e.to_string().contains("none.proto"), "{e}");
    }
}
