//! The recorder's database: envelopes in an embedded SQLite file (WAL, indexed by
//! correlation ID and time), the gaps nothing was recorded in, and how far each log was
//! read. Inserts are idempotent (one row per [`Envelope::uid`]), so a tap replayed after a
//! restart records nothing twice; retention deletes the oldest rows in batches.

use crate::model::envelope::{Envelope, EventKind, SourceKind};
use crate::model::{FieldTable, Properties};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The schema this build writes and reads; a database of a later one is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Rows deleted per statement while enforcing retention: small enough that a writer
/// waiting behind it (the recorder's next batch, a trace reading) is not held long.
const DELETE_BATCH: i64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: the database is read-only (file or directory permissions, or a read-only file system); nothing was recorded, and the broker was not touched"
    )]
    ReadOnly { path: String },
    #[error(
        "{path}: the disk is full; the batch being written was not recorded (free space or lower --retain, then start again: what is stored is intact)"
    )]
    Full { path: String },
    #[error("{path}: not an mqscope record database, or damaged ({reason})")]
    Corrupt { path: String, reason: String },
    #[error(
        "{path}: written by a newer mqscope (schema {found}; this one reads up to {SCHEMA_VERSION})"
    )]
    Schema { path: String, found: i64 },
    #[error("{path}: locked by another writer for too long ({reason})")]
    Busy { path: String, reason: String },
    #[error("{path}: {reason}")]
    Other { path: String, reason: String },
}

/// A time nothing was recorded in, and why (the broker was away, the recorder was not running).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub reason: String,
}

/// How long envelopes are kept: by age, by the database's size, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<chrono::Duration>,
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Read `--retain` values: ages (`7d`, `12h`, `90m`) and sizes (`10GB`, `500MB`, `2GiB`);
    /// at most one of each.
    pub fn parse(values: &[String]) -> Result<Retention, String> {
        let mut keep = Retention::default();
        for v in values {
            let t = v.trim();
            if let Some(bytes) = parse_size(t) {
                if keep.max_bytes.replace(bytes).is_some() {
                    return Err(format!("--retain \"{v}\": a size is given twice"));
                }
            } else {
                let age = crate::model::time::parse_ago("--retain", t).map_err(|_| {
                    format!("--retain \"{v}\": not an age (7d, 12h, 30m) or a size (10GB, 500MB)")
                })?;
                if keep.max_age.replace(age).is_some() {
                    return Err(format!("--retain \"{v}\": an age is given twice"));
                }
            }
        }
        Ok(keep)
    }
}

/// `10GB`, `500MB`, `64KiB`, `1TB`: decimal units, or binary ones with an `i`.
fn parse_size(t: &str) -> Option<u64> {
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        "TIB" => 1 << 40,
        _ => return None,
    };
    (n > 0.0).then_some((n * scale as f64) as u64)
}

