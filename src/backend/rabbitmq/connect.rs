//! Connecting to RabbitMQ: the login a target gives (never a made-up password), the AMQP
//! URI spelled out field by field, and the connection and channels, reopened when lost.

use super::{RabbitBackend, amqp_error, mgmt::Mgmt, tls_config};
use crate::backend::target::{AmqpTarget, Secret, Target, url_host};
use crate::backend::{BackendError, ConnectOptions, Result};
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long connecting may take before we say the broker is unreachable.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest AMQP frame we propose: RabbitMQ's default.
const FRAME_MAX: u32 = 131_072;

/// The user name and password to log in with.
#[derive(Clone)]
pub(super) struct Login {
    user: String,
    password: Secret,
}

/// The login for a target: the user and password given; RabbitMQ's own guest/guest when
/// no user is named at all (what its users expect of a bare `amqp://host/`); and an
/// error, never a made-up password, for a user named without one. lapin's URI parser
/// fills a missing password with "guest", so nothing is left to it.
pub(super) fn login(t: &AmqpTarget, shown: &str) -> Result<Login> {
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

/// A connection name no other backend uses: the process, a count within it, and the
/// start time's nanoseconds (processes on two hosts may share an id).
fn client_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("mqscope {}.{n}.{nanos:08x}", std::process::id())
}

impl RabbitBackend {
    pub async fn connect(target: &AmqpTarget, opts: &ConnectOptions) -> Result<Self> {
        let shown = Target::Amqp(target.clone()).redacted();
        let profile = &opts.settings;
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
            client_name: client_name(),
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
    pub(super) async fn connection(&self) -> Result<Arc<Connection>> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            return Ok(Arc::clone(c));
        }
        let props =
            ConnectionProperties::default().with_connection_name(self.client_name.clone().into());
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

    pub(super) async fn channel(&self) -> Result<Channel> {
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

    pub(super) fn vhost(&self) -> &str {
        &self.target.vhost
    }
}
