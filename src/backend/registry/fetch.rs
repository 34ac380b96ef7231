//! The registry's REST calls: a schema by id (`GET /schemas/ids/{id}`), the subject it is
//! registered under (`/schemas/ids/{id}/versions`), the schemas it references
//! (`/subjects/{subject}/versions/{version}`, followed to the end, each once), and the
//! subjects (`/subjects`).

use super::{REQUEST_TIMEOUT, RegistryAuth, RegistryError, RegistrySettings};
use crate::format::decode::{Origin, Schema};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most of one answer that is read: schemas are kilobytes; a registry (or something
/// else at its address) sending more is not one to trust with memory.
const MAX_ANSWER: usize = 8 << 20;

/// How deep references may nest before the chain is taken for a loop the registry made.
const MAX_DEPTH: usize = 64;

/// `GET /schemas/ids/{id}` and `GET /subjects/{s}/versions/{v}` share these fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Debug, Clone, Deserialize)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

#[derive(Debug, Deserialize)]
struct SubjectVersion {
    subject: String,
}

#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    auth: RegistryAuth,
    requests: Arc<AtomicU64>,
    /// Subject versions already read (referenced by more than one schema).
    versions: Arc<Mutex<HashMap<(String, i64), Answer>>>,
}

impl Client {
    pub(super) fn new(
        settings: &RegistrySettings,
        requests: Arc<AtomicU64>,
    ) -> Result<Self, RegistryError> {
        let setup =
            |what: &str, e: &dyn std::fmt::Display| RegistryError::Setup(format!("{what}: {e}"));
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("mqscope/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            let shown = format!("ca_file {}", path.display());
            let pem = std::fs::read(path).map_err(|e| setup(&shown, &e))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| setup(&shown, &e))?;
            if certs.is_empty() {
                return Err(setup(&shown, &"no PEM certificate in it"));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| setup("cannot set up the HTTP client", &e))?;
        Ok(Client {
            http,
            base: settings.url.trim_end_matches('/').to_string(),
            auth: settings.auth.clone(),
            requests,
            versions: Arc::default(),
        })
    }

    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// One GET, its answer read as JSON of type `T`.
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, RegistryError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self.http.get(format!("{}{path}", self.base)).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        req = match &self.auth {
            RegistryAuth::None => req,
            RegistryAuth::Basic { user, password } => req.basic_auth(user, Some(password.expose())),
            RegistryAuth::Bearer(token) => req.bearer_auth(token.expose()),
        };
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            url: self.base.clone(),
            // Without the URL (it is said once, before) and without its source chain's
            // repetition: "error sending request" alone says nothing.
            reason: error_chain(&e),
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(self.garbage(path, format!("more than {MAX_ANSWER} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                url: self.base.clone(),
                status: status.as_u16(),
                path: path.to_string(),
                detail: error_detail(&body),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| self.garbage(path, format!("no answer mqscope reads ({e})")))
    }

    fn garbage(&self, path: &str, reason: String) -> RegistryError {
        RegistryError::Garbage {
            url: self.base.clone(),
            path: path.to_string(),
            reason,
        }
    }

    /// The schema registered as `id`, with everything it references.
    pub(super) async fn schema(&self, id: u32) -> Result<Schema, RegistryError> {
        let answer: Answer = self.get(&format!("/schemas/ids/{id}")).await?;
        let mut references = Vec::new();
        let mut seen = HashSet::new();
        self.resolve(&answer.references, &mut references, &mut seen, 0)
            .await?;
        // The subject only names the schema: a registry that cannot say it still decodes.
        let origin = match self
            .get::<Vec<SubjectVersion>>(&format!("/schemas/ids/{id}/versions"))
            .await
        {
            Ok(v) if !v.is_empty() => Origin::Subject(v[0].subject.clone()),
            _ => Origin::Id(id),
        };
        let kind = answer.schema_type.as_deref().unwrap_or("AVRO");
        Ok(Schema::from_registry(
            kind,
            &answer.schema,
            &references,
            origin,
        )?)
    }

    /// Every schema `refs` names, transitively, added to `out` (each subject version once,
    /// a loop read once round).
    async fn resolve(
        &self,
        refs: &[Reference],
        out: &mut Vec<(String, String)>,
        seen: &mut HashSet<(String, i64)>,
        depth: usize,
    ) -> Result<(), RegistryError> {
        if depth > MAX_DEPTH {
            return Err(self.garbage(
                "/subjects/...",
                format!("references nested more than {MAX_DEPTH} deep"),
            ));
        }
        for r in refs {
            if !seen.insert((r.subject.clone(), r.version)) {
                continue;
            }
            let answer = self.version(&r.subject, r.version).await?;
            Box::pin(self.resolve(&answer.references, out, seen, depth + 1)).await?;
            out.push((r.name.clone(), answer.schema));
        }
        Ok(())
    }

    async fn version(&self, subject: &str, version: i64) -> Result<Answer, RegistryError> {
        let key = (subject.to_string(), version);
        let known = self
            .versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(a) = known {
            return Ok(a);
        }
        let path = format!("/subjects/{}/versions/{version}", segment(subject));
        let answer: Answer = self.get(&path).await?;
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, answer.clone());
        Ok(answer)
    }

    pub(super) async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.get("/subjects").await
    }
}

/// A subject as one URL path segment.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What went wrong sending a request: its causes joined (reqwest's own message is only
/// "error sending request for url ...").
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    // reqwest's own text repeats the URL, which the message says already.
    let first: &dyn std::error::Error = e;
    let mut cur = first.source().or(Some(first));
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    if e.is_timeout() {
        parts.push("timed out".into());
    }
    parts.join(": ")
}

/// A registry's error body (`{"error_code": 40403, "message": "Schema not found"}`) as a
/// short text after the status.
fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Error {
        message: Option<String>,
    }
    let text = match serde_json::from_slice::<Error>(body) {
        Ok(Error { message: Some(m) }) => m,
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    let text: String = text.chars().take(200).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |ca: PathBuf| RegistrySettings {
            url: "https://r:8081".into(),
            auth: RegistryAuth::None,
            ca_file: Some(ca),
        };
        let client = |ca| Client::new(&settings(ca), Arc::default()).err().unwrap();
        let e = client(dir.path().join("gone.pem")).to_string();
        assert!(e.contains("ca_file") && e.contains("gone.pem"), "{e}");
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        let e = client(dir.path().join("empty.pem")).to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = super::super::Registry::new(RegistrySettings {
            url: "http://user:pw@r:8081".into(),
            auth: RegistryAuth::None,
            ca_file: None,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("must not hold a user or password"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn subjects_are_one_path_segment_and_error_bodies_are_short() {
        assert_eq!(segment("a b/c-value"), "a%20b%2Fc-value");
        assert_eq!(
            error_detail(br#"{"error_code":40403,"message":"Schema 7 not found"}"#),
            ": Schema 7 not found"
        );
        assert_eq!(error_detail(b""), "");
        assert_eq!(error_detail(&[b'x'; 500]).len(), 202);
    }
}