/// The recorder's database, open for writing or for reading.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating it if need be) for recording: WAL, synchronous=NORMAL (a power cut
    /// may lose the last batches, never the file), the schema checked or created.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let store = Store::connect(path, flags)?;
        // SQLite opens a file it may not write read-only without a word: say so now, not
        // at the first batch.
        if store
            .conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(err(path))?
        {
            return Err(StoreError::ReadOnly {
                path: store.shown(),
            });
        }
        store.settle()?;
        // Before any table: auto_vacuum can only be chosen for an empty file, and lets
        // size retention give space back to the file system.
        store
            .conn
            .pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(err(path))?;
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err(path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other {
                path: store.shown(),
                reason: format!("cannot use write-ahead logging (journal mode stays {mode})"),
            });
        }
        store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(err(path))?;
        store.set_cache_mib(CACHE_MIB)?;
        store.conn.execute_batch(SCHEMA).map_err(err(path))?;
        store
            .conn
            .execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?1)",
                params![SCHEMA_VERSION.to_string()],
            )
            .map_err(err(path))?;
        Ok(store)
    }

    /// How much of the file SQLite keeps in memory, at most: the indexes' pages that
    /// inserts land on at random (event uid, correlation ID) stay cached longer.
    pub fn set_cache_mib(&self, mib: u32) -> Result<(), StoreError> {
        // A negative cache_size is in KiB rather than pages.
        let kib = -(i64::from(mib) * 1024);
        self.conn
            .pragma_update(None, "cache_size", kib)
            .map_err(err(&self.path))
    }

    /// Open an existing database to read (a trace); it may be recorded into meanwhile.
    pub fn open_read(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Other {
                path: path.display().to_string(),
                reason: "no such file (record into it with `mqscope record --db FILE`)".into(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let store = Store::connect(path, flags)?;
        store.settle()?;
        if !store.has_table("envelopes")? {
            return Err(StoreError::Corrupt {
                path: store.shown(),
                reason: "it has no envelopes table".into(),
            });
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(path, flags).map_err(err(path))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Wait for a writer's lock rather than fail at once, and refuse a newer schema.
    fn settle(&self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err(&self.path))?;
        self.check_version()
    }

    /// The first column of the first row `sql` gives, if it gives one.
    fn first<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        self.conn
            .query_row(sql, params, |r| r.get(0))
            .optional()
            .map_err(err(&self.path))
    }

    /// Every row `sql` gives, each read by `row`.
    fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let e = err(&self.path);
        let mut st = self.conn.prepare_cached(sql).map_err(&e)?;
        let rows = st.query_map(params, row).map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }

    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1";
        Ok(self.first::<i64>(sql, [name])?.is_some())
    }

    fn check_version(&self) -> Result<(), StoreError> {
        if !self.has_table("meta")? {
            return Ok(());
        }
        let found: Option<String> =
            self.first("SELECT value FROM meta WHERE key='schema_version'", [])?;
        match found.map(|v| v.parse::<i64>()) {
            None => Ok(()),
            Some(Ok(v)) if v <= SCHEMA_VERSION => Ok(()),
            Some(Ok(found)) => Err(StoreError::Schema {
                path: self.shown(),
                found,
            }),
            Some(Err(_)) => Err(StoreError::Corrupt {
                path: self.shown(),
                reason: "its schema version is not a number".into(),
            }),
        }
    }

    /// Store a batch in one transaction; returns how many were new (the rest were recorded
    /// before). A log record also moves its partition's resume offset past it.
    pub fn insert(&mut self, batch: &[Envelope]) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let e = err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        let mut added = 0u64;
        {
            let mut ins = tx.prepare_cached(INSERT).map_err(&e)?;
            let mut off = tx
                .prepare_cached(
                    "INSERT INTO offsets(topic, partition, next_offset) VALUES (?1, ?2, ?3)
                     ON CONFLICT(topic, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                )
                .map_err(&e)?;
            let mut text = Vec::with_capacity(512);
            for env in batch {
                text.clear();
                env.headers
                    .serialize_json(&mut serde_json::Serializer::new(&mut text))
                    .map_err(|x| StoreError::Other {
                        path: path.display().to_string(),
                        reason: format!("headers: {x}"),
                    })?;
                let headers = String::from_utf8_lossy(&text);
                let properties = (!env.properties.is_empty())
                    .then(|| serde_json::to_string(&env.properties).ok())
                    .flatten();
                let routed = env
                    .routed_queues
                    .as_ref()
                    .and_then(|q| serde_json::to_string(q).ok());
                let details = (!env.details.is_empty())
                    .then(|| serde_json::to_string(&env.details).ok())
                    .flatten();
                added += ins
                    .execute(params![
                        env.uid(),
                        env.time.timestamp_millis(),
                        env.kind.as_str(),
                        env.source_kind.as_str(),
                        env.source,
                        env.correlation_id,
                        env.message_key,
                        env.message_id,
                        env.exchange,
                        env.routing_key,
                        routed,
                        env.partition,
                        env.offset,
                        env.published.map(|t| t.timestamp_millis()),
                        headers,
                        properties,
                        &env.body[..],
                        i64::try_from(env.body_size).unwrap_or(i64::MAX),
                        details,
                    ])
                    .map_err(&e)? as u64;
                if let (EventKind::Record, Some(p), Some(o)) = (env.kind, env.partition, env.offset)
                {
                    off.execute(params![env.source, p, o + 1]).map_err(&e)?;
                }
            }
        }
        tx.commit().map_err(&e)?;
        Ok(added)
    }

    /// Record that nothing was recorded from `gap.from` to `gap.to`.
    pub fn add_gap(&mut self, gap: &Gap) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO gaps(from_ms, to_ms, reason) VALUES (?1, ?2, ?3)",
                params![
                    gap.from.timestamp_millis(),
                    gap.to.timestamp_millis(),
                    gap.reason
                ],
            )
            .map_err(err(&self.path))?;
        Ok(())
    }

    /// The gaps that overlap `from..=to` (all of them when both are None), oldest first.
    pub fn gaps(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<Gap>, StoreError> {
        let range = params![
            from.map_or(i64::MIN, |t| t.timestamp_millis()),
            to.map_or(i64::MAX, |t| t.timestamp_millis())
        ];
        self.all(
            "SELECT from_ms, to_ms, reason FROM gaps WHERE to_ms >= ?1 AND from_ms <= ?2 ORDER BY from_ms",
            range,
            |r| {
                Ok(Gap {
                    from: millis(r.get(0)?),
                    to: millis(r.get(1)?),
                    reason: r.get(2)?,
                })
            },
        )
    }

    /// Say the recorder was running at `now` (a restart reports a gap from the last one).
    pub fn mark_alive(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES ('alive_ms', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![now.timestamp_millis().to_string()],
            )
            .map_err(err(&self.path))?;
        Ok(())
    }

    /// When a recorder last said it was running.
    pub fn last_alive(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<String> = self.first("SELECT value FROM meta WHERE key='alive_ms'", [])?;
        Ok(v.and_then(|v| v.parse().ok()).map(millis))
    }

    /// Per topic and partition, the first offset not yet recorded.
    pub fn offsets(&self) -> Result<Vec<(String, i32, i64)>, StoreError> {
        self.all(
            "SELECT topic, partition, next_offset FROM offsets ORDER BY 1, 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Every envelope of one correlation ID, oldest first (since `since`, when given).
    pub fn by_correlation(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.all(
            "SELECT kind, source_kind, source, correlation_id, message_key, message_id, exchange,
                    routing_key, routed_queues, partition, \"offset\", time_ms, published_ms,
                    headers, properties, body, body_size, details
             FROM envelopes WHERE correlation_id = ?1 AND time_ms >= ?2 ORDER BY time_ms, id",
            params![id, since.map_or(i64::MIN, |t| t.timestamp_millis())],
            row_envelope,
        )
    }

    /// How many envelopes are stored.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM envelopes", [], |r| r.get(0))
            .map_err(err(&self.path))?;
        Ok(n.max(0) as u64)
    }

    /// The bytes the database's pages in use take (the file may hold free pages besides).
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        let e = err(&self.path);
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .map_err(&e)?;
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))
            .map_err(&e)?;
        let size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(&e)?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// Delete the oldest envelopes beyond `keep` (older than its age, and while the
    /// database is over its size), in batches; returns how many went.
    pub fn enforce(&mut self, keep: &Retention, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let e = err(&self.path);
        let mut deleted = 0u64;
        if let Some(age) = keep.max_age {
            let cutoff = (now - age).timestamp_millis();
            loop {
                let n = self
                    .conn
                    .execute(
                        "DELETE FROM envelopes WHERE id IN
                           (SELECT id FROM envelopes WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)",
                        params![cutoff, DELETE_BATCH],
                    )
                    .map_err(&e)?;
                deleted += n as u64;
                if (n as i64) < DELETE_BATCH {
                    break;
                }
            }
            self.conn
                .execute("DELETE FROM gaps WHERE to_ms < ?1", params![cutoff])
                .map_err(&e)?;
        }
        if let Some(max) = keep.max_bytes {
            let mut shrunk = false;
            loop {
                let used = self.used_bytes()?;
                if used <= max {
                    break;
                }
                // The share of rows over the limit (ids are dense enough to count them by),
                // a batch at most: pages are freed only once emptied, so measure again.
                let (lo, hi): (Option<i64>, Option<i64>) = self
                    .conn
                    .query_row("SELECT min(id), max(id) FROM envelopes", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(&e)?;
                let rows = hi.unwrap_or(0) - lo.unwrap_or(0) + 1;
                let over = (used - max) as f64 / used as f64;
                let want = ((rows as f64 * over) as i64 + 1).clamp(1, DELETE_BATCH);
                let n = self
                    .conn
                    .execute(
                        "DELETE FROM envelopes WHERE id IN
                           (SELECT id FROM envelopes ORDER BY time_ms LIMIT ?1)",
                        params![want],
                    )
                    .map_err(&e)?;
                deleted += n as u64;
                shrunk = true;
                if n == 0 {
                    break;
                }
            }
            if shrunk {
                // Give the freed pages back, so the file itself stays under the limit.
                self.conn
                    .execute_batch("PRAGMA incremental_vacuum")
                    .map_err(&e)?;
            }
        }
        Ok(deleted)
    }

    /// SQLite's own check of the whole file: "ok", or what is wrong.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let lines: Vec<String> = self.all("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(lines.join("; "))
    }
}

