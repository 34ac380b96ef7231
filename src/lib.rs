//! mqscope: browse, peek, trace and replay messages in RabbitMQ, Kafka and a built-in
//! local broker, from a terminal UI or scriptable subcommands.
//!
//! The layer rule: each layer uses only the ones listed before it, never one after it,
//! and the two front ends never use each other (`.ci/layers` checks it; ARCHITECTURE.md
//! draws it).
//!
//! model ← format ← backend ← config ← ops ← {cli, tui}
//!
//! `fault` (the crash points of the fault tests) stands outside the order: any layer may
//! use it, and it uses none.

pub mod model;

pub mod format;

pub mod backend;

pub mod config;

pub mod ops;

pub mod cli;
pub mod tui;

pub mod fault;
#[cfg(test)]
mod testing;
