//! The link to the broker: connecting, backing off after a failure, the reloads the
//! ticks drive, and switching virtual host.

use super::command::echo;
use super::{Effect, State, View, next_req};
use super::{exchanges::load_exchanges, groups::load_groups, info::open_info, queues::load_queues};
use crate::tui::state::{Conn, Cursor, ReqId};

pub(super) fn connected(
    s: &mut State,
    backend: String,
    target: String,
    server: Option<String>,
    has_groups: bool,
    has_exchanges: bool,
) -> Vec<Effect> {
    s.status.backend = backend;
    s.status.server = server;
    s.status.target = target;
    s.status.conn = Conn::Connected;
    s.status.error = None;
    s.has_groups = has_groups;
    s.has_exchanges = has_exchanges;
    s.backend_ready = true;
    vec![load_queues(s)]
}

pub(super) fn vhost_switch_failed(s: &mut State, e: String) -> Vec<Effect> {
    s.status.error = Some(format!("could not switch virtual host: {e}"));
    s.status.info = None;
    s.status.conn = Conn::Connected;
    s.backend_ready = true;
    vec![load_queues(s)]
}

pub(super) fn connection_ok(s: &mut State) {
    if s.status.conn != Conn::Connected {
        s.status.info = Some("connected".into());
    }
    s.status.conn = Conn::Connected;
    s.status.error = None;
}

/// Back off 2, 4, 8, ... up to 30 seconds between attempts.
pub(super) fn connection_failed(s: &mut State, e: String) {
    let failures = match s.status.conn {
        Conn::Lost { failures, .. } => failures + 1,
        _ => 1,
    };
    let wait = (1u64 << failures.min(5)).min(30);
    s.status.conn = Conn::Lost {
        retry_at: s.tick + wait,
        failures,
    };
    s.status.error = Some(e);
}

pub(super) fn on_tick(s: &mut State) -> Vec<Effect> {
    s.tick += 1;
    if let Conn::Lost { retry_at, .. } = s.status.conn {
        if s.tick < retry_at {
            return Vec::new();
        }
        if !s.backend_ready {
            s.status.conn = Conn::Connecting;
            return vec![Effect::Connect];
        }
        return refresh_current(s);
    }
    if !s.backend_ready || !s.tick.is_multiple_of(s.refresh_every()) {
        return Vec::new();
    }
    refresh_current(s)
}

/// Reload what the current view lists, unless a load is already under way.
fn refresh_current(s: &mut State) -> Vec<Effect> {
    match s.view() {
        View::Queues if s.queues.pending.is_none() && s.queues.pace.ready(s.tick) => {
            vec![load_queues(s)]
        }
        View::Groups if s.groups.pending.is_none() && s.groups.pace.ready(s.tick) => {
            vec![load_groups(s)]
        }
        View::Exchanges if s.exchanges.pending.is_none() && s.exchanges.pace.ready(s.tick) => {
            vec![load_exchanges(s)]
        }
        View::Info if s.info.pending.is_none() => {
            let q = s.info.queue.clone();
            open_info(s, q)
        }
        _ => Vec::new(),
    }
}

pub(super) fn vhosts_loaded(s: &mut State, req: ReqId, result: Result<Vec<String>, String>) {
    if s.vhosts_pending.finish(req).is_none() {
        return;
    }
    match result {
        Ok(list) => {
            s.status.info = Some(format!(
                "virtual hosts: {} (:vhost NAME switches; Tab completes)",
                list.join(", ")
            ));
            s.vhosts = list;
        }
        Err(e) => s.status.error = Some(e),
    }
}

/// `:vhost` lists the virtual hosts; `:vhost NAME` reconnects to one: everything listed
/// is cleared (it belonged to the old one) and the queue list loads again.
pub(super) fn switch_vhost(s: &mut State, name: &str) -> Vec<Effect> {
    if s.status.backend != "rabbitmq" {
        s.status.error = Some(format!(
            "the {} backend has no virtual hosts to switch between",
            s.status.backend
        ));
        return Vec::new();
    }
    if name.is_empty() {
        let req = next_req(s);
        s.vhosts_pending.start(req, ());
        return vec![Effect::LoadVhosts(req)];
    }
    if !s.vhosts.is_empty() && !s.vhosts.iter().any(|v| v == name) {
        s.status.error = Some(format!(
            "no virtual host \"{}\" (there are: {})",
            echo(name),
            s.vhosts.join(", ")
        ));
        return Vec::new();
    }
    s.stack = vec![View::Queues];
    s.queues.list.clear();
    s.queues.visible.clear();
    s.queues.cursor = Cursor::default();
    s.queues.pending.clear();
    s.queues.refreshed_at = None;
    s.groups.list.clear();
    s.groups.visible.clear();
    s.groups.pending.clear();
    s.exchanges.list.clear();
    s.exchanges.extra.clear();
    s.exchanges.visible.clear();
    s.exchanges.pending.clear();
    // The old vhost's filters mean nothing in the new one.
    s.queues.filter.clear();
    s.queues.extra.bound_to = None;
    s.exchanges.filter.clear();
    s.backend_ready = false;
    s.status.conn = Conn::Connecting;
    s.status.error = None;
    s.status.info = Some(format!("switching to virtual host \"{name}\""));
    vec![Effect::SwitchVhost(name.to_string())]
}
