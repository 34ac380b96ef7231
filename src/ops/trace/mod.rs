//! Tracing a correlation ID: every place its copies sit, read without consuming, in the
//! order they happened (`scan` finds them, `graph` shapes them into a journey, `routes`
//! says where the publish should have gone and what became of each copy, `follow` keeps
//! watching).

pub mod follow;
pub mod graph;
mod groups;
mod hop;
pub mod routes;
mod scan;

pub use crate::model::correlation::{Extractor, IdMatcher, Rule, traceparent_trace_id};
pub use groups::attach_groups;
pub use hop::*;
pub use routes::{Sighting, picked_up, reroute, sighting_of};
pub use scan::*;
