//! The browsing subcommands: queues, consumer groups, describe, vhosts, exchanges and
//! bindings as tables or JSON Lines, the overview printed when no terminal is at hand, and
//! the "no queue named X" error with the names the broker does have.

use crate::backend::{self, Backend, BackendError};
use crate::cli::output;
use crate::cli::{BindingsArgs, DescribeArgs, QueuesArgs};
use crate::config::{Resolved, Target};
use anyhow::{Result, anyhow, bail};
use std::io::Write;

pub(super) async fn queues(
    backend: &dyn Backend,
    args: &QueuesArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let mut list = backend.list_queues().await?;
    keep_named(&mut list, args.filter.as_deref(), |q| &q.name);
    json_or_table(&list, args.out.json, output::write_queue_table, out)
}

/// The browsing capability, or an error that says where to look instead.
fn browser<'a>(backend: &'a dyn Backend, what: &str) -> Result<&'a dyn crate::backend::Browse> {
    backend.browser().ok_or_else(|| {
        anyhow::anyhow!(
            "the {} backend has no {what}: it routes by topic (list topics with `mqscope queues`)",
            backend.info().kind.as_str()
        )
    })
}

pub(super) async fn describe(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &DescribeArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let detail = match backend::describe_full(backend, &args.queue).await {
        Ok(d) => d,
        Err(BackendError::QueueNotFound(name)) => {
            return Err(not_found(backend, &name).await);
        }
        Err(e) => return Err(e.into()),
    };
    let subjects = match backend.info().kind {
        backend::BackendKind::Kafka => subjects(resolved, &args.queue).await?,
        _ => None,
    };
    if args.out.json {
        let mut value = serde_json::to_value(&detail)?;
        if let (Some(s), Some(o)) = (&subjects, value.as_object_mut()) {
            o.insert("schema_subjects".into(), s.to_json());
        }
        writeln!(out, "{}", serde_json::to_string(&value)?)?;
    } else {
        write!(out, "{}", crate::model::describe::text(&detail))?;
        if let Some(s) = &subjects {
            writeln!(out, "{}", s.text())?;
        }
    }
    Ok(())
}

/// The registry subjects a topic's records are registered under by the default
/// TopicNameStrategy (`<topic>-value`, `<topic>-key`), as far as the registry has them.
enum Subjects {
    Found(Vec<String>),
    /// The registry could not say: the topic is described all the same.
    Unknown(String),
}

impl Subjects {
    fn text(&self) -> String {
        match self {
            Subjects::Found(s) if s.is_empty() => {
                "Schema subjects: none registered (TopicNameStrategy)".into()
            }
            Subjects::Found(s) => format!("Schema subjects: {}", s.join(", ")),
            Subjects::Unknown(e) => format!("Schema subjects: unknown ({e})"),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Subjects::Found(s) => serde_json::json!(s),
            Subjects::Unknown(e) => serde_json::json!({ "error": e }),
        }
    }
}

async fn subjects(resolved: &Resolved, topic: &str) -> Result<Option<Subjects>> {
    let Some(registry) = crate::config::registry(resolved)? else {
        return Ok(None);
    };
    Ok(Some(match registry.subjects().await {
        Ok(all) => Subjects::Found(
            [format!("{topic}-value"), format!("{topic}-key")]
                .into_iter()
                .filter(|s| all.contains(s))
                .collect(),
        ),
        Err(e) => Subjects::Unknown(e.to_string()),
    }))
}

pub(super) async fn vhosts(backend: &dyn Backend, json: bool, out: &mut dyn Write) -> Result<()> {
    let list = browser(backend, "virtual hosts")?.vhosts().await?;
    json_or_table(&list, json, output::write_vhost_table, out)
}

pub(super) async fn exchanges(
    backend: &dyn Backend,
    args: &QueuesArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let mut list = browser(backend, "exchanges")?.exchanges().await?;
    keep_named(&mut list, args.filter.as_deref(), |e| &e.name);
    json_or_table(&list, args.out.json, output::write_exchange_table, out)
}

