//! A Confluent-compatible schema registry client (Confluent, Apicurio's ccompat API,
//! Redpanda, Karapace): schemas by id with their references, each fetched once per process.
//!
//! The decoder's lookups are synchronous ([`SchemaSource`]) and the front ends call it
//! both from plain code (`peek --json` writing a record) and from async tasks (the TUI's
//! worker), so every request runs on one thread of the registry's own, with its own
//! runtime: a blocking lookup waits for that thread, an async one awaits it, and neither
//! cares which runtime (if any) it is called from. Requests are made one at a time there,
//! so two lookups of one id make one request.
//!
//! A failure is remembered for [`RETRY_AFTER`]: an unreachable registry is not asked again
//! for every message of a page, and each message says why it was not decoded.

mod fetch;
mod source;

pub use source::RegistrySchemas;

use crate::backend::target::Secret;
use crate::format::decode::{DecodeError, Schema, read_framing};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a failure (the registry unreachable, an id it does not have, an answer that is
/// no schema) is remembered before the registry is asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// One request's limit: a registry that accepts the connection and never answers holds a
/// page this long once, then is remembered as down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach a registry.
#[derive(Clone)]
pub struct RegistrySettings {
    /// The base URL, e.g. `https://registry.internal:8081` (holding no credentials).
    pub url: String,
    pub auth: RegistryAuth,
    /// A PEM file of certificate authorities to trust besides the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub enum RegistryAuth {
    None,
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

impl fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry: {0}")]
    Setup(String),
    #[error("registry {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("registry {url} answered {status} to GET {path}{detail}")]
    Status {
        url: String,
        status: u16,
        path: String,
        detail: String,
    },
    #[error("registry {url} answered GET {path} with {reason}")]
    Garbage {
        url: String,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    Schema(#[from] DecodeError),
}

/// The schemas fetched so far, and the failures still remembered.
#[derive(Default)]
struct Cache {
    schemas: HashMap<u32, Arc<Schema>>,
    failed: HashMap<u32, (Instant, RegistryError)>,
    /// The registry could not be reached: every id fails at once until the time is up.
    down: Option<(Instant, RegistryError)>,
}

impl Cache {
    /// What is known of `id` now: the schema, a failure still remembered, or nothing.
    fn known(&self, id: u32) -> Option<Result<Arc<Schema>, RegistryError>> {
        if let Some(s) = self.schemas.get(&id) {
            return Some(Ok(s.clone()));
        }
        let fresh = |at: &Instant| at.elapsed() < RETRY_AFTER;
        if let Some((at, e)) = &self.down
            && fresh(at)
        {
            return Some(Err(e.clone()));
        }
        match self.failed.get(&id) {
            Some((at, e)) if fresh(at) => Some(Err(e.clone())),
            _ => None,
        }
    }
}

type Answer = Result<Arc<Schema>, RegistryError>;

enum Reply {
    Blocking(std::sync::mpsc::Sender<Answer>),
    Async(tokio::sync::oneshot::Sender<Answer>),
}

struct Job {
    id: u32,
    reply: Reply,
}

/// A schema registry: what it gave, and the thread that asks it.
pub struct Registry {
    url: String,
    cache: Arc<Mutex<Cache>>,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    /// Requests made (schemas by id, subject versions, subject lists), for tests and notes.
    requests: Arc<AtomicU64>,
    client: fetch::Client,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("url", &self.url).finish()
    }
}

impl Registry {
    /// A client for `settings`, and its thread. Nothing is asked until a schema is wanted.
    pub fn new(settings: RegistrySettings) -> Result<Registry, RegistryError> {
        // The URL is said in every message about the registry: it must hold no secret, and
        // one that does is not repeated here either.
        crate::backend::target::check_management_url(&settings.url).map_err(|reason| {
            let shown = crate::backend::target::redact_raw(&settings.url);
            let reason = reason.replace(
                "the profile's user and password are sent",
                "give schema_registry's user and password_env or password_command",
            );
            RegistryError::Setup(format!("url \"{shown}\": {reason}"))
        })?;
        let requests = Arc::new(AtomicU64::new(0));
        let client = fetch::Client::new(&settings, requests.clone())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Setup(format!("cannot start its runtime: {e}")))?;
        let cache = Arc::new(Mutex::new(Cache::default()));
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (thread_cache, thread_client) = (cache.clone(), client.clone());
        std::thread::Builder::new()
            .name("mqscope-registry".into())
            .spawn(move || {
                // Ends when the last sender (the Registry) is dropped.
                runtime.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        let answer = answer(&thread_cache, &thread_client, job.id).await;
                        match job.reply {
                            Reply::Blocking(tx) => drop(tx.send(answer)),
                            Reply::Async(tx) => drop(tx.send(answer)),
                        }
                    }
                });
            })
            .map_err(|e| RegistryError::Setup(format!("cannot start its thread: {e}")))?;
        Ok(Registry {
            url: client.base().to_string(),
            cache,
            jobs,
            requests,
            client,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many requests the registry was sent.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema of `id` if it was fetched, or the failure remembered; `None` when it was
    /// never asked for (or the failure is old enough to ask again).
    pub fn cached(&self, id: u32) -> Option<Result<Arc<Schema>, RegistryError>> {
        self.cache().known(id)
    }

    fn gone() -> RegistryError {
        RegistryError::Setup("its thread has stopped".into())
    }

    /// Hand the fetch of `id` to the registry's thread, which answers through `reply`.
    fn ask(&self, id: u32, reply: Reply) -> Result<(), RegistryError> {
        self.jobs.send(Job { id, reply }).map_err(|_| Self::gone())
    }

    /// The schema of `id`, asking the registry when it is not cached: blocks the calling
    /// thread for at most the request's timeouts (once per id and process).
    pub fn schema_blocking(&self, id: u32) -> Answer {
        if let Some(known) = self.cached(id) {
            return known;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.ask(id, Reply::Blocking(tx))?;
        rx.recv().map_err(|_| Self::gone())?
    }

    /// The schema of `id`, asking the registry when it is not cached.
    pub async fn schema(&self, id: u32) -> Answer {
        if let Some(known) = self.cached(id) {
            return known;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.ask(id, Reply::Async(tx))?;
        rx.await.map_err(|_| Self::gone())?
    }

    /// The schema ids of the Confluent-framed bodies among `bodies` not asked for yet.
    pub fn wanted<'a>(&self, bodies: impl IntoIterator<Item = &'a [u8]>) -> Vec<u32> {
        let mut ids: Vec<u32> = bodies
            .into_iter()
            .filter_map(|b| read_framing(b, false).ok().map(|f| f.id))
            .filter(|id| self.cached(*id).is_none())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Fetch the schemas of `ids` ([`Registry::wanted`]), so that a decoder that does not
    /// fetch (the TUI's) finds them. The note to show when the registry could not be
    /// reached.
    pub async fn prefetch(&self, ids: Vec<u32>) -> Option<String> {
        let mut note = None;
        for id in ids {
            if let Err(e @ RegistryError::Unreachable { .. }) = self.schema(id).await {
                note = Some(format!("{e}: payloads are shown raw"));
            }
        }
        note.or_else(|| match self.cache().down.as_ref() {
            Some((at, e)) if at.elapsed() < RETRY_AFTER => {
                Some(format!("{e}: payloads are shown raw"))
            }
            _ => None,
        })
    }

    /// The registry's subjects (`GET /subjects`), for `describe`.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.client.subjects().await
    }
}

/// Runs on the registry's thread: the cached answer, or one fetched and remembered.
async fn answer(cache: &Mutex<Cache>, client: &fetch::Client, id: u32) -> Answer {
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    // Asked twice before the first answer came: the second finds the first's.
    if let Some(known) = lock().known(id) {
        return known;
    }
    let result = client.schema(id).await.map(Arc::new);
    let mut c = lock();
    match &result {
        Ok(s) => {
            c.schemas.insert(id, s.clone());
        }
        Err(e @ RegistryError::Unreachable { .. }) => c.down = Some((Instant::now(), e.clone())),
        Err(e) => {
            c.failed.insert(id, (Instant::now(), e.clone()));
        }
    }
    if result.is_ok() {
        c.down = None;
    }
    result
}
