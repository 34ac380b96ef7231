//! Broker-neutral data: queues, messages, header values, death records and routing. No I/O.

pub mod broker;
pub mod consumption;
pub mod correlation;
pub mod deadletter;
pub mod death;
pub mod describe;
pub mod destination;
pub mod envelope;
pub mod identity;
pub mod message;
pub mod names;
pub mod queue;
pub mod routing;
pub mod time;
pub mod topology;
pub mod value;

pub use consumption::{Delivery, GroupProgress, GroupStatus, progress_at};
pub use death::{DeathReason, DeathRecord, DeathSource};
pub use message::{Message, MessageView, Properties, routed_summary};
pub use queue::{
    ConsumerGroup, ConsumerInfo, DeadLetterTarget, PartitionInfo, PartitionLag, QueueDetail,
    QueueKind, QueueState, QueueSummary,
};
pub use value::{FieldTable, FieldValue};
