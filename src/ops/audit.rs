//! The audit log: one line for every modifying action, whoever ran it and how it ended.

use crate::model::time::rfc3339;
use crate::ops::store::{JournalError, ensure_dir, io, state_dir};
use chrono::Utc;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

/// One modifying action, for the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry<'a> {
    pub time: String,
    pub user: String,
    pub profile: Option<&'a str>,
    pub broker: &'a str,
    pub action: &'a str,
    pub queue: &'a str,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    pub result: String,
}

/// Who runs mqscope, for the audit log: `$USER`, `$LOGNAME`, else the user id's name in
/// /etc/passwd (a container or a cron job often sets neither), else `uid N`.
fn current_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
    {
        return u;
    }
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .ok();
    let Some(uid) = uid else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

impl<'a> AuditEntry<'a> {
    pub fn new(broker: &'a str, profile: Option<&'a str>, action: &'a str, queue: &'a str) -> Self {
        Self {
            time: rfc3339(&Utc::now()),
            user: current_user(),
            profile,
            broker,
            action,
            queue,
            count: 0,
            backup: None,
            journal: None,
            result: String::new(),
        }
    }
}

/// Append one line to `<state>/audit.jsonl` and sync it.
pub fn audit(entry: &AuditEntry<'_>) -> Result<PathBuf, JournalError> {
    let dir = state_dir()?;
    ensure_dir(&dir)?;
    let path = dir.join("audit.jsonl");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    let line = serde_json::to_string(entry).unwrap_or_default();
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(io(&path))?;
    Ok(path)
}

/// Write the audit line of `action` on `queue` of `broker`, filled in by `fill`.
pub fn record(
    broker: &str,
    profile: Option<&str>,
    action: &str,
    queue: &str,
    fill: impl FnOnce(&mut AuditEntry<'_>),
) -> Result<PathBuf, JournalError> {
    let mut e = AuditEntry::new(broker, profile, action, queue);
    fill(&mut e);
    audit(&e)
}

/// What a modifying action did, and whether its audit line was written: the action stands
/// either way, and each front end says in its own way that the line is missing.
#[derive(Debug)]
pub struct Audited<T> {
    pub outcome: T,
    pub audit: Result<PathBuf, JournalError>,
}
