//! Opening a backend: the settings a connection takes beyond its target, and the factory
//! that picks the backend for a target.

use super::target::{Secret, Target, TlsSettings};
use super::{Backend, Result, kafka, local, rabbitmq};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a profile says about connecting, beyond its URL, resolved by config (which looks up
/// the password): the management URL and TLS files (RabbitMQ), librdkafka properties,
/// credentials and TLS files (Kafka).
#[derive(Clone, Default)]
pub struct ConnectSettings {
    /// RabbitMQ management API, when not at http(s)://host:15672.
    pub management_url: Option<String>,
    pub tls: TlsSettings,
    /// Extra librdkafka properties (e.g. `"security.protocol" = "SASL_SSL"`).
    pub kafka: BTreeMap<String, String>,
    /// The user to log in as (Kafka's `sasl.username`).
    pub user: Option<String>,
    /// Where Kafka's SASL password comes from, when the profile names a user or a password
    /// source and its librdkafka properties hold none. Asked at each connect, so a lookup
    /// that failed (a slow password command) is tried again when the TUI reconnects.
    pub sasl_password: Option<PasswordLookup>,
}

/// A password looked up when a connection is made (the profile's `password_env` or
/// `password_command`, which config knows how to read): the password, none, or why not.
#[derive(Clone)]
pub struct PasswordLookup(Arc<LookupFn>);

type LookupFn = dyn Fn() -> std::result::Result<Option<Secret>, String> + Send + Sync;

impl PasswordLookup {
    pub fn new(
        lookup: impl Fn() -> std::result::Result<Option<Secret>, String> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(lookup))
    }

    /// Look the password up now.
    pub fn get(&self) -> std::result::Result<Option<Secret>, String> {
        (self.0)()
    }
}

impl fmt::Debug for PasswordLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordLookup")
    }
}

/// librdkafka properties for display (`Debug` of settings and profiles): the values of
/// those whose name says they hold a credential are masked.
pub fn kafka_properties_shown(props: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    props
        .iter()
        .map(|(k, v)| {
            let secret = ["password", "secret", "token", "key"]
                .iter()
                .any(|w| k.contains(w));
            (k.as_str(), if secret { "***" } else { v.as_str() })
        })
        .collect()
}

impl fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kafka = kafka_properties_shown(&self.kafka);
        f.debug_struct("ConnectSettings")
            .field("management_url", &self.management_url)
            .field("tls", &self.tls)
            .field("kafka", &kafka)
            .field("user", &self.user)
            .field("sasl_password", &self.sasl_password)
            .finish()
    }
}

/// How to connect, beyond the target itself.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Start the demo's live traffic (the TUI wants moving numbers; one-shot commands do not).
    pub live: bool,
    /// The settings of the profile the target came from.
    pub settings: ConnectSettings,
    /// The command needs AMQP alone (publishing): on RabbitMQ the management API is not
    /// asked at connect, so a user without the monitoring tag (or a broker without the
    /// plugin) can still publish.
    pub amqp_only: bool,
}

/// Open a backend for a target.
pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<Arc<dyn Backend>> {
    match target {
        Target::Local(local) => local::connect(local, opts),
        Target::Amqp(amqp) => Ok(Arc::new(
            rabbitmq::RabbitBackend::connect(amqp, opts).await?,
        )),
        Target::Kafka(k) => kafka::connect(k, opts).await,
    }
}