/// The page cache of a recording, in MiB (SQLite's default is 2): measured with
/// `cargo bench --bench record` (BENCHMARKS.md).
const CACHE_MIB: u32 = 16;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes (
    id INTEGER PRIMARY KEY,
    uid INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source TEXT NOT NULL,
    correlation_id TEXT,
    message_key TEXT NOT NULL,
    message_id TEXT,
    exchange TEXT,
    routing_key TEXT,
    routed_queues TEXT,
    partition INTEGER,
    \"offset\" INTEGER,
    published_ms INTEGER,
    headers TEXT NOT NULL,
    properties TEXT,
    body BLOB NOT NULL,
    body_size INTEGER NOT NULL,
    details TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS envelopes_uid ON envelopes(uid);
CREATE INDEX IF NOT EXISTS envelopes_correlation ON envelopes(correlation_id, time_ms)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS envelopes_time ON envelopes(time_ms);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
";

const INSERT: &str = "INSERT OR IGNORE INTO envelopes(uid, time_ms, kind, source_kind, source,
    correlation_id, message_key, message_id, exchange, routing_key, routed_queues, partition,
    \"offset\", published_ms, headers, properties, body, body_size, details)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored row back as an envelope; a column that does not parse is a damaged row.
fn row_envelope(r: &rusqlite::Row<'_>) -> rusqlite::Result<Envelope> {
    let bad = |i: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(what),
        )
    };
    let kind: String = r.get(0)?;
    let source_kind: String = r.get(1)?;
    let routed: Option<String> = r.get(8)?;
    let headers: String = r.get(13)?;
    let properties: Option<String> = r.get(14)?;
    let details: Option<String> = r.get(17)?;
    let headers = serde_json::from_str::<serde_json::Value>(&headers)
        .map_err(|e| e.to_string())
        .and_then(|v| FieldTable::from_json(&v).map_err(|e| e.reason))
        .map_err(|e| bad(13, format!("headers: {e}")))?;
    Ok(Envelope {
        kind: EventKind::parse(&kind).ok_or_else(|| bad(0, format!("event kind {kind}")))?,
        source_kind: SourceKind::parse(&source_kind)
            .ok_or_else(|| bad(1, format!("source kind {source_kind}")))?,
        source: r.get(2)?,
        correlation_id: r.get(3)?,
        message_key: r.get(4)?,
        message_id: r.get(5)?,
        exchange: r.get(6)?,
        routing_key: r.get(7)?,
        routed_queues: routed
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| bad(8, format!("routed queues: {e}")))?,
        partition: r.get(9)?,
        offset: r.get(10)?,
        time: millis(r.get(11)?),
        published: r.get::<_, Option<i64>>(12)?.map(millis),
        headers,
        properties: properties
            .map(|t| serde_json::from_str::<Properties>(&t))
            .transpose()
            .map_err(|e| bad(14, format!("properties: {e}")))?
            .unwrap_or_default(),
        body: Bytes::from(r.get::<_, Vec<u8>>(15)?),
        body_size: r.get::<_, i64>(16)?.max(0) as u64,
        details: details
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| bad(17, format!("details: {e}")))?
            .unwrap_or_default(),
    })
}

