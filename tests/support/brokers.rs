//! The RabbitMQ brokers a suite can run against: the machine's own (Debian 12's 3.10, which
//! scripts/test starts) always, and the 4.0 and 4.3 nodes of scripts/rabbitmq-versions when
//! its `env` named them (scripts/test does so under MQSCOPE_RABBITMQ_VERSIONS=1). And the
//! one broker a RabbitMQ suite runs against in this process, [`rabbit`], which scripts/test
//! points at each version in turn.

use mqscope::backend::{ConnectOptions, ConnectSettings};
use mqscope::config::encode_vhost;
use std::process::Command;
use std::sync::OnceLock;

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
        ConnectOptions {
            settings: ConnectSettings {
                management_url: Some(self.mgmt_url.clone()),
                ..ConnectSettings::default()
            },
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

/// The broker of this test process: `MQSCOPE_TEST_RABBITMQ_AMQP` (an amqp:// URL of vhost
/// `/`), `MQSCOPE_TEST_RABBITMQ_MGMT` (the management API's base URL) and
/// `MQSCOPE_TEST_RABBITMQCTL` (the command, words split on spaces, that runs rabbitmqctl
/// against it, e.g. `scripts/rabbitmq-versions ctl 4.3`), each defaulting to the machine's
/// own 3.10. The suites that start private nodes (restart, TLS, listing) do not use it.
pub fn rabbit() -> &'static TestRabbit {
    static RABBIT: OnceLock<TestRabbit> = OnceLock::new();
    RABBIT.get_or_init(|| TestRabbit::from(|name| std::env::var(name).ok()))
}

/// One shared RabbitMQ broker, reached as guest/guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRabbit {
    /// Vhost `/`, with guest's credentials.
    pub amqp_url: String,
    /// The management API's base URL, without a trailing slash.
    pub mgmt_url: String,
    /// `host:port` of the AMQP listener, for URLs with other users or vhosts.
    pub authority: String,
    ctl: Vec<String>,
}

impl TestRabbit {
    fn from(var: impl Fn(&str) -> Option<String>) -> TestRabbit {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let amqp_url = set("MQSCOPE_TEST_RABBITMQ_AMQP").unwrap_or_else(|| DEFAULT_AMQP_URL.into());
        let mgmt_url = set("MQSCOPE_TEST_RABBITMQ_MGMT")
            .unwrap_or_else(|| DEFAULT_MGMT_URL.into())
            .trim_end_matches('/')
            .to_string();
        let ctl: Vec<String> = set("MQSCOPE_TEST_RABBITMQCTL")
            .unwrap_or_else(|| "rabbitmqctl".into())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        // amqp://user:pass@host:port/vhost
        let authority = amqp_url
            .split_once("://")
            .map(|(_, rest)| rest)
            .and_then(|rest| rest.split('/').next())
            .map(|auth| auth.rsplit_once('@').map_or(auth, |(_, hp)| hp))
            .filter(|hp| !hp.is_empty())
            .unwrap_or_else(|| panic!("MQSCOPE_TEST_RABBITMQ_AMQP: not an amqp:// URL: {amqp_url}"))
            .to_string();
        TestRabbit {
            amqp_url,
            mgmt_url,
            authority,
            ctl,
        }
    }

    /// guest/guest on `vhost`.
    pub fn url_for(&self, vhost: &str) -> String {
        self.url_as("guest:guest", vhost)
    }

    /// `userinfo` (`user:password`, encoded as a URL needs it) on `vhost`.
    pub fn url_as(&self, userinfo: &str, vhost: &str) -> String {
        format!(
            "amqp://{userinfo}@{}/{}",
            self.authority,
            encode_vhost(vhost)
        )
    }

    /// `path` under the management API, e.g. `api/overview`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/{}", self.mgmt_url, path.trim_start_matches('/'))
    }

    /// Options for mqscope's backend: the management URL is not always host:15672.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            settings: ConnectSettings {
                management_url: Some(self.mgmt_url.clone()),
                ..ConnectSettings::default()
            },
            ..ConnectOptions::default()
        }
    }

    /// rabbitmqctl against this broker, arguments still to add. A relative program path
    /// (`scripts/…`) is the repository's.
    pub fn ctl(&self) -> Command {
        let program = &self.ctl[0];
        let mut c = if program.contains('/') && !program.starts_with('/') {
            Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(program))
        } else {
            Command::new(program)
        };
        c.args(&self.ctl[1..]);
        c
    }

    /// Make an `mqscope` command reach this broker's management API: a profile naming it,
    /// through MQSCOPE_CONFIG and MQSCOPE_PROFILE (a `--url` given as well overrides only
    /// the profile's AMQP URL). Without it mqscope would look for the API on host:15672,
    /// which for the 4.x brokers is 3.10's.
    pub fn profile_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("MQSCOPE_CONFIG", self.config_file())
            .env("MQSCOPE_PROFILE", "rabbit")
    }

    /// The config file behind [`Self::profile_env`], written once per process.
    pub fn config_file(&self) -> &'static std::path::Path {
        static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();
        FILE.get_or_init(|| {
            let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("rabbitmq-profile-{}.toml", std::process::id()));
            std::fs::write(
                &path,
                format!(
                    "[profiles.rabbit]\nurl = \"{}\"\nmanagement_url = \"{}\"\n",
                    self.url_for("/"),
                    self.mgmt_url
                ),
            )
            .expect("write the test profile");
            path
        })
    }

    /// (major, minor) of the broker, from the management API: for expectations that
    /// differ between RabbitMQ series.
    pub async fn version(&self) -> (u32, u32) {
        let overview: serde_json::Value = reqwest::Client::new()
            .get(self.api("api/overview"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /api/overview")
            .json()
            .await
            .expect("overview JSON");
        let v = overview["rabbitmq_version"].as_str().unwrap_or_default();
        let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }
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

    #[test]
    fn without_its_env_the_broker_under_test_is_the_machines_own() {
        let r = TestRabbit::from(|_| None);
        assert_eq!(r.amqp_url, DEFAULT_AMQP_URL);
        assert_eq!(r.mgmt_url, DEFAULT_MGMT_URL);
        assert_eq!(r.authority, "127.0.0.1:5672");
        assert_eq!(r.url_as("u:p", "a b"), "amqp://u:p@127.0.0.1:5672/a%20b");
        assert_eq!(r.ctl().get_program(), "rabbitmqctl");
    }

    #[test]
    fn the_broker_under_test_comes_from_its_three_variables() {
        let vars: HashMap<&str, &str> = [
            (
                "MQSCOPE_TEST_RABBITMQ_AMQP",
                "amqp://guest:guest@127.0.0.1:5690/%2f",
            ),
            ("MQSCOPE_TEST_RABBITMQ_MGMT", "http://127.0.0.1:15690/"),
            (
                "MQSCOPE_TEST_RABBITMQCTL",
                "scripts/rabbitmq-versions ctl 4.3",
            ),
        ]
        .into();
        let r = TestRabbit::from(|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(r.authority, "127.0.0.1:5690");
        assert_eq!(r.api("api/overview"), "http://127.0.0.1:15690/api/overview");
        let ctl = r.ctl();
        assert!(
            ctl.get_program()
                .to_string_lossy()
                .ends_with("/scripts/rabbitmq-versions")
        );
        let args: Vec<_> = ctl.get_args().collect();
        assert_eq!(args, ["ctl", "4.3"]);
    }
}