pub(super) async fn bindings(
    backend: &dyn Backend,
    args: &BindingsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let mut list = browser(backend, "bindings")?.bindings().await?;
    list.retain(|b| {
        args.source.as_ref().is_none_or(|s| &b.source == s)
            && args
                .destination
                .as_ref()
                .is_none_or(|d| &b.destination == d)
    });
    json_or_table(&list, args.out.json, output::write_binding_table, out)
}

/// `--filter`: only the items whose name contains it, whatever the case.
fn keep_named<T>(list: &mut Vec<T>, filter: Option<&str>, name: fn(&T) -> &str) {
    if let Some(f) = filter {
        let f = f.to_lowercase();
        list.retain(|i| name(i).to_lowercase().contains(&f));
    }
}

/// JSON Lines (one object per line) or a table.
fn json_or_table<T: serde::Serialize>(
    items: &[T],
    json: bool,
    table: fn(&[T], &mut dyn Write) -> std::io::Result<()>,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        for i in items {
            serde_json::to_writer(&mut *out, i)?;
            writeln!(out)?;
        }
    } else {
        table(items, out)?;
    }
    Ok(())
}

pub(super) async fn groups(backend: &dyn Backend, json: bool, out: &mut dyn Write) -> Result<()> {
    let Some(cg) = backend.consumer_groups() else {
        bail!(
            "the {} backend has no consumer groups",
            backend.info().kind.as_str()
        );
    };
    let list = cg.list_groups().await?;
    json_or_table(&list, json, output::write_group_table, out)
}

/// "no queue named X", with the closest names the broker does have.
pub(super) async fn not_found(backend: &dyn Backend, name: &str) -> anyhow::Error {
    let base = BackendError::QueueNotFound(name.to_string());
    // An exchange's name where a queue's was expected: say so, and where to look.
    if let Some(b) = backend.browser()
        && let Ok(exchanges) = b.exchanges().await
        && exchanges.iter().any(|e| e.name == name)
    {
        return anyhow!(
            "{base}: \"{name}\" is an exchange; `mqscope bindings --source '{name}'` lists the queues it routes to"
        );
    }
    let Ok(list) = backend.list_queues().await else {
        return base.into();
    };
    let names: Vec<&str> = list.iter().map(|q| q.name.as_str()).collect();
    let close = crate::model::names::closest(name, &names);
    if close.is_empty() {
        base.into()
    } else {
        anyhow!("{base}; did you mean {}?", close.join(" or "))
    }
}

/// What a target holds: queues and topics, and consumer groups where there are any.
pub(super) async fn overview(
    resolved: &Resolved,
    backend: &dyn Backend,
    out: &mut dyn Write,
) -> Result<()> {
    let info = backend.info();
    writeln!(out, "{} ({})", info.target, info.kind.as_str())?;
    if let Target::Local(l) = &resolved.target
        && l.scenario == "demo"
    {
        writeln!(
            out,
            "An e-commerce fan-out: orders -> billing, shipping, email, analytics; rejected, expired,\n\
             overflowing and poison messages dead-lettered; a payments topic with a lagging group and\n\
             a Spring-style dead-letter topic. Ten minutes of traffic have been played (seed {}).\n",
            l.seed
        )?;
    }
    let queues = backend.list_queues().await?;
    output::write_queue_table(&queues, out)?;
    if let Some(cg) = backend.consumer_groups() {
        let groups = cg.list_groups().await?;
        if !groups.is_empty() {
            writeln!(out)?;
            output::write_group_table(&groups, out)?;
        }
    }
    writeln!(
        out,
        "\nRun mqscope in a terminal for the interactive view. Scripts can use:\n  mqscope peek billing.dlq -n 5 --url {}\n  mqscope queues --json --url {}",
        info.target, info.target
    )?;
    Ok(())
}
