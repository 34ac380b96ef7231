//! The consumer groups view (Kafka): loading and filtering the list.

use super::list::{self, Listed, load, matching, open};
use super::{Effect, State, View};
use crate::model::ConsumerGroup;

pub(super) fn load_groups(s: &mut State) -> Effect {
    load(s, |s| &mut s.groups, Effect::LoadGroups)
}

pub(super) fn loaded(s: &mut State, reply: Listed<Vec<ConsumerGroup>>) -> Vec<Effect> {
    list::reply(s, |s| &mut s.groups, reply, show)
}

fn show(s: &mut State, list: Vec<ConsumerGroup>) {
    s.groups.list = list;
    refilter_groups(s);
}

pub(super) fn open_groups(s: &mut State) -> Vec<Effect> {
    let has = s.has_groups;
    open(s, has, "consumer groups", View::Groups, load_groups)
}

pub(super) fn refilter_groups(s: &mut State) {
    let visible = matching(&s.groups, |g| &g.name);
    s.groups.show(visible, None, |g| &g.name);
}
