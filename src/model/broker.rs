//! Which broker a backend talks to (product and version), and what that version's quorum
//! queues count towards their delivery limit when a reader gives a message back: the rule
//! that decides whether a peek, which gives back everything it reads, is safe.

use serde::Serialize;

/// A broker's product and version, as it reports them (`RabbitMQ 4.3.6`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerVersion {
    pub product: String,
    pub version: String,
    #[serde(skip)]
    pub major: u32,
    #[serde(skip)]
    pub minor: u32,
}

impl BrokerVersion {
    /// From what the broker says; a version that does not parse counts as 3.0 (the most
    /// careful rules).
    pub fn new(product: &str, version: &str) -> Self {
        let mut parts = version.split(|c: char| !c.is_ascii_digit());
        let mut next = || parts.next().and_then(|p| p.parse().ok());
        let (major, minor) = match (next(), next()) {
            (Some(major), minor) => (major, minor.unwrap_or(0)),
            (None, _) => (3, 0),
        };
        Self {
            product: product.to_string(),
            version: version.to_string(),
            major,
            minor,
        }
    }

    /// `RabbitMQ 4.3.6`, for status bars and headers.
    pub fn label(&self) -> String {
        format!("{} {}", self.product, self.version)
    }

    /// For a status bar: the version and, in a few words, what a peek costs its quorum
    /// queues (`RabbitMQ 4.3.6 · quorum peeks free`).
    pub fn status(&self) -> String {
        let cost = if self.quorum_returns().peek_is_safe() {
            "quorum peeks free"
        } else {
            "quorum peeks count"
        };
        format!("{} · {cost}", self.label())
    }

    /// What this version's quorum queues count towards their delivery limit.
    pub fn quorum_returns(&self) -> QuorumReturns {
        match (self.major, self.minor) {
            (0..=3, _) => QuorumReturns::Every {
                default_limit: None,
            },
            (4, 0..=2) => QuorumReturns::Every {
                default_limit: Some(20),
            },
            _ => QuorumReturns::OnlyFailed,
        }
    }
}

/// What a quorum queue counts towards its delivery limit, by RabbitMQ series (read from
/// `rabbit_fifo.erl` at v4.0.5 and v4.3.5, and measured on 3.10.8, 4.0.5 and 4.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumReturns {
    /// 3.x, and 4.0 to 4.2 (which set a default limit of 20): every return, whether by
    /// nack, reject or a closed channel, so each peek uses one of a message's deliveries.
    Every { default_limit: Option<u64> },
    /// 4.3 and later: only failed deliveries (`basic.reject` with requeue, or a consumer
    /// that goes down while holding it); a return by `basic.nack` is free.
    OnlyFailed,
}

impl QuorumReturns {
    /// Whether a peek, which gives back by `basic.nack`, leaves delivery counts alone.
    pub fn peek_is_safe(&self) -> bool {
        matches!(self, QuorumReturns::OnlyFailed)
    }

    /// The rule in force, in a sentence, for refusals, notes and `describe`.
    pub fn rule(&self, version: &BrokerVersion, limit: Option<u64>) -> String {
        let series = format!("{} {}.{}", version.product, version.major, version.minor);
        match (self, limit) {
            (QuorumReturns::OnlyFailed, _) => format!(
                "peek is safe on {series}: from 4.3 on, returns by nack do not count towards the delivery limit; only if mqscope died mid-peek would each message it held count once"
            ),
            (QuorumReturns::Every { .. }, Some(limit)) => format!(
                "on {series} every return counts towards the delivery limit: each peek uses one of the {limit} deliveries a message may have"
            ),
            (QuorumReturns::Every { .. }, None) => format!(
                "on {series} every return counts towards a quorum queue's delivery limit, when it has one"
            ),
        }
    }
}

/// Why taking from a quorum queue with a delivery limit needs --force: what a take that
/// gives messages back does to them, on any broker that counts returns.
pub fn quorum_refusal(queue: &str, limit: u64) -> String {
    format!(
        "\"{queue}\" is a quorum queue with a delivery limit of {limit}: every message this operation reads but does not remove (not selected, skipped, or failed to publish) goes back with its delivery count raised by one, and at the limit it is dead-lettered or dropped. Go ahead with --force"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_has_its_rule() {
        let v = |s| BrokerVersion::new("RabbitMQ", s);
        assert_eq!(
            v("3.10.8").quorum_returns(),
            QuorumReturns::Every {
                default_limit: None
            }
        );
        assert_eq!(
            v("4.0.5").quorum_returns(),
            QuorumReturns::Every {
                default_limit: Some(20)
            }
        );
        assert_eq!(
            v("4.2.1").quorum_returns(),
            QuorumReturns::Every {
                default_limit: Some(20)
            }
        );
        assert_eq!(v("4.3.6").quorum_returns(), QuorumReturns::OnlyFailed);
        assert_eq!(
            v("5.0.0-beta.1").quorum_returns(),
            QuorumReturns::OnlyFailed
        );
        assert_eq!(v("").major, 3, "unknown: the careful rules");
        assert_eq!(v("4.3.6").label(), "RabbitMQ 4.3.6");
        assert_eq!(v("4.3.6").status(), "RabbitMQ 4.3.6 · quorum peeks free");
        assert_eq!(v("4.0.5").status(), "RabbitMQ 4.0.5 · quorum peeks count");
        assert!(
            v("4.0.5")
                .quorum_returns()
                .rule(&v("4.0.5"), Some(20))
                .contains("one of the 20 deliveries")
        );
        assert!(
            v("4.3.6")
                .quorum_returns()
                .rule(&v("4.3.6"), Some(2))
                .starts_with("peek is safe on RabbitMQ 4.3")
        );
    }
}
