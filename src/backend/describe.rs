//! A queue or topic described in full: the backend's description plus, for a topic, the
//! consumer groups reading it.

use super::{Backend, Result};
use crate::model::{QueueDetail, QueueKind};

/// A queue or topic described in full, as `mqscope describe` and the TUI's info view show
/// it: the backend's description and, for a topic, the consumer groups reading it with
/// their lag on it. A group listing that fails costs only the groups (a note says why).
pub async fn describe_full(backend: &dyn Backend, name: &str) -> Result<QueueDetail> {
    let mut detail = backend.describe_queue(name).await?;
    if detail.summary.kind == QueueKind::Topic
        && let Some(groups) = backend.consumer_groups()
    {
        match groups.list_groups().await {
            Ok(list) => {
                detail.consumer_groups = list.iter().filter_map(|g| g.on_topic(name)).collect();
            }
            Err(e) => detail
                .notes
                .push(format!("consumer groups not listed: {e}")),
        }
    }
    Ok(detail)
}