/// SQLite's error, said for people: the cases a user can act on by name.
fn err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        let shown = path.display().to_string();
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path: shown },
            Some(ErrorCode::DiskFull) => StoreError::Full { path: shown },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path: shown,
                reason: e.to_string(),
            },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
                path: shown,
                reason: e.to_string(),
            },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied)
                if path.exists()
                    && std::fs::OpenOptions::new().append(true).open(path).is_err() =>
            {
                StoreError::ReadOnly { path: shown }
            }
            _ => StoreError::Other {
                path: shown,
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Message;
    use crate::model::correlation::Extractor;
    use crate::testing::at;

    fn publish(n: u32, corr: &str, secs: i64) -> Envelope {
        let mut m = Message::new("orders", 0, format!("body {n}").into_bytes());
        m.exchange = Some("orders".into());
        m.routing_key = Some("order.created".into());
        m.properties.correlation_id = Some(corr.into());
        m.properties.message_id = Some(format!("m-{n}"));
        m.routed_queues = Some(vec!["billing".into(), "shipping".into()]);
        m.headers
            .insert("tenant", crate::model::FieldValue::string("acme"));
        Envelope::of_tailed(&m, at(secs), &Extractor::default(), 1024)
    }

    #[test]
    fn envelopes_come_back_by_correlation_id_in_time_order_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("r.db")).unwrap();
        let batch = vec![
            publish(2, "c-1", 20),
            publish(1, "c-1", 10),
            publish(3, "c-2", 15),
        ];
        assert_eq!(s.insert(&batch).unwrap(), 3);
        let got = s.by_correlation("c-1", None).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], batch[1], "stored and read back field for field");
        assert_eq!(got[1].message_id.as_deref(), Some("m-2"));
        assert!(s.by_correlation("c-1", Some(at(15))).unwrap().len() == 1);
        assert!(s.by_correlation("nope", None).unwrap().is_empty());
    }

    #[test]
    fn an_event_seen_again_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut s = Store::open(&path).unwrap();
        assert_eq!(
            s.insert(&[publish(1, "c", 1), publish(2, "c", 2)]).unwrap(),
            2
        );
        drop(s);
        let mut s = Store::open(&path).unwrap();
        // The same two again (seen later), and one new.
        let again = [publish(1, "c", 5), publish(2, "c", 6), publish(3, "c", 7)];
        assert_eq!(s.insert(&again).unwrap(), 1);
        assert_eq!(s.count().unwrap(), 3);
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn log_records_move_the_resume_offset_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("r.db")).unwrap();
        let rec = |o: i64| {
            let mut m = Message::new("payments", o as u64, b"x".to_vec());
            m.partition = Some(1);
            m.offset = Some(o);
            Envelope::of_tailed(&m, at(o), &Extractor::default(), 8)
        };
        s.insert(&[rec(4), rec(9), rec(7)]).unwrap();
        assert_eq!(s.offsets().unwrap(), vec![("payments".to_string(), 1, 10)]);
    }

    #[test]
    fn retention_deletes_the_oldest_by_age_and_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("r.db")).unwrap();
        let batch: Vec<Envelope> = (0..3_000).map(|n| publish(n, "c", i64::from(n))).collect();
        s.insert(&batch).unwrap();
        let by_age = Retention {
            max_age: Some(chrono::Duration::seconds(1_000)),
            max_bytes: None,
        };
        assert_eq!(
            s.enforce(&by_age, at(3_000)).unwrap(),
            2_000,
            "older than 2000 s"
        );
        let left = s.by_correlation("c", None).unwrap();
        assert_eq!(left.first().unwrap().time, at(2_000));
        let before = s.used_bytes().unwrap();
        let by_size = Retention {
            max_age: None,
            max_bytes: Some(before / 2),
        };
        assert!(s.enforce(&by_size, at(3_000)).unwrap() > 0);
        assert!(s.used_bytes().unwrap() <= before / 2);
        let left = s.by_correlation("c", None).unwrap();
        assert_eq!(left.last().unwrap().time, at(2_999), "the newest kept");
    }

    #[test]
    fn retention_reads_ages_and_sizes() {
        let r = Retention::parse(&["7d".into(), "10GB".into()]).unwrap();
        assert_eq!(r.max_age, Some(chrono::Duration::days(7)));
        assert_eq!(r.max_bytes, Some(10_000_000_000));
        assert_eq!(
            Retention::parse(&["2GiB".into()]).unwrap().max_bytes,
            Some(2 << 30)
        );
        assert!(Retention::parse(&["7d".into(), "1d".into()]).is_err());
        assert!(Retention::parse(&["lots".into()]).is_err());
        assert_eq!(Retention::parse(&[]).unwrap(), Retention::default());
    }

    #[test]
    fn gaps_and_the_last_sign_of_life_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("r.db")).unwrap();
        assert_eq!(s.last_alive().unwrap(), None);
        s.mark_alive(at(50)).unwrap();
        assert_eq!(s.last_alive().unwrap(), Some(at(50)));
        let g = Gap {
            from: at(10),
            to: at(20),
            reason: "broker away".into(),
        };
        s.add_gap(&g).unwrap();
        assert_eq!(s.gaps(Some(at(15)), None).unwrap(), vec![g]);
        assert!(s.gaps(Some(at(21)), None).unwrap().is_empty());
    }

    /// Make `path` unwritable even for root (who ignores permissions): `chattr +i`. False
    /// when that cannot be done here.
    pub(crate) fn make_read_only(path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        if std::fs::OpenOptions::new().append(true).open(path).is_err() {
            return true;
        }
        std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success())
    }

    pub(crate) fn make_writable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(path)
            .status();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    #[test]
    fn a_read_only_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut s = Store::open(&path).unwrap();
        s.insert(&[publish(1, "c", 1)]).unwrap();
        drop(s);
        assert!(make_read_only(&path), "cannot make a file read-only here");
        let e = Store::open(&path).err();
        make_writable(&path);
        let e = e.unwrap();
        assert!(matches!(e, StoreError::ReadOnly { .. }), "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
        let s = Store::open_read(&path).unwrap();
        assert_eq!(
            s.by_correlation("c", None).unwrap().len(),
            1,
            "still readable"
        );
    }

    #[test]
    fn a_full_disk_is_called_so_and_what_was_stored_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut s = Store::open(&path).unwrap();
        s.insert(&[publish(0, "c", 0)]).unwrap();
        // SQLite answers a page limit reached exactly as a full disk: SQLITE_FULL.
        let pages: i64 = s
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        s.conn.pragma_update(None, "max_page_count", pages).unwrap();
        let big: Vec<Envelope> = (1..2_000).map(|n| publish(n, "c", i64::from(n))).collect();
        let e = s.insert(&big).err().unwrap();
        assert!(matches!(e, StoreError::Full { .. }), "{e}");
        assert!(e.to_string().contains("disk is full"), "{e}");
        assert_eq!(
            s.count().unwrap(),
            1,
            "the failed batch left nothing behind"
        );
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_called_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let e = Store::open(&path).err().unwrap();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        let e = Store::open_read(&dir.path().join("missing.db"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
