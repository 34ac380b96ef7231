//! How the Kafka backend configures librdkafka clients (target, profile, safety settings),
//! remembers the last connection error for one-line messages, and maps librdkafka errors to
//! backend errors without leaking secrets.

use crate::backend::target::KafkaTarget;
use crate::backend::{BackendError, ConnectSettings};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one broker operation may take before it is reported instead of awaited.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// librdkafka reports connection trouble through a callback rather than the failing call
/// (which only says "timed out"); keeping the last one lets errors say *why*.
#[derive(Clone, Default)]
pub struct Ctx {
    last_error: Arc<Mutex<Option<String>>>,
}

impl Ctx {
    /// The last connection error reported since the previous call; taking it keeps an
    /// old, healed failure from being blamed for a later one.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        let text = if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_string()
        };
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }
}

impl ConsumerContext for Ctx {}

/// Everything needed to build clients for one cluster. Secrets live only in `properties`,
/// which is never printed.
#[derive(Clone)]
pub struct Settings {
    pub brokers: Vec<String>,
    /// librdkafka properties from the profile (and its credentials), passed through.
    properties: BTreeMap<String, String>,
    pub timeout: Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.properties.keys().map(String::as_str).collect();
        f.debug_struct("Settings")
            .field("brokers", &self.brokers)
            .field("property_names", &keys)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Properties mqscope decides itself: a profile must not be able to turn a peek into a
/// consumer that commits or joins a group, nor make a read create topics.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "allow.auto.create.topics",
];

impl Settings {
    pub fn new(brokers: Vec<String>) -> Self {
        Self {
            brokers,
            properties: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Settings from a target and its profile's settings: extra librdkafka properties, the
    /// user and password (for SASL) and TLS files.
    pub fn from_target(target: &KafkaTarget, p: &ConnectSettings) -> Result<Self, BackendError> {
        let mut s = Self::new(target.brokers.clone());
        for (k, v) in &p.kafka {
            if RESERVED.contains(&k.as_str()) {
                return Err(BackendError::InvalidArgument(format!(
                    "the profile sets \"{k}\", which mqscope manages itself (peeks never join groups or commit); remove it"
                )));
            }
            s.properties.insert(k.clone(), v.clone());
        }
        let mut default = |k: &str, v: String| {
            s.properties.entry(k.to_string()).or_insert(v);
        };
        if let Some(user) = &p.user {
            default("sasl.username", user.clone());
        }
        if let Some(ca) = &p.tls.ca_file {
            default("ssl.ca.location", ca.display().to_string());
        }
        if let Some(cert) = &p.tls.cert_file {
            default("ssl.certificate.location", cert.display().to_string());
        }
        if let Some(key) = &p.tls.key_file {
            default("ssl.key.location", key.display().to_string());
        }
        if p.tls.insecure {
            default("enable.ssl.certificate.verification", "false".into());
        }
        // The password is looked up only where the profile's properties hold none.
        if !s.properties.contains_key("sasl.password")
            && let Some(lookup) = &p.sasl_password
        {
            let pw = lookup.get().map_err(|reason| BackendError::Auth {
                target: s.shown(),
                reason,
            })?;
            if let Some(pw) = pw {
                s.properties
                    .insert("sasl.password".into(), pw.expose().to_string());
            }
        }
        Ok(s)
    }

    /// The cluster as users name it, safe to print.
    pub fn shown(&self) -> String {
        format!("kafka://{}", self.brokers.join(","))
    }

    /// Common client settings: bounded timeouts so nothing waits on a dead cluster forever.
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        let ms = self.timeout.as_millis().to_string();
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("socket.timeout.ms", ms.clone())
            .set("socket.connection.setup.timeout.ms", ms)
            .set("allow.auto.create.topics", "false");
        c
    }

    /// A consumer that only reads assigned partitions. librdkafka refuses `assign` without
    /// a group.id, so it carries `group` (a throwaway id): it never subscribes, so it never
    /// joins, and with offsets neither stored nor auto-committed nothing is committed.
    pub fn reader(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // End of partition tells a read it has everything below the high watermark,
            // even when the last offsets are compacted away or are transaction markers.
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "100")
            // Bound prefetching: a peek wants a window, not the topic.
            .set("queued.max.messages.kbytes", "16384")
            // Once that bound is reached librdkafka postpones a partition's next fetch by
            // this much (1 s by default), though a fast reader empties the queue in a
            // fraction of that: the default left an export of a large topic idle most of
            // the time.
            .set("fetch.queue.backoff.ms", "10");
        c
    }

    /// A client for metadata and offset queries only (never assigned or subscribed).
    /// `group`, when given, is a group whose committed offsets it reads.
    pub fn querier(&self, group: Option<&str>) -> ClientConfig {
        let mut c = self.base();
        if let Some(g) = group {
            c.set("group.id", g);
        }
        c.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        c
    }

    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("message.timeout.ms", self.timeout.as_millis().to_string());
        // Retries never duplicate or reorder a record (replays rely on it); implies acks=all.
        c.set("enable.idempotence", "true");
        c
    }
}

/// Turn a librdkafka error into a backend error; `what` says what we were doing.
pub fn map_err(e: &KafkaError, what: &str, shown: &str, ctx: &Ctx) -> BackendError {
    use RDKafkaErrorCode as C;
    // rdkafka leaves admin errors without a code, though they carry one.
    let code = match e {
        KafkaError::AdminOp(c) => Some(*c),
        other => other.rdkafka_error_code(),
    };
    let detail = || match ctx.last_error() {
        Some(last) => format!("{what}: {e} ({last})"),
        None => format!("{what}: {e}"),
    };
    match code {
        Some(
            C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::Resolve
            | C::BrokerNotAvailable
            | C::LeaderNotAvailable
            | C::NetworkException,
        ) => BackendError::Unreachable {
            target: shown.to_string(),
            reason: detail(),
        },
        Some(C::Authentication | C::SaslAuthenticationFailed | C::SSL) => BackendError::Auth {
            target: shown.to_string(),
            reason: detail(),
        },
        Some(C::UnsupportedFeature | C::UnsupportedVersion | C::UnsupportedForMessageFormat) => {
            BackendError::Unsupported {
                what: format!("{what} ({e}; the broker does not offer this API)"),
                backend: "kafka",
            }
        }
        _ => BackendError::Broker(detail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::target::Target;

    fn target(raw: &str) -> KafkaTarget {
        match Target::parse(raw) {
            Ok(Target::Kafka(k)) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn profile_properties_pass_through_but_cannot_enable_commits() {
        let mut p = ConnectSettings::default();
        p.kafka
            .insert("security.protocol".into(), "SASL_SSL".into());
        p.user = Some("alice".into());
        let s = Settings::from_target(&target("kafka://a:1,b:2"), &p).unwrap();
        let c = s.reader("throwaway");
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.username"), Some("alice"));
        assert_eq!(c.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("group.id"), Some("throwaway"));

        p.kafka.insert("enable.auto.commit".into(), "true".into());
        let e = Settings::from_target(&target("kafka://a:1"), &p).unwrap_err();
        assert!(e.to_string().contains("enable.auto.commit"), "{e}");
    }

    #[test]
    fn passwords_are_not_printed() {
        let mut p = ConnectSettings::default();
        p.kafka.insert("sasl.password".into(), "hunter2".into());
        let s = Settings::from_target(&target("kafka://a:1"), &p).unwrap();
        assert_eq!(s.producer().get("sasl.password"), Some("hunter2"));
        let shown = format!("{s:?} {}", s.shown());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
