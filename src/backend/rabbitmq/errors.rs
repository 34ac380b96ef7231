//! RabbitMQ's failures as backend errors: one line that says what to do, never the URI
//! (which may hold a password).

use super::RabbitBackend;
use crate::backend::BackendError;

/// Turn a lapin error into one line that says what to do, without the URI.
pub(super) fn amqp_error(shown: &str, vhost: &str, e: &lapin::Error) -> BackendError {
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
pub(super) fn permission_refused(shown: &str, text: &str) -> Option<BackendError> {
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

impl RabbitBackend {
    /// A failed operation on `exchange`: missing (NOT_FOUND), or what the broker said.
    pub(super) fn exchange_error(&self, exchange: &str, e: &lapin::Error) -> BackendError {
        exchange_error(&self.shown, self.vhost(), exchange, e)
    }
}

pub(super) fn exchange_error(
    shown: &str,
    vhost: &str,
    exchange: &str,
    e: &lapin::Error,
) -> BackendError {
    if e.to_string().contains("NOT_FOUND") {
        BackendError::ExchangeNotFound(exchange.to_string())
    } else {
        amqp_error(shown, vhost, e)
    }
}
