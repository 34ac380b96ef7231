//! Runs effects against the backend on the runtime, never on the render loop; every reply
//! goes back as a message carrying the request id it answers.

use super::state::Effect;
use super::update::Msg;
use crate::backend::{self, Backend, ConnectOptions, PeekRequest};
use crate::config::Target;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

pub struct Worker {
    target: Target,
    options: ConnectOptions,
    backend: Arc<Mutex<Option<Arc<dyn Backend>>>>,
    tx: UnboundedSender<Msg>,
}

impl Worker {
    /// A worker for the interactive app: the demo's traffic keeps moving.
    pub fn new(target: Target, tx: UnboundedSender<Msg>) -> Self {
        Self::with_options(
            target,
            ConnectOptions {
                live: true,
                ..ConnectOptions::default()
            },
            tx,
        )
    }

    pub fn with_options(target: Target, options: ConnectOptions, tx: UnboundedSender<Msg>) -> Self {
        Self {
            target,
            options,
            backend: Arc::new(Mutex::new(None)),
            tx,
        }
    }

    fn current(&self) -> Option<Arc<dyn Backend>> {
        self.backend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Start an effect; returns at once. `Copy` and `Quit` belong to the terminal loop.
    pub fn run(&self, effect: Effect) {
        let tx = self.tx.clone();
        match effect {
            Effect::Connect => {
                let target = self.target.clone();
                let options = self.options.clone();
                let slot = Arc::clone(&self.backend);
                tokio::spawn(async move {
                    let msg = match backend::connect(&target, &options).await {
                        Ok(b) => {
                            let info = b.info();
                            let has_groups = b.consumer_groups().is_some();
                            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
                            Msg::Connected {
                                backend: info.kind.as_str().to_string(),
                                target: info.target,
                                has_groups,
                            }
                        }
                        Err(e) => Msg::ConnectFailed(e.to_string()),
                    };
                    let _ = tx.send(msg);
                });
            }
            Effect::LoadQueues(req) => {
                let b = self.current();
                tokio::spawn(async move {
                    let result = match b {
                        Some(b) => b.list_queues().await.map_err(|e| e.to_string()),
                        None => Err("not connected".to_string()),
                    };
                    let _ = tx.send(Msg::QueuesLoaded {
                        req,
                        result,
                        at: chrono::Utc::now(),
                    });
                });
            }
            Effect::LoadGroups(req) => {
                let b = self.current();
                tokio::spawn(async move {
                    let result = match b.as_ref().and_then(|b| b.consumer_groups()) {
                        Some(cg) => cg.list_groups().await.map_err(|e| e.to_string()),
                        None => Err("this backend has no consumer groups".to_string()),
                    };
                    let _ = tx.send(Msg::GroupsLoaded {
                        req,
                        result,
                        at: chrono::Utc::now(),
                    });
                });
            }
            Effect::LoadMessages {
                req,
                queue,
                partition,
                from,
                limit,
            } => {
                let b = self.current();
                tokio::spawn(async move {
                    let peek = PeekRequest {
                        from,
                        partition,
                        limit,
                        force: false,
                    };
                    let result = match b {
                        Some(b) => b.peek(&queue, &peek).await.map_err(|e| e.to_string()),
                        None => Err("not connected".to_string()),
                    };
                    let _ = tx.send(Msg::MessagesLoaded { req, result });
                });
            }
            Effect::Save { path, contents } => {
                tokio::spawn(async move {
                    let shown = path.display().to_string();
                    let r = tokio::fs::write(&path, contents)
                        .await
                        .map(|_| shown)
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Msg::Saved(r));
                });
            }
            Effect::Copy(_) | Effect::Quit => {}
        }
    }
}
