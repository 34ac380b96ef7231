//! RabbitMQ: listing through the management API, reading and publishing over AMQP 0-9-1
//! with lapin. Peeks never lose, reorder or dead-letter a message: classic queues are read
//! by a consumer whose messages all go back with one `basic.nack(multiple, requeue)`;
//! quorum queues with a delivery limit are read the same way on RabbitMQ 4.3+, where a
//! return by nack does not count towards the limit, and refused unless forced before 4.3,
//! where every return counts; streams are read by offset, which removes nothing.

pub mod convert;
pub mod mgmt;
mod publish;

use super::{
    Backend, BackendError, BackendInfo, BackendKind, Browse, ConnectOptions, LiveTail, PeekFrom,
    PeekPage, PeekRequest, PeekSink, Publish, Purge, Result, Tail, TailFilter, Take, TakeSession,
    Taken,
};
use crate::config::{AmqpTarget, Secret, url_host};
use crate::model::broker::{BrokerVersion, QuorumReturns};
use crate::model::topology::ExchangeKind;
use crate::model::{DeadLetterTarget, FieldValue, Message, QueueDetail, QueueKind, QueueSummary};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable as AmqpTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use mgmt::{Mgmt, MgmtQueue};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long connecting may take before we say the broker is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest AMQP frame we propose: RabbitMQ's default.
const FRAME_MAX: u32 = 131_072;
/// How long the goodbye to the broker may take when a command is done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A consumer's prefetch is a 16-bit number: the deepest a queue can be peeked.
pub const MAX_PEEK_DEPTH: u64 = 65_535;
/// How long a queue peek waits for the next message. The window never asks for more than
/// the exact ready count, so a gap means a slow broker (recovering, busy) or a competing
/// consumer, not the end of the queue: wait generously, and say so if it comes up short.
const IDLE: Duration = Duration::from_secs(2);
/// How long a stream read waits for the next record: a stream's end is an ordinary gap.
const STREAM_IDLE: Duration = Duration::from_millis(800);
/// The pause that ends the newest chunk of a stream, read from `last`: its records come
/// in one burst.
const STREAM_GAP: Duration = Duration::from_millis(250);
/// How long `--last` reads a stream that is written without pause before it takes the
/// newest records read so far.
const STREAM_LAST_MAX: Duration = Duration::from_secs(2);
/// How long a reader that has drained what arrived lets the next deliveries gather before
/// it looks again (see `gathered`).
const GATHER: Duration = Duration::from_millis(1);

/// The consumer's next delivery, waiting at most `wait`, like `timeout(wait, next())`, but
/// without going to sleep on every message. lapin hands each delivery over from its own
/// I/O thread, so a reader faster than the broker is woken once per message: on a 10,000
/// message peek that was 4,000-11,000 context switches and half of mqscope's CPU time,
/// taken from the broker's own schedulers when both share a machine. A reader that finds
/// nothing waiting sleeps a millisecond first, and then takes whatever came in one go.
async fn gathered(
    consumer: &mut lapin::Consumer,
    wait: Duration,
) -> std::result::Result<Option<lapin::Result<lapin::message::Delivery>>, tokio::time::error::Elapsed>
{
    if let Some(ready) = futures::FutureExt::now_or_never(consumer.next()) {
        return Ok(ready);
    }
    let nap = GATHER.min(wait);
    tokio::time::sleep(nap).await;
    tokio::time::timeout(wait - nap, consumer.next()).await
}

pub struct RabbitBackend {
    target: AmqpTarget,
    login: Login,
    shown: String,
    mgmt: Mgmt,
    conn: Mutex<Option<Arc<Connection>>>,
    /// A channel in confirm mode, kept for publishing.
    publish_ch: Mutex<Option<publish::Publishing>>,
    /// CA chain and client identity for amqps://, from the profile.
    tls: lapin::tcp::OwnedTLSConfig,
    peek_seq: std::sync::atomic::AtomicU64,
    /// The last listing of a large vhost, reused while nothing changed.
    listing: Mutex<Option<Listing>>,
    /// Full listings and reused ones, for the tests that check the reuse.
    listing_counts: [std::sync::atomic::AtomicU64; 2],
    /// The broker's product and version, asked once (the management overview).
    version: tokio::sync::OnceCell<BrokerVersion>,
}

impl RabbitBackend {
    /// How many queue listings were fetched in full, and how many reused unchanged.
    pub fn listing_counts(&self) -> (u64, u64) {
        let n = |i: usize| self.listing_counts[i].load(std::sync::atomic::Ordering::Relaxed);
        (n(0), n(1))
    }
}

/// A queue listing, the broker's change fingerprint taken just before it, and when that
/// fingerprint was first seen.
struct Listing {
    fingerprint: Option<String>,
    since: std::time::Instant,
    taken: std::time::Instant,
    queues: Vec<QueueSummary>,
}

/// Some of a queue's figures (its depth, the policy applied) reach the management API only
/// with the next statistics emission (every 5 s by default), after the change already
/// moved the fingerprint: a listing is reused only if it was taken this long after its
/// fingerprint first appeared.
const LISTING_SETTLE: Duration = Duration::from_secs(12);

/// From this many queues on (one management page), a refresh first asks whether anything
/// changed, and reuses the last listing when nothing did.
const REUSE_LISTING_FROM: usize = 500;

/// A reused listing is still replaced this often: queue states (a quorum leader moving, a
/// queue going down) change no counter.
const LISTING_MAX_AGE: Duration = Duration::from_secs(30);

/// The user name and password to log in with.
#[derive(Clone)]
struct Login {
    user: String,
    password: Secret,
}

/// The login for a target: the user and password given; RabbitMQ's own guest/guest when
/// no user is named at all (what its users expect of a bare `amqp://host/`); and an
/// error, never a made-up password, for a user named without one. lapin's URI parser
/// fills a missing password with "guest", so nothing is left to it.
fn login(t: &AmqpTarget, shown: &str) -> Result<Login> {
    let given = t.password.as_ref().filter(|p| !p.expose().is_empty());
    match (&t.user, given) {
        (Some(user), Some(p)) => Ok(Login {
            user: user.clone(),
            password: p.clone(),
        }),
        (None, Some(p)) => Ok(Login {
            user: "guest".into(),
            password: p.clone(),
        }),
        (None, None) => Ok(Login {
            user: "guest".into(),
            password: Secret::new("guest"),
        }),
        (Some(user), None) => Err(BackendError::Auth {
            target: shown.to_string(),
            reason: format!(
                "no password for user \"{user}\"; give it in MQSCOPE_PASSWORD, the profile's password_env or password_command, or the URL"
            ),
        }),
    }
}

/// Where and how to connect, spelled out field by field: a URI string would go through
/// lapin's parser, which puts "guest" in for a missing password and "localhost" in for
/// an IP address.
fn amqp_uri(t: &AmqpTarget, login: &Login) -> lapin::uri::AMQPUri {
    use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
    // lapin sizes its read and write buffers at 32 frames. Without a frame_max of our own
    // it starts them at the 4 KiB minimum and, once the broker's 128 KiB is agreed, grows
    // them by zero-filling 8 MiB: 4-6 ms and 2,100 page faults on every command's first
    // channel. Proposed up front, they are allocated zeroed and only touched as used; the
    // broker's own limit still wins when lower (and a broker without one, frame_max 0,
    // would otherwise make them 32 times 4 GiB).
    AMQPUri {
        scheme: if t.tls {
            AMQPScheme::AMQPS
        } else {
            AMQPScheme::AMQP
        },
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: login.user.clone(),
                password: login.password.expose().to_string(),
            },
            host: t.host.clone(),
            port: t.port,
        },
        vhost: t.vhost.clone(),
        query: AMQPQueryString {
            frame_max: Some(FRAME_MAX),
            heartbeat: Some(30),
            ..AMQPQueryString::default()
        },
    }
}

