//! RabbitMQ's management HTTP API: listing queues (paged), exchanges and bindings, and the
//! effective settings (arguments and policies) a peek needs to stay safe.

use crate::backend::BackendError;
use crate::backend::target::{Secret, check_management_url, encode_vhost};
use crate::model::FieldTable;
use crate::model::topology::{
    Binding, DestinationKind, Exchange, ExchangeKind, ExchangeSummary, Routing, Topology,
    VhostSummary,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
pub struct Rate {
    #[serde(default)]
    pub rate: f64,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageStats {
    #[serde(default)]
    pub publish_details: Option<Rate>,
    #[serde(default)]
    pub deliver_get_details: Option<Rate>,
    #[serde(default)]
    pub ack_details: Option<Rate>,
    #[serde(default)]
    pub publish_in_details: Option<Rate>,
    #[serde(default)]
    pub publish_out_details: Option<Rate>,
}

/// A queue as the management API describes it.
#[derive(Debug, Default, Deserialize)]
pub struct MgmtQueue {
    pub name: String,
    #[serde(default)]
    pub vhost: String,
    #[serde(rename = "type", default)]
    pub queue_type: Option<String>,
    #[serde(default)]
    pub messages: Option<u64>,
    #[serde(default)]
    pub messages_ready: Option<u64>,
    #[serde(default)]
    pub messages_unacknowledged: Option<u64>,
    #[serde(default)]
    pub consumers: Option<u64>,
    #[serde(default)]
    pub arguments: Map<String, Value>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub effective_policy_definition: Option<Value>,
    #[serde(default)]
    pub message_stats: Option<MessageStats>,
    // Only on a single queue's page (the listing asks for fewer columns). Read leniently:
    // the API writes an empty object as `[]`, and a wrong guess here must not cost the
    // whole description.
    #[serde(default)]
    pub durable: Option<bool>,
    #[serde(default)]
    pub auto_delete: Option<bool>,
    #[serde(default)]
    pub exclusive: Option<bool>,
    #[serde(default)]
    pub state: Option<Value>,
    #[serde(default)]
    pub node: Option<Value>,
    #[serde(default)]
    pub leader: Option<Value>,
    #[serde(default)]
    pub members: Option<Value>,
    #[serde(default)]
    pub online: Option<Value>,
    #[serde(default)]
    pub message_bytes: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub idle_since: Option<Value>,
    #[serde(default)]
    pub consumer_details: Option<Value>,
}

impl MgmtQueue {
    /// How the broker holds the queue, from its own page.
    pub fn state(&self) -> crate::model::QueueState {
        let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
        let names = |v: &Option<Value>| -> Vec<String> {
            v.as_ref()
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        crate::model::QueueState {
            durable: self.durable,
            auto_delete: self.auto_delete,
            exclusive: self.exclusive,
            status: text(&self.state),
            node: text(&self.leader).or_else(|| text(&self.node)),
            members: names(&self.members),
            online: names(&self.online),
            message_bytes: self.message_bytes,
            memory_bytes: self.memory,
            idle_since: text(&self.idle_since),
        }
    }

    /// Its consumers, as far as the API says; entries without a tag are skipped.
    pub fn consumers(&self) -> Vec<crate::model::ConsumerInfo> {
        let Some(list) = self.consumer_details.as_ref().and_then(Value::as_array) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|c| {
                let ch = &c["channel_details"];
                let text = |v: &Value| v.as_str().map(str::to_string);
                Some(crate::model::ConsumerInfo {
                    tag: c["consumer_tag"].as_str()?.to_string(),
                    connection: text(&ch["connection_name"]),
                    user: text(&ch["user"]),
                    prefetch: c["prefetch_count"].as_u64(),
                    ack_required: c["ack_required"].as_bool(),
                    exclusive: c["exclusive"].as_bool(),
                    status: text(&c["activity_status"]),
                })
            })
            .collect()
    }

    /// A setting from the queue's arguments (`x-NAME`), else from its policy (`NAME`).
    pub fn setting(&self, name: &str) -> Option<&Value> {
        self.arguments.get(&format!("x-{name}")).or_else(|| {
            self.effective_policy_definition
                .as_ref()
                .and_then(|p| p.as_object())
                .and_then(|p| p.get(name))
        })
    }

    pub fn setting_u64(&self, name: &str) -> Option<u64> {
        self.setting(name).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    }

    pub fn setting_str(&self, name: &str) -> Option<String> {
        self.setting(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn kind(&self) -> &str {
        self.queue_type.as_deref().unwrap_or("classic")
    }
}

#[derive(Debug, Deserialize)]
struct MgmtExchange {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    arguments: Value,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    message_stats: Option<MessageStats>,
}

#[derive(Debug, Deserialize)]
struct MgmtBinding {
    source: String,
    destination: String,
    destination_type: String,
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Deserialize)]
struct MgmtVhost {
    name: String,
    #[serde(default)]
    messages: Option<u64>,
    #[serde(default)]
    messages_ready: Option<u64>,
    #[serde(default)]
    messages_unacknowledged: Option<u64>,
    #[serde(default)]
    tracing: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default_queue_type: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MgmtPolicy {
    name: String,
    #[serde(default)]
    definition: Value,
}

/// A binding in the model; None for the default exchange's implicit ones.
fn binding(b: MgmtBinding) -> Option<Binding> {
    if b.source.is_empty() {
        return None;
    }
    Some(Binding {
        arguments: plain_table(&b.arguments),
        source: b.source,
        destination: b.destination,
        destination_kind: if b.destination_type == "exchange" {
            DestinationKind::Exchange
        } else {
            DestinationKind::Queue
        },
        routing_key: b.routing_key,
    })
}

/// Arguments as the management API writes them (plain JSON) in mqscope's typed table.
/// Anything that does not fit a table (a u64 beyond i64) is kept as its text.
fn plain_table(v: &Value) -> FieldTable {
    match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let fv = crate::model::FieldValue::from_json(v)
                    .unwrap_or_else(|_| crate::model::FieldValue::string(v.to_string()));
                (k.clone(), fv)
            })
            .collect(),
        _ => FieldTable::new(),
    }
}

#[derive(Debug, Deserialize)]
pub struct Overview {
    #[serde(default)]
    pub rabbitmq_version: String,
    /// 3.8 and later: "RabbitMQ", or a distribution's own name for it.
    #[serde(default)]
    pub product_name: Option<String>,
    #[serde(default)]
    pub product_version: Option<String>,
    #[serde(default)]
    pub cluster_name: String,
}

impl Overview {
    /// The major version, for defaults that changed (quorum delivery limit in 4.0).
    pub fn major(&self) -> u32 {
        self.rabbitmq_version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(3)
    }
}

#[derive(Clone)]
pub struct Mgmt {
    client: reqwest::Client,
    base: String,
    user: String,
    password: Option<Secret>,
}

/// How long a management request may take; listing every queue of a vhost gets longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const LISTING_TIMEOUT: Duration = Duration::from_secs(120);

/// What a queue listing asks for: what the queue table shows, nothing else.
const LISTING_COLUMNS: &str = "name,vhost,type,messages,messages_ready,messages_unacknowledged,consumers,arguments,policy,effective_policy_definition,message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate";

impl Mgmt {
    pub fn new(
        base: &str,
        user: &str,
        password: Option<Secret>,
        insecure: bool,
    ) -> Result<Self, BackendError> {
        // Checked here too, not only in the config file: the address is printed in every
        // message about the API, so it must hold no password.
        check_management_url(base).map_err(|reason| {
            BackendError::InvalidArgument(format!("the management API address: {reason}"))
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .tls_danger_accept_invalid_certs(insecure)
            .user_agent(concat!("mqscope/", env!("CARGO_PKG_VERSION")));
        let proxied = [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if base.starts_with("http://") && !proxied {
            // Plain HTTP never checks a certificate, and loading the system's CA store
            // (every file in /etc/ssl/certs) was most of a one-shot command's start-up.
            // Without it an https:// redirect could not be followed: it is reported instead.
            builder = builder
                .tls_certs_only([])
                .redirect(reqwest::redirect::Policy::none());
        }
        let client = builder
            .build()
            .map_err(|e| BackendError::Broker(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            user: user.to_string(),
            password,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, BackendError> {
        self.get_within(path, REQUEST_TIMEOUT).await
    }

    async fn get_within<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, BackendError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .client
            .get(&url)
            .timeout(timeout)
            .basic_auth(&self.user, self.password.as_ref().map(Secret::expose))
            .send()
            .await
            .map_err(|e| {
                let reason = if e.is_connect() {
                    "connection refused or host unreachable; is the rabbitmq_management plugin enabled (rabbitmq-plugins enable rabbitmq_management)?".to_string()
                } else if e.is_timeout() {
                    format!("no answer within {} s", timeout.as_secs())
                } else {
                    e.to_string()
                };
                BackendError::Unreachable {
                    target: format!("the management API at {}", self.base),
                    reason,
                }
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let sent = self
                .password
                .as_ref()
                .is_some_and(|p| !p.expose().is_empty());
            if !sent {
                // Not a matter of tags: no password went with the request.
                return Err(BackendError::Auth {
                    target: format!("the management API at {}", self.base),
                    reason: format!(
                        "user \"{}\" was refused: no password was given; give it in MQSCOPE_PASSWORD, the profile's password_env or password_command, or the URL",
                        self.user
                    ),
                });
            }
            return Err(BackendError::Auth {
                target: format!("the management API at {}", self.base),
                reason: format!(
                    "user \"{}\" was refused: a wrong password, or a user without the management or monitoring tag (rabbitmqctl set_user_tags {} monitoring)",
                    self.user, self.user
                ),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            // A queue's own path: no such queue. A vhost's listing: no such vhost there,
            // often a management API of another broker than the AMQP URL's.
            let bare = path.split('?').next().unwrap_or(path);
            let parts: Vec<&str> = bare.trim_start_matches('/').split('/').collect();
            if let ["api", "queues", _, name, ..] = parts[..] {
                return Err(BackendError::QueueNotFound(name.to_string()));
            }
            return Err(BackendError::Broker(format!(
                "the management API at {} has no {bare} (404 Not Found): no such vhost there? It must be the same broker's as the AMQP URL: set the profile's management_url",
                self.base
            )));
        }
        if status.is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("elsewhere");
            return Err(BackendError::Broker(format!(
                "the management API at {} redirects to {to}; set the profile's management_url to the address it redirects to",
                self.base
            )));
        }
        if !status.is_success() {
            return Err(BackendError::Broker(format!(
                "management API {path}: HTTP {status}"
            )));
        }
        resp.json::<T>().await.map_err(|e| {
            BackendError::Broker(format!("management API {path}: unreadable answer: {e}"))
        })
    }

    pub async fn overview(&self) -> Result<Overview, BackendError> {
        self.get("/api/overview").await
    }

    /// Whether the API answers and accepts this user: `/api/whoami`, the cheapest call
    /// that needs a login (0.6 ms against the overview's 3 ms of the broker's statistics
    /// work), refused exactly when the overview would be.
    pub async fn check_login(&self) -> Result<(), BackendError> {
        self.get::<serde_json::Value>("/api/whoami").await.map(drop)
    }

    /// What changes whenever the queue listing of a vhost could: the vhost's message
    /// counters and depths, the broker's queue churn (declared, deleted) and consumer
    /// count, and the vhost's policies and operator policies. Equal fingerprints mean the
    /// statistics database saw nothing happen in between, so a listing taken after the
    /// first still holds. Four small requests instead of a listing of every queue.
    pub async fn change_fingerprint(&self, vhost: &str) -> Result<String, BackendError> {
        let v = encode_vhost(vhost);
        // The vhost list, not /api/vhosts/NAME (administrators only); this vhost's entry.
        let this = "/api/vhosts?columns=name,messages,messages_ready,messages_unacknowledged,message_stats";
        let broker = "/api/overview?columns=churn_rates,object_totals";
        let policies = format!("/api/policies/{v}");
        let operator = format!("/api/operator-policies/{v}");
        let (this, broker, policies, operator) = tokio::try_join!(
            self.get::<Value>(this),
            self.get::<Value>(broker),
            self.get::<Value>(&policies),
            self.get::<Value>(&operator),
        )?;
        // Counters only: the `_details` entries hold rates and samples that move on their
        // own while nothing happens.
        fn counters(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .filter(|(k, _)| !k.ends_with("_details"))
                        .map(|(k, v)| (k.clone(), counters(v)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
        let consumers = &broker["object_totals"]["consumers"];
        let this = this
            .as_array()
            .and_then(|all| all.iter().find(|e| e["name"].as_str() == Some(vhost)))
            .cloned()
            .unwrap_or(Value::Null);
        Ok(format!(
            "{}{}{consumers}{policies}{operator}",
            counters(&this),
            counters(&broker["churn_rates"])
        ))
    }

    /// Every queue of a vhost with its depth, consumers, rates and settings, in one
    /// request for the columns the table shows. Not page by page: the management API
    /// gathers and sorts every queue of the vhost for each page, so paging is quadratic
    /// in the number of queues (20,000 queues: 40 pages of 0.6 s each, against 3.8 s for
    /// this one request; 5,000: 2.4 s against 1.4 s).
    pub async fn queues(&self, vhost: &str) -> Result<Vec<MgmtQueue>, BackendError> {
        self.get_within(
            &format!(
                "/api/queues/{}?columns={LISTING_COLUMNS}",
                encode_vhost(vhost)
            ),
            LISTING_TIMEOUT,
        )
        .await
    }

    /// The names of every queue of a vhost (no statistics: cheap however many).
    pub async fn queue_names(&self, vhost: &str) -> Result<Vec<String>, BackendError> {
        let list: Vec<MgmtQueue> = self
            .get_within(
                &format!(
                    "/api/queues/{}?disable_stats=true&columns=name",
                    encode_vhost(vhost)
                ),
                LISTING_TIMEOUT,
            )
            .await?;
        Ok(list.into_iter().map(|q| q.name).collect())
    }

    /// Every queue of a vhost with only what routing dead letters takes: name, type,
    /// arguments, and the definition of the policy applied; without statistics, which
    /// are most of a listing's cost (5,000 queues: 0.15 s against 1.4 s). Without the
    /// right to read policies, it falls back to the full listing, which carries each
    /// queue's effective policy.
    pub async fn queue_settings(&self, vhost: &str) -> Result<Vec<MgmtQueue>, BackendError> {
        let v = encode_vhost(vhost);
        let (list, po) = (
            format!("/api/queues/{v}?disable_stats=true&columns=name,vhost,type,arguments,policy"),
            format!("/api/policies/{v}"),
        );
        let (queues, policies) = tokio::join!(
            self.get_within::<Vec<MgmtQueue>>(&list, LISTING_TIMEOUT),
            self.get::<Vec<MgmtPolicy>>(&po),
        );
        let mut queues = queues?;
        let Ok(policies) = policies else {
            return self.queues(vhost).await;
        };
        for q in &mut queues {
            q.effective_policy_definition = q.policy.as_ref().and_then(|p| {
                policies
                    .iter()
                    .find(|x| &x.name == p)
                    .map(|x| x.definition.clone())
            });
        }
        Ok(queues)
    }

    pub async fn queue(&self, vhost: &str, name: &str) -> Result<MgmtQueue, BackendError> {
        self.get(&format!(
            "/api/queues/{}/{}",
            encode_vhost(vhost),
            encode_vhost(name)
        ))
        .await
        .map_err(|e| match e {
            BackendError::QueueNotFound(_) => BackendError::QueueNotFound(name.to_string()),
            other => other,
        })
    }

    /// Whether the firehose (`amq.rabbitmq.trace`) is on in a vhost.
    pub async fn tracing(&self, vhost: &str) -> Result<bool, BackendError> {
        #[derive(Deserialize)]
        struct Vhost {
            name: String,
            #[serde(default)]
            tracing: bool,
        }
        // The list, not /api/vhosts/NAME: that one is for administrators only.
        let all: Vec<Vhost> = self.get("/api/vhosts?columns=name,tracing").await?;
        Ok(all.into_iter().any(|v| v.name == vhost && v.tracing))
    }

    /// The broker's own names (`client:port -> server:port`, what the firehose reports as
    /// a delivery's connection) of the connections in `vhost` that called themselves
    /// `client_name`. The API lists a new connection only at its next statistics round
    /// (5 s by default), so a connection just opened may be missing yet.
    pub async fn connections_named(
        &self,
        vhost: &str,
        client_name: &str,
    ) -> Result<Vec<String>, BackendError> {
        #[derive(Deserialize)]
        struct Connection {
            name: String,
            #[serde(default)]
            user_provided_name: Option<String>,
        }
        let v = encode_vhost(vhost);
        let all: Vec<Connection> = self
            .get(&format!(
                "/api/vhosts/{v}/connections?columns=name,user_provided_name"
            ))
            .await?;
        Ok(all
            .into_iter()
            .filter(|c| c.user_provided_name.as_deref() == Some(client_name))
            .map(|c| c.name)
            .collect())
    }

    /// Exchanges and bindings of a vhost, for resolving dead-letter targets.
    pub async fn topology(&self, vhost: &str) -> Result<Topology, BackendError> {
        let v = encode_vhost(vhost);
        // Routing needs each exchange's name and type only: no statistics.
        let (ex, bi) = (
            format!("/api/exchanges/{v}?disable_stats=true&columns=name,type"),
            format!("/api/bindings/{v}"),
        );
        let (exchanges, bindings) = tokio::try_join!(
            self.get_within::<Vec<MgmtExchange>>(&ex, LISTING_TIMEOUT),
            self.get_within::<Vec<MgmtBinding>>(&bi, LISTING_TIMEOUT),
        )?;
        Ok(Topology {
            exchanges: exchanges
                .into_iter()
                .filter(|e| !e.name.is_empty())
                .filter_map(|e| {
                    ExchangeKind::parse(&e.kind).map(|kind| Exchange { name: e.name, kind })
                })
                .collect(),
            queues: Default::default(),
            bindings: bindings.into_iter().filter_map(binding).collect(),
        })
    }

    /// The virtual hosts this user may see (the list every user may read, with totals).
    pub async fn vhosts(&self) -> Result<Vec<VhostSummary>, BackendError> {
        let all: Vec<MgmtVhost> = self
            .get("/api/vhosts?columns=name,messages,messages_ready,messages_unacknowledged,tracing,description,default_queue_type,metadata")
            .await?;
        Ok(all
            .into_iter()
            .map(|v| {
                let meta = |k: &str| {
                    v.metadata
                        .as_ref()
                        .and_then(|m| m[k].as_str())
                        .map(str::to_string)
                };
                VhostSummary {
                    description: v
                        .description
                        .clone()
                        .filter(|d| !d.is_empty())
                        .or_else(|| meta("description").filter(|d| !d.is_empty())),
                    default_queue_type: v
                        .default_queue_type
                        .clone()
                        .or_else(|| meta("default_queue_type"))
                        .filter(|t| t != "undefined"),
                    name: v.name,
                    messages: v.messages,
                    ready: v.messages_ready,
                    unacked: v.messages_unacknowledged,
                    tracing: v.tracing,
                }
            })
            .collect())
    }

    /// The exchanges of a vhost with their settings, rates and binding counts (the
    /// alternate exchange from the argument or, failing that, the policy), and the
    /// bindings they were counted from.
    pub async fn routing(&self, vhost: &str) -> Result<Routing, BackendError> {
        let v = encode_vhost(vhost);
        let (ex, bi, po) = (
            format!("/api/exchanges/{v}"),
            format!("/api/bindings/{v}"),
            format!("/api/policies/{v}"),
        );
        let (exchanges, bindings, policies) = tokio::join!(
            self.get::<Vec<MgmtExchange>>(&ex),
            self.get::<Vec<MgmtBinding>>(&bi),
            self.get::<Vec<MgmtPolicy>>(&po),
        );
        let (exchanges, bindings) = (exchanges?, bindings?);
        // Reading policies takes the policymaker tag: without it, an alternate exchange
        // set by policy is not known (the policy's name still shows).
        let policies = policies.unwrap_or_default();
        let mut out: Vec<ExchangeSummary> = exchanges
            .into_iter()
            .map(|e| {
                let from_policy = e.policy.as_ref().and_then(|p| {
                    policies
                        .iter()
                        .find(|x| &x.name == p)
                        .and_then(|x| x.definition["alternate-exchange"].as_str())
                        .map(str::to_string)
                });
                let stats = e.message_stats.as_ref();
                ExchangeSummary {
                    alternate_exchange: e.arguments["alternate-exchange"]
                        .as_str()
                        .map(str::to_string)
                        .or(from_policy),
                    bindings: bindings.iter().filter(|b| b.source == e.name).count(),
                    arguments: plain_table(&e.arguments),
                    // No statistics (never used, or statistics off): unknown, not zero.
                    publish_in_rate: stats
                        .and_then(|s| s.publish_in_details.as_ref())
                        .map(|r| r.rate),
                    publish_out_rate: stats
                        .and_then(|s| s.publish_out_details.as_ref())
                        .map(|r| r.rate),
                    name: e.name,
                    kind: e.kind,
                    durable: e.durable,
                    auto_delete: e.auto_delete,
                    internal: e.internal,
                    policy: e.policy,
                }
            })
            .collect();
        // The default exchange first, then by name, as the management UI lists them.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((out, bindings.into_iter().filter_map(binding).collect()))
    }

    /// The bindings of a vhost, with their arguments; the default exchange's implicit
    /// ones (one per queue) left out.
    pub async fn bindings(&self, vhost: &str) -> Result<Vec<Binding>, BackendError> {
        let all: Vec<MgmtBinding> = self
            .get(&format!("/api/bindings/{}", encode_vhost(vhost)))
            .await?;
        Ok(all.into_iter().filter_map(binding).collect())
    }

    /// Create a vhost and give `user` full rights on it (tests and fixtures).
    pub async fn create_vhost(&self, vhost: &str) -> Result<(), BackendError> {
        let v = encode_vhost(vhost);
        for (path, body) in [
            (format!("/api/vhosts/{v}"), serde_json::json!({})),
            (
                format!("/api/permissions/{v}/{}", encode_vhost(&self.user)),
                serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}),
            ),
        ] {
            let resp = self
                .client
                .put(format!("{}{path}", self.base))
                .basic_auth(&self.user, self.password.as_ref().map(Secret::expose))
                .json(&body)
                .send()
                .await
                .map_err(|e| BackendError::Broker(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(BackendError::Broker(format!(
                    "PUT {path}: HTTP {}",
                    resp.status()
                )));
            }
        }
        Ok(())
    }

    pub async fn delete_vhost(&self, vhost: &str) -> Result<(), BackendError> {
        let path = format!("/api/vhosts/{}", encode_vhost(vhost));
        self.client
            .delete(format!("{}{path}", self.base))
            .basic_auth(&self.user, self.password.as_ref().map(Secret::expose))
            .send()
            .await
            .map_err(|e| BackendError::Broker(e.to_string()))?;
        Ok(())
    }
}
