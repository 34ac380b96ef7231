//! The RabbitMQ brokers a suite can run against: the machine's own (Debian 12's 3.10, which
//! scripts/test starts) always, and the 4.0 and 4.3 nodes of scripts/rabbitmq-versions when
//! its `env` named them (scripts/test does so under MQSCOPE_RABBITMQ_VERSIONS=1).

use mqscope::backend::ConnectOptions;
use mqscope::config::Profile;

/// The machine's own broker, as scripts/test starts it: loopback, guest/guest.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_MGMT_URL: &str = "http://127.0.0.1:15672";

/// What `scripts/rabbitmq-versions env` exports: `{prefix}_AMQP` and `{prefix}_MGMT` for
/// each version that answers.
const VERSIONS: [(&str, &str); 2] = [
    ("4.0", "MQSCOPE_TEST_RABBITMQ_4_0"),
    ("4.3", "MQSCOPE_TEST_RABBITMQ_4_3"),
];

/// One broker to test against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitBroker {
    /// "3.10", "4.0" or "4.3": for test names and messages, and for what differs between
    /// versions (4.3 no longer counts `basic.nack(requeue)` towards a delivery limit).
    pub version: &'static str,
    pub amqp_url: String,
    /// The management API's base URL.
    pub mgmt_url: String,
}

impl RabbitBroker {
    /// Options for mqscope's backend on this broker, its management URL included.
    pub fn options(&self) -> ConnectOptions {
        let mut profile = Profile::default();
        profile.url = self.amqp_url.clone();
        profile.management_url = Some(self.mgmt_url.clone());
        ConnectOptions {
            profile: Some(profile),
            ..ConnectOptions::default()
        }
    }
}

/// The brokers to run against, the machine's own first. Panics when a version has only one
/// of its two URLs: half a setting would otherwise drop that version without a word.
pub fn rabbit_brokers() -> Vec<RabbitBroker> {
    brokers_from(|name| std::env::var(name).ok())
}

fn brokers_from(var: impl Fn(&str) -> Option<String>) -> Vec<RabbitBroker> {
    let mut brokers = vec![RabbitBroker {
        version: "3.10",
        amqp_url: DEFAULT_AMQP_URL.to_string(),
        mgmt_url: DEFAULT_MGMT_URL.to_string(),
    }];
    for (version, prefix) in VERSIONS {
        let set = |suffix: &str| var(&format!("{prefix}_{suffix}")).filter(|v| !v.is_empty());
        match (set("AMQP"), set("MGMT")) {
            (Some(amqp_url), Some(mgmt_url)) => brokers.push(RabbitBroker {
                version,
                amqp_url,
                mgmt_url,
            }),
            (None, None) => {}
            _ => panic!(
                "{prefix}_AMQP and {prefix}_MGMT go together \
                 (eval \"$(scripts/rabbitmq-versions env)\" sets both)"
            ),
        }
    }
    brokers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Vec<RabbitBroker> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        brokers_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_the_versions_env_only_the_machines_own_broker_is_tested() {
        let brokers = from(&[]);
        assert_eq!(brokers.len(), 1);
        assert_eq!(brokers[0].version, "3.10");
        assert_eq!(brokers[0].amqp_url, DEFAULT_AMQP_URL);
        assert_eq!(brokers[0].mgmt_url, DEFAULT_MGMT_URL);
    }

    #[test]
    fn the_versions_that_env_names_follow_the_machines_own_broker() {
        let brokers = from(&[
            (
                "MQSCOPE_TEST_RABBITMQ_4_3_AMQP",
                "amqp://guest:guest@127.0.0.1:5690/%2f",
            ),
            ("MQSCOPE_TEST_RABBITMQ_4_3_MGMT", "http://127.0.0.1:15690"),
            (
                "MQSCOPE_TEST_RABBITMQ_4_0_AMQP",
                "amqp://guest:guest@127.0.0.1:5680/%2f",
            ),
            ("MQSCOPE_TEST_RABBITMQ_4_0_MGMT", "http://127.0.0.1:15680"),
        ]);
        let versions: Vec<_> = brokers.iter().map(|b| b.version).collect();
        assert_eq!(versions, ["3.10", "4.0", "4.3"]);
        assert_eq!(brokers[2].amqp_url, "amqp://guest:guest@127.0.0.1:5690/%2f");
        assert_eq!(brokers[2].mgmt_url, "http://127.0.0.1:15690");
    }

    #[test]
    fn an_empty_url_counts_as_unset() {
        let brokers = from(&[
            ("MQSCOPE_TEST_RABBITMQ_4_0_AMQP", ""),
            ("MQSCOPE_TEST_RABBITMQ_4_0_MGMT", ""),
        ]);
        assert_eq!(brokers.len(), 1);
    }

    #[test]
    #[should_panic(expected = "MQSCOPE_TEST_RABBITMQ_4_0_MGMT go together")]
    fn a_version_with_only_its_amqp_url_is_an_error() {
        from(&[(
            "MQSCOPE_TEST_RABBITMQ_4_0_AMQP",
            "amqp://guest:guest@127.0.0.1:5680/%2f",
        )]);
    }
}