/// Turn a lapin error into one line that says what to do, without the URI.
fn amqp_error(shown: &str, vhost: &str, e: &lapin::Error) -> BackendError {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if let Some(refused) = permission_refused(shown, &text) {
        return refused;
    }
    if lower.contains("access_refused")
        || lower.contains("authentication")
        || lower.contains("login was refused")
    {
        BackendError::Auth {
            target: shown.to_string(),
            reason: "wrong user name or password (ACCESS_REFUSED); check the user and password in the URL or the profile".into(),
        }
    } else if lower.contains("not_allowed")
        || lower.contains("vhost") && lower.contains("not found")
    {
        BackendError::Auth {
            target: shown.to_string(),
            reason: format!(
                "virtual host \"{vhost}\" does not exist, or this user has no access to it"
            ),
        }
    } else if lower.contains("parsing error") || lower.contains("failed to parse") {
        // The other end answered, but not in AMQP: an HTTP port, a proxy, another service.
        BackendError::Unreachable {
            target: shown.to_string(),
            reason: "the server there does not speak AMQP 0-9-1 (the management port 15672, an HTTP proxy, or another service?); RabbitMQ's AMQP port is 5672, 5671 with TLS".into(),
        }
    } else if lower.contains("refused") || lower.contains("io error") || lower.contains("connect") {
        BackendError::Unreachable {
            target: shown.to_string(),
            reason: format!("{text}; is RabbitMQ running and the port right?"),
        }
    } else {
        BackendError::Broker(text)
    }
}

/// Refused on a channel, not at login: the password was right, the permissions not.
fn permission_refused(shown: &str, text: &str) -> Option<BackendError> {
    let lower = text.to_lowercase();
    if !(lower.contains("access_refused") && lower.contains(" refused for user ")) {
        return None;
    }
    let what = text
        .split_once("ACCESS_REFUSED - ")
        .map_or(text, |(_, w)| w);
    let user = what
        .rsplit_once(" refused for user ")
        .map(|(_, u)| u.trim_matches('\''))
        .unwrap_or("the user");
    Some(BackendError::Auth {
        target: shown.to_string(),
        reason: format!(
            "{what}: the user's permissions do not allow it (rabbitmqctl list_user_permissions '{user}')"
        ),
    })
}

