//! What can go wrong talking to a broker, as one error type every backend returns.

use std::time::Duration;

/// What can go wrong talking to a broker. Messages are one line, never hold a password,
/// and say what to do where there is something to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("no queue or topic named \"{0}\"")]
    QueueNotFound(String),
    #[error("no exchange named \"{0}\"")]
    ExchangeNotFound(String),
    #[error("cannot reach {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("access refused by {target}: {reason}")]
    Auth { target: String, reason: String },
    #[error("{what} is not supported by the {backend} backend")]
    Unsupported { what: String, backend: &'static str },
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation could harm messages (or is forbidden) and was not done.
    #[error("refused: {0}")]
    Refused(String),
    #[error("message could not be routed: {0}")]
    Unroutable(String),
    #[error("timed out after {}s: {what}", after.as_secs_f32())]
    Timeout { after: Duration, what: String },
    #[error("{0}")]
    Broker(String),
    /// Sent, but the broker's confirm never came (its channel or the connection went
    /// first): it may or may not have been delivered.
    #[error("outcome unknown: {0}")]
    Unconfirmed(String),
    /// Never reached the broker (its channel had closed first): safe to send again.
    #[error("not sent: {0}")]
    NotSent(String),
    /// A live tail could not keep up: `skipped` events it should have shown were dropped
    /// (by the broker from a full tap queue, or by the tail's own buffer), `why` saying
    /// what they were; it goes on.
    #[error("the live tail fell behind: {skipped} skipped ({why})")]
    Behind { skipped: u64, why: String },
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;
