//! Which kind of broker a backend talks to, and who, in words safe to print.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Local,
    RabbitMq,
    Kafka,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::RabbitMq => "rabbitmq",
            BackendKind::Kafka => "kafka",
        }
    }
}

/// Who we are talking to, safe to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    pub kind: BackendKind,
    /// The target with any password removed.
    pub target: String,
}