/// The profile's TLS files for lapin: a PEM CA chain to trust (instead of the system
/// roots) and a PEM certificate with its PKCS#8 key for client authentication. Files are
/// read once, at connect, so a missing one is reported before anything else happens.
pub fn tls_config(tls: &crate::config::TlsSettings) -> Result<lapin::tcp::OwnedTLSConfig> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            BackendError::InvalidArgument(format!("cannot read TLS file {}: {e}", p.display()))
        })
    };
    let cert_chain = match &tls.ca_file {
        Some(p) => Some(String::from_utf8(read(p)?).map_err(|_| {
            BackendError::InvalidArgument(format!(
                "{} is not a PEM file (it is not text)",
                p.display()
            ))
        })?),
        None => None,
    };
    let identity = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(lapin::tcp::OwnedIdentity::PKCS8 {
            pem: read(cert)?,
            key: read(key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(BackendError::InvalidArgument(
                "a client certificate needs both tls.cert_file and tls.key_file".into(),
            ));
        }
    };
    Ok(lapin::tcp::OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

fn short(s: &str) -> Result<ShortString> {
    ShortString::try_new(s.to_string()).map_err(|_| {
        BackendError::InvalidArgument(format!("\"{s}\" is longer than AMQP's 255-byte names"))
    })
}

impl RabbitBackend {
    pub async fn connect(target: &AmqpTarget, opts: &ConnectOptions) -> Result<Self> {
        let shown = crate::config::Target::Amqp(target.clone()).redacted();
        let profile = opts.profile.clone().unwrap_or_default();
        let base = profile.management_url.clone().unwrap_or_else(|| {
            let (scheme, port) = if target.tls {
                ("https", 15671)
            } else {
                ("http", 15672)
            };
            let host = url_host(&target.host);
            format!("{scheme}://{host}:{port}")
        });
        let login = login(target, &shown)?;
        let user = login.user.clone();
        let mgmt = Mgmt::new(
            &base,
            &user,
            Some(login.password.clone()),
            profile.tls.insecure,
        )?;
        let backend = Self {
            target: target.clone(),
            login,
            shown,
            mgmt,
            conn: Mutex::new(None),
            publish_ch: Mutex::new(None),
            tls: tls_config(&profile.tls)?,
            peek_seq: Default::default(),
            listing: Mutex::new(None),
            listing_counts: Default::default(),
            version: tokio::sync::OnceCell::new(),
        };
        // The AMQP port and the management API must both answer. Both are asked at once,
        // and AMQP's answer is reported first: a wrong password fails both, and only AMQP
        // says that is all it is. A management refusal of a login AMQP accepted is the
        // missing tag.
        if opts.amqp_only {
            backend.connection().await?;
            return Ok(backend);
        }
        let (amqp, login) = tokio::join!(backend.connection(), backend.mgmt.check_login());
        amqp?;
        match login {
            Ok(()) => Ok(backend),
            Err(BackendError::Auth { target, .. }) => Err(BackendError::Auth {
                target,
                reason: format!(
                    "user \"{user}\" logged in over AMQP, but the management API refused it: it needs the monitoring (or management) tag (rabbitmqctl set_user_tags '{user}' monitoring, which replaces its other tags: see rabbitmqctl list_users), or the profile's management_url points at another cluster"
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// The open connection, reconnecting if it was lost.
    async fn connection(&self) -> Result<Arc<Connection>> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            return Ok(Arc::clone(c));
        }
        let props = ConnectionProperties::default();
        let uri = amqp_uri(&self.target, &self.login);
        let runtime = lapin::runtime::default_runtime().map_err(|e| {
            BackendError::Broker(format!("cannot start the AMQP client runtime: {e}"))
        })?;
        let connect = Connection::connect_uri_with_config(uri, props, self.tls.clone(), runtime);
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| BackendError::Unreachable {
                target: self.shown.clone(),
                reason: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            })?
            .map_err(|e| amqp_error(&self.shown, &self.target.vhost, &e))?;
        let conn = Arc::new(conn);
        *guard = Some(Arc::clone(&conn));
        Ok(conn)
    }

    async fn channel(&self) -> Result<Channel> {
        let conn = self.connection().await?;
        match conn.create_channel().await {
            Ok(c) => Ok(c),
            Err(_) => {
                // The connection died under us: drop it and try once more.
                self.conn.lock().await.take();
                let conn = self.connection().await?;
                conn.create_channel()
                    .await
                    .map_err(|e| amqp_error(&self.shown, &self.target.vhost, &e))
            }
        }
    }

    fn vhost(&self) -> &str {
        &self.target.vhost
    }

    /// Exact ready count now (the management API lags by its stats interval).
    async fn ready_count(&self, ch: &Channel, queue: &str) -> Result<u64> {
        let opts = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match ch
            .queue_declare(short(queue)?, opts, AmqpTable::default())
            .await
        {
            Ok(q) => Ok(u64::from(q.message_count())),
            Err(e) if e.to_string().contains("NOT_FOUND") || e.to_string().contains("no queue") => {
                Err(BackendError::QueueNotFound(queue.to_string()))
            }
            Err(e) => Err(amqp_error(&self.shown, self.vhost(), &e)),
        }
    }

    /// The broker's product and version, asked once per backend.
    pub async fn broker_version(&self) -> Result<BrokerVersion> {
        self.version
            .get_or_try_init(|| async {
                let o = self.mgmt.overview().await?;
                Ok(BrokerVersion::new(
                    o.product_name.as_deref().unwrap_or("RabbitMQ"),
                    o.product_version.as_deref().unwrap_or(&o.rabbitmq_version),
                ))
            })
            .await
            .cloned()
    }

    /// What a quorum queue with `limit` costs a peek on this broker, in a sentence, and
    /// whether the peek leaves delivery counts alone.
    async fn quorum_rule(&self, limit: u64) -> Result<(bool, String)> {
        let v = self.broker_version().await?;
        let returns = v.quorum_returns();
        Ok((returns.peek_is_safe(), returns.rule(&v, Some(limit))))
    }

    /// The delivery limit a quorum queue enforces: its argument or policy, or RabbitMQ
    /// 4's default of 20 when neither sets one.
    async fn delivery_limit(&self, q: &MgmtQueue) -> Result<Option<u64>> {
        if q.kind() != "quorum" {
            return Ok(None);
        }
        if let Some(limit) = q.setting_u64("delivery-limit") {
            // -1 (or anything negative) means unlimited on RabbitMQ 4.
            return Ok(Some(limit));
        }
        let unlimited_negative = q
            .setting("delivery-limit")
            .and_then(|v| v.as_i64())
            .is_some_and(|v| v < 0);
        if unlimited_negative {
            return Ok(None);
        }
        let default = match self.broker_version().await?.quorum_returns() {
            QuorumReturns::Every { default_limit } => default_limit,
            QuorumReturns::OnlyFailed => Some(20),
        };
        Ok(default)
    }

    fn summary(&self, q: &MgmtQueue) -> QueueSummary {
        let kind = if q.kind() == "stream" {
            QueueKind::Stream
        } else {
            QueueKind::Queue
        };
        let mut s = QueueSummary::new(&q.name, kind, q.kind());
        s.vhost = Some(q.vhost.clone());
        s.messages = q.messages;
        s.ready = q.messages_ready;
        s.unacked = q.messages_unacknowledged;
        s.consumers = q.consumers;
        let stats = q.message_stats.as_ref();
        s.publish_rate = Some(
            stats
                .and_then(|m| m.publish_details.as_ref())
                .map(|r| r.rate)
                .unwrap_or(0.0),
        );
        s.deliver_rate = Some(
            stats
                .and_then(|m| m.deliver_get_details.as_ref())
                .map(|r| r.rate)
                .unwrap_or(0.0),
        );
        s.ack_rate = Some(
            stats
                .and_then(|m| m.ack_details.as_ref())
                .map(|r| r.rate)
                .unwrap_or(0.0),
        );
        s.policy = q.policy.clone();
        s.arguments = q.arguments.clone();
        s.delivery_limit = q.setting_u64("delivery-limit");
        s.message_ttl_ms = q.setting_u64("message-ttl");
        s.max_length = q.setting_u64("max-length");
        if let Some(dlx) = q.setting_str("dead-letter-exchange") {
            s.dead_letter = Some(DeadLetterTarget {
                exchange: dlx,
                routing_key: q.setting_str("dead-letter-routing-key"),
            });
        }
        s
    }

    async fn peek_stream(
        &self,
        ch: &Channel,
        name: &str,
        req: &PeekRequest,
        sink: &mut PeekSink<'_>,
    ) -> Result<Vec<String>> {
        // Nothing asked for: no consumer at all (one would deliver a record anyway).
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let offset = match &req.from {
            PeekFrom::Start => AMQPValue::LongString("first".into()),
            PeekFrom::Position(p) => AMQPValue::LongLongInt(i64::try_from(*p).unwrap_or(i64::MAX)),
            PeekFrom::Time(t) => AMQPValue::Timestamp(u64::try_from(t.timestamp()).unwrap_or(0)),
            PeekFrom::Last => {
                for m in self.stream_last(ch, name, req.limit).await? {
                    if !sink.push(m).await {
                        break;
                    }
                }
                return Ok(Vec::new());
            }
        };
        let mut read = 0;
        let mut each = |m| {
            read += 1;
            (Some(m), read < req.limit)
        };
        self.read_stream(
            ch,
            name,
            offset,
            req.limit,
            STREAM_IDLE,
            Some(sink),
            &mut each,
        )
        .await
        .map(|_| Vec::new())
    }

    /// The newest `limit` records of a stream. Its length comes from neither the
    /// management API nor a passive declare until their statistics catch up (seconds
    /// after a publish), so the end is found by reading: from `last` (the newest chunk)
    /// to the first gap, then, if that chunk holds fewer than `limit`, the records just
    /// before it.
    async fn stream_last(&self, ch: &Channel, name: &str, limit: usize) -> Result<Vec<Message>> {
        let mut newest: std::collections::VecDeque<Message> = std::collections::VecDeque::new();
        let started = std::time::Instant::now();
        self.read_stream(
            ch,
            name,
            AMQPValue::LongString("last".into()),
            limit,
            STREAM_GAP,
            None,
            &mut |m| {
                if newest.len() == limit {
                    newest.pop_front();
                }
                newest.push_back(m);
                // A stream written without pause has no gap: the newest as of now.
                (None, started.elapsed() < STREAM_LAST_MAX)
            },
        )
        .await?;
        let first = newest.front().and_then(|m| m.offset);
        let missing = limit - newest.len();
        if let (Some(first), true) = (first, missing > 0) {
            let from = first
                .saturating_sub(i64::try_from(missing).unwrap_or(i64::MAX))
                .max(0);
            let mut before = Vec::new();
            if from < first {
                self.read_stream(
                    ch,
                    name,
                    AMQPValue::LongLongInt(from),
                    missing,
                    STREAM_IDLE,
                    None,
                    &mut |m| {
                        let go_on = m.offset.is_some_and(|o| o + 1 < first);
                        if m.offset.is_some_and(|o| o < first) {
                            before.push(m);
                        }
                        (None, go_on)
                    },
                )
                .await?;
            }
            before.extend(newest);
            return Ok(before);
        }
        Ok(newest.into())
    }

    /// Read a stream from `offset` with a consumer of its own, handing each record to
    /// `each`, which keeps it or gives it back for `sink`, and says whether to go on; the
    /// read also ends when no record comes for `idle`. Each `window` records are acked
    /// together (on a stream that only grants credit), so more than `window` can be read.
    #[allow(clippy::too_many_arguments)]
    async fn read_stream(
        &self,
        ch: &Channel,
        name: &str,
        offset: AMQPValue,
        window: usize,
        idle: Duration,
        mut sink: Option<&mut PeekSink<'_>>,
        each: &mut (dyn FnMut(Message) -> (Option<Message>, bool) + Send),
    ) -> Result<()> {
        let mut args = AmqpTable::default();
        args.insert("x-stream-offset".into(), offset);
        let (mut consumer, tag) = self.peek_consumer(ch, name, window as u64, args).await?;
        // The consumer's prefetch, as peek_consumer sets it.
        let credit = (window as u64).clamp(1, MAX_PEEK_DEPTH);
        let mut read = 0u64;
        let mut outcome = Ok(());
        loop {
            match gathered(&mut consumer, idle).await {
                Ok(Some(Ok(d))) => {
                    let offset = d
                        .properties
                        .headers()
                        .as_ref()
                        .and_then(|h| h.inner().get("x-stream-offset").cloned())
                        .and_then(|v| match v {
                            AMQPValue::LongLongInt(o) => Some(o),
                            _ => None,
                        });
                    let mut m = to_message(
                        name,
                        offset.and_then(|o| u64::try_from(o).ok()).unwrap_or(0),
                        &d,
                    );
                    m.offset = offset;
                    // Credit for the next window once this one is spent; nothing is
                    // removed from a stream.
                    read += 1;
                    if read.is_multiple_of(credit) {
                        let all = BasicAckOptions { multiple: true };
                        let _ = ch.basic_ack(d.delivery_tag, all).await;
                    }
                    let (pass, go_on) = each(m);
                    if let (Some(m), Some(sink)) = (pass, sink.as_deref_mut())
                        && !sink.push(m).await
                    {
                        break;
                    }
                    if !go_on {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    outcome = Err(amqp_error(&self.shown, self.vhost(), &e));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        let _ = ch
            .basic_cancel(short(&tag)?, BasicCancelOptions::default())
            .await;
        outcome
    }

    /// A manual-ack consumer whose prefetch covers the whole window (at most 65,535),
    /// so the broker sends it without waiting for acks; returns it with its tag.
    async fn peek_consumer(
        &self,
        ch: &Channel,
        name: &str,
        window: u64,
        args: AmqpTable,
    ) -> Result<(lapin::Consumer, String)> {
        let fail = |e: lapin::Error| amqp_error(&self.shown, self.vhost(), &e);
        let prefetch = prefetch_for(window);
        let tag = self.consumer_tag("peek");
        // Sent back to back: the channel applies them in order, so the prefetch holds
        // before the first delivery, one round trip sooner.
        let (qos, consumer) = futures::future::join(
            ch.basic_qos(prefetch, BasicQosOptions::default()),
            ch.basic_consume(
                short(name)?,
                short(&tag)?,
                BasicConsumeOptions::default(),
                args,
            ),
        )
        .await;
        qos.map_err(fail)?;
        Ok((consumer.map_err(fail)?, tag))
    }

    /// A consumer tag that tells an operator looking at the management UI's consumers
    /// what this one is (`peek` or `tail`) and which mqscope process holds it.
    fn consumer_tag(&self, purpose: &str) -> String {
        let n = self
            .peek_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("mqscope-{purpose}-{}-{n}", std::process::id())
    }

    /// Read the first `want` ready messages with a prefetching consumer, handing those in
    /// `window` on as they come, then give every one back with a single multiple nack: order
    /// is kept, nothing is acked, nothing is rejected, and no delivery tag is settled twice.
    /// Returns how many were read.
    async fn take_and_return(
        &self,
        ch: &Channel,
        name: &str,
        want: u64,
        window: &mut Window,
        sink: &mut PeekSink<'_>,
    ) -> Result<u64> {
        let (mut consumer, tag) = self
            .peek_consumer(ch, name, want, AmqpTable::default())
            .await?;
        let mut read = 0;
        let mut last_tag = None;
        let mut failure = None;
        while read < want {
            match gathered(&mut consumer, IDLE).await {
                // Converted and handed on as they come: the broker's delivery is the slow
                // part, and this work would otherwise wait until the last message is in.
                Ok(Some(Ok(d))) => {
                    last_tag = Some(d.delivery_tag);
                    let mut m = to_message(name, read, &d);
                    m.delivery_limit = window.shown_limit;
                    read += 1;
                    if window.keeps(&m) && !sink.push(m).await {
                        break; // nobody is reading any more
                    }
                    if window.left == 0 {
                        break; // the page is full (a time window may fill early)
                    }
                }
                Ok(Some(Err(e))) => {
                    failure = Some(amqp_error(&self.shown, self.vhost(), &e));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        // A fault test holds the peek here, every message read and unacked, while it stops
        // the queue's leader node.
        crate::fault::step("peek.read").await;
        // Stop deliveries first, so returned messages are not handed straight back to us.
        // The channel applies the two in the order sent, so neither waits for the other,
        // and the cancel asks for no answer (nowait): the channel's close, which the caller
        // awaits, is answered only after both were applied. Deliveries still on their way
        // for the cancelled tag are dropped by lapin and returned by that close.
        let cancel = ch.basic_cancel(short(&tag)?, BasicCancelOptions { nowait: true });
        let nack = async {
            match last_tag {
                Some(last) => {
                    let all = BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    };
                    ch.basic_nack(last, all).await
                }
                None => Ok(()),
            }
        };
        let (_, nack) = futures::future::join(cancel, nack).await;
        if let Err(e) = nack {
            // The channel or connection is gone: RabbitMQ itself returns what it had
            // delivered and not seen acked, in order. Say so, at 3 a.m. it matters.
            return Err(BackendError::Broker(format!(
                "the channel to {} closed before the {read} messages read could be handed back; RabbitMQ returns unacknowledged messages to the queue by itself, so none was consumed ({})",
                self.shown,
                amqp_error(&self.shown, self.vhost(), &e)
            )));
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    async fn peek_with(
        &self,
        name: &str,
        req: &PeekRequest,
        sink: &mut PeekSink<'_>,
    ) -> Result<Vec<String>> {
        // The queue's type and settings, and a channel to read it on with the exact ready
        // count, at the same time (a passive declare only reads; nothing is consumed before
        // the checks). The channel is closed whatever happens (the connection is shared),
        // which also returns anything a failed read left unacked.
        let (info, opened) = tokio::join!(self.mgmt.queue(self.vhost(), name), async {
            let ch = self.channel().await?;
            let ready = self.ready_count(&ch, name).await;
            Ok::<_, BackendError>((ch, ready))
        });
        let (ch, ready) = opened?;
        let notes = self.peek_on(&ch, info, ready, name, req, sink).await;
        let _ = ch.close(200, "peek done".into()).await;
        notes
    }

    /// A peek on `ch` (which the caller closes), given the management API's view of the
    /// queue.
    async fn peek_on(
        &self,
        ch: &Channel,
        info: Result<MgmtQueue>,
        ready: Result<u64>,
        name: &str,
        req: &PeekRequest,
        sink: &mut PeekSink<'_>,
    ) -> Result<Vec<String>> {
        let info = info?;
        if info.kind() == "stream" {
            return self.peek_stream(ch, name, req, sink).await;
        }
        let mut notes = Vec::new();
        // The limit a peek's returns count towards: none where returns by nack are free.
        let mut delivery_limit = None;
        let shown_limit = self.delivery_limit(&info).await?;
        if let Some(limit) = shown_limit {
            let (safe, rule) = self.quorum_rule(limit).await?;
            if !safe {
                if !req.force {
                    return Err(BackendError::Refused(format!(
                        "\"{name}\" is a quorum queue with a delivery limit of {limit}: a peek gives back every message it reads, and {rule}; messages that reach it are dead-lettered or dropped. Peek anyway with --force"
                    )));
                }
                notes.push(format!(
                    "forced peek of a quorum queue with delivery limit {limit}: {rule}; each message's count is in its x-delivery-count"
                ));
                delivery_limit = Some(limit);
            }
        }
        if req.partition.is_some() {
            notes.push(format!("\"{name}\" is a queue; the partition was ignored"));
        }
        let ready = ready?;
        let start = match &req.from {
            PeekFrom::Start | PeekFrom::Time(_) => 0,
            PeekFrom::Position(p) => *p,
            PeekFrom::Last => ready.saturating_sub(req.limit as u64),
        };
        if start >= ready || req.limit == 0 {
            return Ok(notes);
        }
        if start >= MAX_PEEK_DEPTH {
            return Err(BackendError::Refused(format!(
                "position {start} is past the first {MAX_PEEK_DEPTH} messages, the deepest a queue can be peeked (AMQP's prefetch limit); a replay or purge reaches every message"
            )));
        }
        let want = match &req.from {
            // Queues have no time index: read from the head and keep the later ones.
            PeekFrom::Time(_) => ready.min(MAX_PEEK_DEPTH),
            _ => (start + req.limit as u64).min(ready),
        };
        let want = if want > MAX_PEEK_DEPTH {
            notes.push(format!(
                "a queue can be peeked {MAX_PEEK_DEPTH} messages deep at most (AMQP's prefetch limit): positions {start} to {} only, of {ready}",
                MAX_PEEK_DEPTH - 1
            ));
            MAX_PEEK_DEPTH
        } else {
            want
        };
        let mut window = Window {
            start,
            since: match &req.from {
                PeekFrom::Time(t) => Some(*t),
                _ => None,
            },
            left: req.limit,
            delivery_limit,
            shown_limit,
            over_limit: 0,
        };
        let read = self
            .take_and_return(ch, name, want, &mut window, sink)
            .await?;
        if let (Some(limit), n @ 1..) = (delivery_limit, window.over_limit) {
            let fate = match info.setting_str("dead-letter-exchange") {
                Some(x) if !x.is_empty() => format!("dead-lettered them through \"{x}\""),
                Some(_) => "dead-lettered them through the default exchange".to_string(),
                None => "dropped them (the queue has no dead-letter exchange)".to_string(),
            };
            notes.push(format!(
                "{n} of the messages read had already been returned {limit} times or more: this peek's return put them over the delivery limit, and RabbitMQ {fate}"
            ));
        }
        if read < want && window.left > 0 && !sink.is_closed() {
            notes.push(format!(
                "only {read} of the {want} messages asked for arrived within {}s (another consumer took some, or the broker is busy); this window may be incomplete",
                IDLE.as_secs()
            ));
        }
        if window.since.is_some() && window.left > 0 && ready > MAX_PEEK_DEPTH {
            notes.push(format!(
                "only the first {MAX_PEEK_DEPTH} messages were searched for that time"
            ));
        }
        Ok(notes)
    }
}

/// Which of the messages a queue peek reads belong to the page: from position `start`
/// (or, for a time, those stamped at or after it), at most `left` more.
struct Window {
    start: u64,
    since: Option<chrono::DateTime<chrono::Utc>>,
    left: usize,
    /// A quorum queue's delivery limit, when a forced peek reads one anyway.
    delivery_limit: Option<u64>,
    /// A quorum queue's delivery limit, shown with each message read from it.
    shown_limit: Option<u64>,
    /// Messages read that were already at the limit: the return sends them over it.
    over_limit: u64,
}

impl Window {
    fn keeps(&mut self, m: &Message) -> bool {
        if let Some(limit) = self.delivery_limit
            && m.delivery_count.unwrap_or(0) >= limit
        {
            self.over_limit += 1;
        }
        let inside = match self.since {
            Some(t) => m.timestamp.is_some_and(|ts| ts >= t),
            None => m.position >= self.start,
        };
        if !inside || self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// When it was published, from the AMQP timestamp property (seconds), if it has one.
fn publish_time(p: &crate::model::Properties) -> Option<chrono::DateTime<chrono::Utc>> {
    p.timestamp
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
}

fn to_message(queue: &str, position: u64, d: &lapin::message::Delivery) -> Message {
    let mut m = Message::new(queue, position, Bytes::copy_from_slice(&d.data));
    m.exchange = Some(d.exchange.as_str().to_string());
    m.routing_key = Some(d.routing_key.as_str().to_string());
    m.properties = convert::properties_from_amqp(&d.properties);
    if let Some(h) = d.properties.headers() {
        m.headers = convert::table_from_amqp(h);
    }
    m.timestamp = publish_time(&m.properties);
    m.redelivered = d.redelivered;
    m.delivery_count = m
        .headers
        .get("x-delivery-count")
        .and_then(|v| v.as_i64())
        .and_then(|c| u64::try_from(c).ok());
    m
}

/// What makes two copies of a message the same one: where it was published and all of it.
fn copy_key(m: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.exchange.hash(&mut h);
    m.routing_key.hash(&mut h);
    m.payload.hash(&mut h);
    format!("{:?}", m.headers).hash(&mut h);
    h.finish()
}

/// The last few thousand keys seen, oldest forgotten first, each as often as inserted. A
/// key is looked up right after it was inserted, so the scan starts at the newest.
#[derive(Default)]
struct RecentSet(std::collections::VecDeque<u64>);

impl RecentSet {
    const CAPACITY: usize = 4_096;

    fn insert(&mut self, key: u64) {
        if self.0.len() == Self::CAPACITY {
            self.0.pop_front();
        }
        self.0.push_back(key);
    }

    /// True (and forgotten once) if `key` is here.
    fn remove(&mut self, key: &u64) -> bool {
        match self.0.iter().rposition(|k| k == key) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }
}

/// The exchange the firehose routes publish notifications through, per vhost.
const FIREHOSE: &str = "amq.rabbitmq.trace";

/// The message a firehose `publish.<exchange>` notification stands for: the body is the
/// original, and its headers say where it was published, with which routing keys, which
/// queues it was routed to, and its properties (with the original headers among them).
/// None for anything else. `tap`, the queue reading the firehose, is left out of the
/// routed queues when it was bound to the exchange too (the tail's own copy is no hop);
/// the flag says whether it was, that is whether a copy through the bindings follows.
fn from_firehose(
    position: u64,
    d: &lapin::message::Delivery,
    tap: &str,
) -> Option<(Message, bool)> {
    if !d.routing_key.as_str().starts_with("publish.") {
        return None;
    }
    let trace = convert::table_from_amqp(d.properties.headers().as_ref()?);
    let exchange = trace.get("exchange_name")?.as_str()?.to_string();
    let mut m = Message::new(exchange.clone(), position, Bytes::copy_from_slice(&d.data));
    m.routing_key = trace
        .get("routing_keys")
        .and_then(FieldValue::as_array)
        .and_then(|keys| keys.first())
        .and_then(FieldValue::as_str)
        .map(str::to_string);
    m.exchange = Some(exchange);
    let mut tapped = false;
    m.routed_queues = trace
        .get("routed_queues")
        .and_then(FieldValue::as_array)
        .map(|qs| {
            qs.iter()
                .filter_map(FieldValue::as_str)
                .filter(|q| {
                    tapped |= *q == tap;
                    *q != tap
                })
                .map(str::to_string)
                .collect()
        });
    if let Some(props) = trace.get("properties").and_then(FieldValue::as_table) {
        m.properties = convert::properties_from_table(props);
        if let Some(h) = props.get("headers").and_then(FieldValue::as_table) {
            m.headers = h.clone();
        }
    }
    m.timestamp = publish_time(&m.properties);
    Some((m, tapped))
}

#[async_trait]
impl Backend for RabbitBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::RabbitMq,
            target: self.shown.clone(),
        }
    }

    async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
        // A large vhost is listed again only when the broker saw something change.
        let mut last = self.listing.lock().await;
        let fingerprint = match last.as_ref() {
            Some(_) => self.mgmt.change_fingerprint(self.vhost()).await.ok(),
            None => None,
        };
        if let Some(l) = last.as_ref()
            && fingerprint.is_some()
            && l.fingerprint == fingerprint
            && l.taken.duration_since(l.since) >= LISTING_SETTLE
            && l.taken.elapsed() < LISTING_MAX_AGE
        {
            self.listing_counts[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Nothing was published or delivered since: the rate now is zero.
            let mut out = l.queues.clone();
            for q in &mut out {
                q.publish_rate = q.publish_rate.map(|_| 0.0);
                q.deliver_rate = q.deliver_rate.map(|_| 0.0);
            }
            return Ok(out);
        }
        // What the listing shows is the state when it starts: its time for the settling.
        let started = std::time::Instant::now();
        let (queues, mut topology) = tokio::try_join!(
            self.mgmt.queues(self.vhost()),
            self.mgmt.topology(self.vhost()),
        )?;
        topology.queues = queues.iter().map(|q| q.name.clone()).collect();
        let mut out: Vec<QueueSummary> = queues.iter().map(|q| self.summary(q)).collect();
        crate::model::deadletter::resolve_dead_letters(&mut out, &topology);
        self.listing_counts[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Kept with the fingerprint taken before it (none the first time a vhost turns
        // out large: that listing is never reused, the next one is).
        let since = match last.as_ref() {
            Some(l) if fingerprint.is_some() && l.fingerprint == fingerprint => l.since,
            _ => started,
        };
        *last = (out.len() >= REUSE_LISTING_FROM).then(|| Listing {
            fingerprint,
            since,
            taken: started,
            queues: out.clone(),
        });
        Ok(out)
    }

    async fn describe_queue(&self, name: &str) -> Result<QueueDetail> {
        // The queue's own page for its numbers and settings; the others' settings only,
        // to know where its dead letters go and which queues dead-letter into it.
        let (q, mut topology, all) = tokio::try_join!(
            self.mgmt.queue(self.vhost(), name),
            self.mgmt.topology(self.vhost()),
            self.mgmt.queue_settings(self.vhost()),
        )?;
        let mut list: Vec<QueueSummary> = all
            .iter()
            .filter(|other| other.name != name)
            .map(|other| self.summary(other))
            .collect();
        list.push(self.summary(&q));
        topology.queues = list.iter().map(|s| s.name.clone()).collect();
        crate::model::deadletter::resolve_dead_letters(&mut list, &topology);
        let Some(summary) = list.pop() else {
            return Err(BackendError::QueueNotFound(name.to_string()));
        };
        let bindings = topology
            .bindings
            .iter()
            .filter(|b| b.destination == name)
            .map(|b| format!("{} -> {} ({})", b.source, b.destination, b.routing_key))
            .collect();
        let version = self.broker_version().await.ok();
        let peek_rule = match (self.delivery_limit(&q).await, &version) {
            (Ok(Some(limit)), Some(v)) => Some(format!(
                "delivery limit {limit}: {}",
                v.quorum_returns().rule(v, Some(limit))
            )),
            _ => None,
        };
        Ok(QueueDetail {
            bindings,
            consumer_details: q.consumers(),
            state: q.state(),
            broker: version.map(|v| v.label()),
            peek_rule,
            ..QueueDetail::new(summary)
        })
    }

    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        let mut messages = Vec::new();
        let notes = self
            .peek_with(name, req, &mut PeekSink::Collect(&mut messages))
            .await?;
        Ok(PeekPage { messages, notes })
    }

    async fn peek_into(
        &self,
        name: &str,
        req: &PeekRequest,
        sink: &tokio::sync::mpsc::Sender<Message>,
    ) -> Result<Vec<String>> {
        self.peek_with(name, req, &mut PeekSink::Send(sink)).await
    }

    fn publisher(&self) -> Option<&dyn Publish> {
        Some(self)
    }

    fn purger(&self) -> Option<&dyn Purge> {
        Some(self)
    }

    fn live_tail(&self) -> Option<&dyn LiveTail> {
        Some(self)
    }

    fn taker(&self) -> Option<&dyn Take> {
        Some(self)
    }

    fn peek_depth(&self) -> Option<u64> {
        Some(MAX_PEEK_DEPTH)
    }

    async fn close(&self) {
        // Without connection.close RabbitMQ logs a warning, "client unexpectedly closed TCP
        // connection", for every command run: noise in exactly the log an operator reads.
        // All of it within CLOSE_TIMEOUT: a reconnect in progress holds the lock for up to
        // CONNECT_TIMEOUT, and quitting must not wait for it.
        let bye = async {
            let conn = self.conn.lock().await.take();
            if let Some(conn) = conn
                && conn.status().connected()
            {
                let _ = conn.close(200, "mqscope done".into()).await;
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, bye).await;
    }

    async fn server(&self) -> Option<BrokerVersion> {
        self.broker_version().await.ok()
    }

    fn browser(&self) -> Option<&dyn Browse> {
        Some(self)
    }
}

#[async_trait]
impl Browse for RabbitBackend {
    async fn vhosts(&self) -> Result<Vec<crate::model::topology::VhostSummary>> {
        self.mgmt.vhosts().await
    }

    async fn exchanges(&self) -> Result<Vec<crate::model::topology::ExchangeSummary>> {
        Ok(self.mgmt.routing(self.vhost()).await?.0)
    }

    async fn bindings(&self) -> Result<Vec<crate::model::topology::Binding>> {
        self.mgmt.bindings(self.vhost()).await
    }

    /// One read of the bindings, so the counts and the list agree.
    async fn routing(
        &self,
    ) -> Result<(
        Vec<crate::model::topology::ExchangeSummary>,
        Vec<crate::model::topology::Binding>,
    )> {
        self.mgmt.routing(self.vhost()).await
    }
}

/// How long a take session waits between messages once the first has come: the broker
/// streams a prefetch window with gaps far below this.
const TAKE_GAP: Duration = Duration::from_millis(50);

#[async_trait]
impl Take for RabbitBackend {
    async fn take(&self, queue: &str, force: bool) -> Result<Box<dyn TakeSession>> {
        let info = self.mgmt.queue(self.vhost(), queue).await?;
        if info.kind() == "stream" {
            return Err(BackendError::Unsupported {
                what: format!(
                    "removing messages from stream \"{queue}\" (streams are logs: nothing can be taken out)"
                ),
                backend: "rabbitmq",
            });
        }
        if let Some(limit) = self.delivery_limit(&info).await?
            && !force
            && !self.quorum_rule(limit).await?.0
        {
            return Err(crate::backend::local::quorum_refusal(queue, limit));
        }
        let ch = self.channel().await?;
        let depth = self.ready_count(&ch, queue).await?;
        let (consumer, tag) = self
            .peek_consumer(&ch, queue, depth.max(1), AmqpTable::default())
            .await?;
        let prefetch = prefetch_for(depth.max(1));
        Ok(Box::new(RabbitTake {
            ch,
            consumer,
            tag,
            queue: queue.to_string(),
            shown: self.shown.clone(),
            vhost: self.vhost().to_string(),
            depth,
            prefetch,
            delivered: 0,
            unsettled: Default::default(),
            released: false,
        }))
    }

    async fn topology(&self) -> Result<crate::model::topology::Topology> {
        let mut topology = self.mgmt.topology(self.vhost()).await?;
        topology.queues = self
            .mgmt
            .queue_names(self.vhost())
            .await?
            .into_iter()
            .collect();
        Ok(topology)
    }
}

/// The prefetch that covers a window of messages (at most 65,535).
fn prefetch_for(window: u64) -> u16 {
    u16::try_from(window.clamp(1, MAX_PEEK_DEPTH)).unwrap_or(u16::MAX)
}

/// A take session: a manual-ack consumer on its own channel. Whatever it does not ack goes
/// back with one `basic.nack(multiple, requeue)`, and closing the channel returns anything
/// still in flight, so an error or a dropped session loses nothing.
struct RabbitTake {
    ch: Channel,
    consumer: lapin::Consumer,
    tag: String,
    queue: String,
    shown: String,
    vhost: String,
    depth: u64,
    /// The consumer's prefetch, re-stated to make an ack's round trip.
    prefetch: u16,
    delivered: u64,
    unsettled: std::collections::BTreeSet<u64>,
    released: bool,
}

impl RabbitTake {
    fn fail(&self, e: &lapin::Error) -> BackendError {
        amqp_error(&self.shown, &self.vhost, e)
    }
}

impl Drop for RabbitTake {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Closing the channel hands every unacked message back to the queue.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let ch = self.ch.clone();
            rt.spawn(async move {
                let _ = ch.close(200, "take abandoned".into()).await;
            });
        }
    }
}

#[async_trait]
impl TakeSession for RabbitTake {
    fn depth(&self) -> u64 {
        self.depth
    }

    async fn next(&mut self, max: usize) -> Result<Vec<Taken>> {
        let mut out = Vec::new();
        while out.len() < max && self.delivered < self.depth {
            let wait = if out.is_empty() { IDLE } else { TAKE_GAP };
            match gathered(&mut self.consumer, wait).await {
                Ok(Some(Ok(d))) => {
                    let message = to_message(&self.queue, self.delivered, &d);
                    self.delivered += 1;
                    self.unsettled.insert(d.delivery_tag);
                    out.push(Taken {
                        tag: d.delivery_tag,
                        message,
                    });
                }
                Ok(Some(Err(e))) => return Err(self.fail(&e)),
                Ok(None) => {
                    if out.is_empty() {
                        return Err(BackendError::Broker(format!(
                            "the broker ended the consumer on \"{}\" (queue deleted, or the connection closed)",
                            self.queue
                        )));
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    async fn ack(&mut self, tags: &[u64]) -> Result<()> {
        let Some(&highest) = tags.iter().max() else {
            return Ok(());
        };
        // One multiple ack when the tags are every unsettled one up to the highest (the
        // usual case: a whole batch replayed), else one ack each.
        let covered = self.unsettled.range(..=highest).count();
        if covered == tags.len() && tags.iter().all(|t| self.unsettled.contains(t)) {
            self.ch
                .basic_ack(highest, BasicAckOptions { multiple: true })
                .await
                .map_err(|e| self.fail(&e))?;
        } else {
            for &t in tags {
                self.ch
                    .basic_ack(t, BasicAckOptions { multiple: false })
                    .await
                    .map_err(|e| self.fail(&e))?;
            }
        }
        for t in tags {
            self.unsettled.remove(t);
        }
        crate::fault::step("take.ack_sent").await;
        // AMQP 0-9-1 never answers a basic.ack, and an ack still in this process's socket
        // buffer is lost when it dies (with deliveries unread, the kernel resets the
        // connection instead of sending it): the broker then gives the "removed" messages
        // back. A synchronous method on the same channel is answered only after the
        // channel has handled every method before it, so once this returns the broker has
        // the acks, and losing the connection now can no longer return those messages.
        // Re-stating the prefetch is harmless: it applies to consumers started later.
        self.ch
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(())
    }

    async fn release(mut self: Box<Self>) -> Result<()> {
        self.released = true;
        let _ = self
            .ch
            .basic_cancel(short(&self.tag)?, BasicCancelOptions::default())
            .await;
        let mut result = Ok(());
        if let Some(&last) = self.unsettled.iter().next_back() {
            let nack = self
                .ch
                .basic_nack(
                    last,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await;
            if let Err(e) = nack {
                result = Err(self.fail(&e));
            }
        }
        // Anything delivered after the cancel and not yet read goes back with the channel.
        let _ = self.ch.close(200, "take done".into()).await;
        result
    }
}

/// Messages a tap queue may hold before the oldest are dropped: if mqscope falls behind,
/// the broker sheds the copies, not the real traffic.
const TAP_MAX_LENGTH: i64 = 10_000;

/// How long a tap queue without a consumer lives (one whose set-up failed halfway).
const TAP_EXPIRES_MS: i32 = 60_000;

#[async_trait]
impl LiveTail for RabbitBackend {
    /// Follow exchanges through a server-named, exclusive, auto-delete queue: it receives
    /// copies, so real consumers see every message as before, and the broker deletes it
    /// when the tail stops or mqscope dies. With tracing on in the vhost, the queue is
    /// bound to the firehose instead, which sees every publish whatever its routing key
    /// (unroutable ones and the default exchange's included); mqscope never turns tracing
    /// on itself, since it costs the broker on every message.
    async fn tail(&self, filter: &TailFilter) -> Result<Tail> {
        let (topology, tracing) = tokio::try_join!(
            self.mgmt.topology(self.vhost()),
            self.mgmt.tracing(self.vhost())
        )?;
        // The default exchange: "" or its alias.
        let wanted: Vec<String> = filter
            .sources
            .iter()
            .map(|s| {
                if s == "amq.default" {
                    String::new()
                } else {
                    s.clone()
                }
            })
            .collect();
        // Whoever names the firehose itself wants its raw notifications.
        let tracing = tracing && !wanted.iter().any(|x| x == FIREHOSE);
        let vhost = self.vhost();
        let mut notes = Vec::new();
        if !tracing && wanted.iter().any(String::is_empty) {
            return Err(BackendError::InvalidArgument(format!(
                "the default exchange cannot be followed by binding a queue to it; turn on tracing for vhost \"{vhost}\" (rabbitmqctl trace_on -p '{vhost}', or the management UI's vhost page) and mqscope follows it through the firehose ({FIREHOSE})"
            )));
        }
        // (exchange, routing key) pairs to bind the tap with. The exchanges themselves
        // always: dead-lettering is not a publish, the firehose never sees it.
        let mut bindings: Vec<(String, String)> = Vec::new();
        let sources: Vec<String> = if wanted.is_empty() {
            topology
                .exchanges
                .iter()
                .map(|e| e.name.clone())
                .filter(|n| !n.starts_with("amq."))
                .collect()
        } else {
            wanted.iter().filter(|x| !x.is_empty()).cloned().collect()
        };
        for ex in &sources {
            let kind = topology.exchange(ex).map(|e| e.kind);
            match kind {
                Some(ExchangeKind::Fanout) | Some(ExchangeKind::Headers) => {
                    bindings.push((ex.clone(), String::new()));
                }
                Some(ExchangeKind::Direct) => {
                    // A direct exchange has no wildcard: follow every key it is bound with.
                    let mut keys: Vec<String> = topology
                        .bindings
                        .iter()
                        .filter(|b| b.source == *ex)
                        .map(|b| b.routing_key.clone())
                        .collect();
                    keys.sort();
                    keys.dedup();
                    if !tracing && !filter.sources.is_empty() {
                        notes.push(format!(
                            "direct exchange \"{ex}\": following the {} routing key(s) it is bound with now; messages published with other keys (unroutable ones) are seen only with tracing on (rabbitmqctl trace_on -p '{vhost}')",
                            keys.len()
                        ));
                    }
                    bindings.extend(keys.into_iter().map(|k| (ex.clone(), k)));
                }
                Some(ExchangeKind::Topic) | None => {
                    bindings.push((ex.clone(), "#".into()));
                }
            }
        }
        if tracing {
            if wanted.is_empty() {
                bindings.push((FIREHOSE.into(), "publish.#".into()));
            } else {
                for x in &wanted {
                    bindings.push((FIREHOSE.into(), format!("publish.{x}")));
                }
            }
            notes.push(format!(
                "tracing is on in vhost \"{vhost}\": publishes come through the firehose ({FIREHOSE}), which sees every one whatever its routing key, unroutable ones included; dead letters through the exchanges they are dead-lettered to"
            ));
        }
        // With named sources, the firehose's keys are matched as topic patterns: an
        // exchange named with `*` or `#` words would catch others, so filter on the name.
        let only: Option<std::collections::HashSet<String>> =
            (tracing && !wanted.is_empty()).then(|| wanted.iter().cloned().collect());
        let ch = self.channel().await?;
        let fail = |e: lapin::Error| amqp_error(&self.shown, self.vhost(), &e);
        if tracing {
            // Binding to the firehose cannot fail for a missing exchange: ask the broker.
            for x in wanted.iter().filter(|x| !x.is_empty()) {
                let passive = lapin::options::ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                ch.exchange_declare(
                    short(x)?,
                    lapin::ExchangeKind::Topic,
                    passive,
                    AmqpTable::default(),
                )
                .await
                .map_err(|e| self.exchange_error(x, &e))?;
            }
        }
        let mut args = AmqpTable::default();
        args.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(TAP_MAX_LENGTH),
        );
        // Should a bind below fail, the tap never gets a consumer, and auto-delete would
        // never fire on the shared connection: it expires instead.
        args.insert("x-expires".into(), AMQPValue::LongInt(TAP_EXPIRES_MS));
        let opts = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let tap = ch
            .queue_declare("".into(), opts, args)
            .await
            .map_err(fail)?;
        let tap_name = tap.name().as_str().to_string();
        for (ex, key) in &bindings {
            ch.queue_bind(
                short(&tap_name)?,
                short(ex)?,
                short(key)?,
                lapin::options::QueueBindOptions::default(),
                AmqpTable::default(),
            )
            .await
            .map_err(|e| {
                if ex == FIREHOSE && e.to_string().contains("ACCESS_REFUSED") {
                    BackendError::Auth {
                        target: self.shown.clone(),
                        reason: format!(
                            "tracing is on in vhost \"{}\", but this user may not read {FIREHOSE}: grant it read permission there, or turn tracing off to tail through exchange bindings",
                            self.vhost()
                        ),
                    }
                } else {
                    self.exchange_error(ex, &e)
                }
            })?;
        }
        let opts = BasicConsumeOptions {
            no_ack: true,
            exclusive: true,
            ..BasicConsumeOptions::default()
        };
        let mut consumer = ch
            .basic_consume(
                short(&tap_name)?,
                short(&self.consumer_tag("tail"))?,
                opts,
                AmqpTable::default(),
            )
            .await
            .map_err(fail)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let shown = self.shown.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut shown_publishes = RecentSet::default();
            loop {
                tokio::select! {
                    _ = tx.closed() => break,
                    next = consumer.next() => match next {
                        Some(Ok(d)) => {
                            let m = if tracing && d.exchange.as_str() == FIREHOSE {
                                match from_firehose(n, &d, &tap_name) {
                                    Some((m, tapped)) if only.as_ref().is_none_or(|o| m.exchange.as_ref().is_some_and(|x| o.contains(x))) => {
                                        // The broker routed a copy to the tap through its
                                        // bindings too: the same publish, arriving right
                                        // after this, to be dropped then.
                                        if tapped {
                                            shown_publishes.insert(copy_key(&m));
                                        }
                                        m
                                    }
                                    _ => continue,
                                }
                            } else {
                                let mut m = to_message(d.exchange.as_str(), n, &d);
                                m.queue = d.exchange.as_str().to_string();
                                // A copy through the bindings is shown unless the
                                // firehose showed its publish just before (the broker
                                // taps a publish before it routes it, from the same
                                // process, so the firehose copy comes first). Shown, then:
                                // dead letters (dead-lettering is not a publish), copies
                                // from exchanges the tail does not follow (through an
                                // exchange-to-exchange binding or as an alternate), and
                                // every publish once tracing is turned off mid-tail.
                                if tracing && shown_publishes.remove(&copy_key(&m)) {
                                    continue;
                                }
                                m
                            };
                            n += 1;
                            if tx.send(Ok(m)).await.is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(BackendError::Broker(format!("live tail on {shown} stopped: {e}")))).await;
                            break;
                        }
                        None => break,
                    }
                }
            }
            // Closing the channel deletes the auto-delete tap queue.
            let _ = ch.close(200, "tail done".into()).await;
        });
        Ok(Tail {
            messages: rx,
            notes,
        })
    }
}

impl RabbitBackend {
    /// A failed operation on `exchange`: missing (NOT_FOUND), or what the broker said.
    fn exchange_error(&self, exchange: &str, e: &lapin::Error) -> BackendError {
        exchange_error(&self.shown, self.vhost(), exchange, e)
    }
}

fn exchange_error(shown: &str, vhost: &str, exchange: &str, e: &lapin::Error) -> BackendError {
    if e.to_string().contains("NOT_FOUND") {
        BackendError::ExchangeNotFound(exchange.to_string())
    } else {
        amqp_error(shown, vhost, e)
    }
}

#[async_trait]
impl Purge for RabbitBackend {
    async fn purge(&self, queue: &str) -> Result<u64> {
        let ch = self.channel().await?;
        let n = ch
            .queue_purge(short(queue)?, QueuePurgeOptions::default())
            .await
            .map_err(|e| amqp_error(&self.shown, self.vhost(), &e))?;
        let _ = ch.close(200, "purged".into()).await;
        Ok(u64::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsSettings;

    #[test]
    fn tls_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let cfg = tls_config(&TlsSettings {
            ca_file: Some(ca.clone()),
            ..TlsSettings::default()
        })
        .unwrap();
        assert!(cfg.cert_chain.unwrap().contains("BEGIN CERTIFICATE"));
        assert!(cfg.identity.is_none());
        let missing = dir.path().join("missing.pem");
        let e = tls_config(&TlsSettings {
            ca_file: Some(missing),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = tls_config(&TlsSettings {
            cert_file: Some(ca.clone()),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("key_file"), "{e}");
        let with_key = tls_config(&TlsSettings {
            cert_file: Some(ca.clone()),
            key_file: Some(ca),
            ..TlsSettings::default()
        })
        .unwrap();
        assert!(matches!(
            with_key.identity,
            Some(lapin::tcp::OwnedIdentity::PKCS8 { .. })
        ));
    }
}
