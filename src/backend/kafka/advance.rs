//! Moving past a log's records once a replay dealt with them: a group's offsets committed
//! forward, or the records deleted (DeleteRecords).

use super::KafkaBackend;
use super::client::map_err;
use super::groups::committed_offsets;
use crate::backend::{Advance, BackendError, Result};
use async_trait::async_trait;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

#[async_trait]
impl Advance for KafkaBackend {
    /// Commits as a client outside the group (no join, generation -1), which brokers accept
    /// only while the group has no running members.
    async fn commit_group(
        &self,
        topic: &str,
        group: &str,
        upto: &[(i32, i64)],
    ) -> Result<Vec<(i32, Option<i64>, i64)>> {
        let settings = self.settings.clone();
        let (topic, group, upto) = (topic.to_string(), group.to_string(), upto.to_vec());
        tokio::task::spawn_blocking(move || {
            let shown = settings.shown();
            let keys: Vec<(String, i32)> = upto.iter().map(|(p, _)| (topic.clone(), *p)).collect();
            let (c, current) = committed_offsets(&settings, &group, &keys)?;
            let mut commit = TopicPartitionList::new();
            let mut moved = Vec::new();
            for (p, to) in &upto {
                let was = current.get(&(topic.clone(), *p)).copied();
                if was.is_some_and(|w| w >= *to) {
                    continue;
                }
                commit
                    .add_partition_offset(&topic, *p, Offset::Offset(*to))
                    .map_err(|e| map_err(&e, "committing offsets", &shown, c.context()))?;
                moved.push((*p, was, *to));
            }
            if commit.count() > 0 {
                c.commit(&commit, CommitMode::Sync).map_err(|e| {
                    BackendError::Broker(format!(
                        "committing group \"{group}\" on \"{topic}\": {e} (a group with running members refuses commits from outside it; stop them first)"
                    ))
                })?;
            }
            Ok(moved)
        })
        .await
        .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))?
    }

    async fn delete_records(&self, topic: &str, upto: &[(i32, i64)]) -> Result<()> {
        let shown = self.shown();
        let admin = self.admin().await?;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in upto {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
                .map_err(|e| map_err(&e, "deleting records", &shown, admin.inner().context()))?;
        }
        let wait = self.settings.timeout;
        let opts = AdminOptions::new()
            .request_timeout(Some(wait))
            .operation_timeout(Some(wait));
        let what = format!("deleting records of \"{topic}\" (DeleteRecords)");
        // Some brokers never answer an API they lack (librdkafka's mock); the request
        // timeout ends the wait, and this one is a backstop.
        let answer = tokio::time::timeout(
            wait + Duration::from_secs(2),
            admin.delete_records(&tpl, &opts),
        )
        .await
        .map_err(|_| BackendError::Timeout {
            after: wait,
            what: what.clone(),
        })?
        .map_err(|e| map_err(&e, &what, &shown, admin.inner().context()))?;
        for e in answer.elements() {
            if let Err(err) = e.error() {
                return Err(map_err(
                    &err,
                    &format!("{what}, partition {}", e.partition()),
                    &shown,
                    admin.inner().context(),
                ));
            }
        }
        Ok(())
    }
}
