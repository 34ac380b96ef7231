//! mqscope: browse, peek, trace and replay messages in RabbitMQ, Kafka and a built-in
//! local broker, from a terminal UI or scriptable subcommands.

pub mod app;
pub mod backend;
pub mod cli;
pub mod config;
pub mod export;
pub mod fault;
pub mod filter;
pub mod journal;
pub mod model;
pub mod modify;
pub mod output;
pub mod replay;
pub mod run;
pub mod scan;
pub mod theme;
pub mod trace;
pub mod ui;
