//! `mqscope demo`: the built-in demo broker, in the terminal UI or, without a terminal, as
//! an overview of what it holds.

use crate::backend;
use crate::cli::dispatch::{OpenTui, connect_options};
use crate::cli::{DemoArgs, browse};
use crate::config::{self, LocalTarget, Resolved, Selection, Target};
use anyhow::Result;
use std::io::{IsTerminal, Write};

pub(super) async fn demo(
    args: &DemoArgs,
    sel: &Selection,
    theme: Option<&str>,
    tui: OpenTui,
    out: &mut dyn Write,
) -> Result<()> {
    let target = LocalTarget {
        fixed_clock: args.fixed_clock,
        ..LocalTarget::demo(args.seed)
    };
    // The demo keeps the config's theme, colours and keys, but not its broker.
    let base = config::resolve(&Selection {
        url: Some("local://demo".into()),
        ..sel.clone()
    })?;
    let resolved = Resolved {
        target: Target::Local(target),
        profile_name: None,
        ..base
    };
    if std::io::stdout().is_terminal() {
        return tui(&resolved, theme).await;
    }
    let backend = backend::connect(&resolved.target, &connect_options(&resolved)).await?;
    browse::overview(&resolved, backend.as_ref(), out).await
}
