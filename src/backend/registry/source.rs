//! The profile's local schema files with a registry behind them, as one [`SchemaSource`].

use super::Registry;
use crate::format::decode::{LocalSchemas, Schema, SchemaSource};
use std::sync::Arc;

/// Local files first (a `schema_ids` entry overrides the registry), then the registry.
pub struct RegistrySchemas {
    local: LocalSchemas,
    registry: Arc<Registry>,
    /// Ask the registry for an id not cached yet, blocking the caller (the command line).
    /// The TUI, whose decoding must never wait, fetches a page's ids beforehand
    /// ([`Registry::prefetch`]) and looks in the cache only.
    fetch: bool,
}

impl RegistrySchemas {
    pub fn new(local: LocalSchemas, registry: Arc<Registry>, fetch: bool) -> Self {
        RegistrySchemas {
            local,
            registry,
            fetch,
        }
    }
}

impl SchemaSource for RegistrySchemas {
    fn by_id(&self, id: u32) -> Option<Arc<Schema>> {
        if let Some(s) = self.local.by_id(id) {
            return Some(s);
        }
        let answer = match self.registry.cached(id) {
            Some(a) => a,
            None if self.fetch => self.registry.schema_blocking(id),
            None => return None,
        };
        answer.ok()
    }

    fn for_queue(&self, queue: &str, key: bool) -> Option<Arc<Schema>> {
        self.local.for_queue(queue, key)
    }

    fn missing(&self, id: u32) -> Option<String> {
        match self.registry.cached(id)? {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        }
    }
}
