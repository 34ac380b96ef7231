//! Command-line interface: global connection flags and the scriptable subcommands.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mqscope",
    version,
    about = "See what is really in RabbitMQ, Kafka or the built-in demo broker: browse, peek, trace, replay.",
    long_about = None,
    after_help = "With no subcommand, opens the demo broker (or the config's default profile).\n\
                  Targets: amqp://user@host:5672/%2F, amqps://..., kafka://host:9092[,host:9092], local://demo"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Broker URL (amqp://, amqps://, kafka://, local://demo); overrides the profile's URL.
    // MQSCOPE_URL's value stays out of --help: it may hold a password.
    #[arg(
        long,
        global = true,
        env = "MQSCOPE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub url: Option<String>,
    /// Named profile from the config file.
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "MQSCOPE_PROFILE",
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// Config file [default: $XDG_CONFIG_HOME/mqscope/config.toml].
    #[arg(long, global = true, env = "MQSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Colour theme for the TUI.
    #[arg(long, global = true, env = "MQSCOPE_THEME", value_name = "NAME")]
    pub theme: Option<String>,
    /// Refuse every action that changes a broker.
    #[arg(long, global = true)]
    pub read_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List queues, streams and topics with depth, consumers and dead-letter wiring.
    Queues(QueuesArgs),
    /// Read messages without consuming them.
    Peek(PeekArgs),
    /// Everything about one queue, stream or topic: depth, rates, dead-letter wiring,
    /// limits, arguments and policy, partitions and configs, and what routes to it.
    Describe(DescribeArgs),
    /// List consumer groups with their lag.
    Groups(JsonFlag),
    /// List virtual hosts with their message totals and whether tracing is on (AMQP).
    Vhosts(JsonFlag),
    /// List the virtual host's exchanges: type, durable/auto-delete/internal, rates,
    /// bindings, alternate exchange and policy (AMQP).
    Exchanges(QueuesArgs),
    /// List bindings: which exchange routes to which queue or exchange, with which key and
    /// arguments (AMQP).
    Bindings(BindingsArgs),
    /// Publish messages: from a `peek --json` export (or backup) or a single body.
    Publish(PublishArgs),
    /// Follow new messages on exchanges or topics as they are published, without
    /// disturbing their delivery.
    Tail(TailArgs),
    /// Find every copy and follow-up of a correlation ID across all queues and topics, with
    /// its dead-letter hops, in time order. Reads only; nothing is consumed.
    Trace(TraceArgs),
    /// Record every message's envelope (ids, correlation ID, route, deaths, time, headers,
    /// the first bytes of the body) from the live tail into a database, so `trace --db` can
    /// tell journeys after the queues are empty. Runs until Ctrl-C.
    Record(RecordArgs),
    /// Replay dead letters to where they came from: publish each copy with confirms, and
    /// only then remove the original. Journalled and resumable.
    Replay(ReplayArgs),
    /// Remove every message from a queue, after writing them all to a backup file.
    Purge(PurgeArgs),
    /// Remove chosen messages from a queue (the others keep their order), after a backup.
    Delete(DeleteArgs),
    /// Open the built-in demo broker (an e-commerce fan-out with dead letters).
    Demo(DemoArgs),
}

impl Command {
    /// Whether the command writes JSON (escaped by the encoder) rather than text for a
    /// person to read (see `guard::TextGuard`).
    pub fn writes_json(&self) -> bool {
        match self {
            Command::Queues(a) | Command::Exchanges(a) => a.out.json,
            Command::Peek(a) => a.out.json,
            Command::Describe(a) => a.out.json,
            Command::Groups(a) | Command::Vhosts(a) => a.json,
            Command::Bindings(a) => a.out.json,
            Command::Publish(a) => a.json,
            Command::Tail(a) => a.out.json,
            Command::Trace(a) => a.json,
            Command::Record(a) => a.json,
            Command::Replay(a) => a.json,
            Command::Purge(a) => a.how.json,
            Command::Delete(a) => a.how.json,
            Command::Demo(_) => false,
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct JsonFlag {
    /// JSON Lines output: one object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct QueuesArgs {
    /// Only names containing this text (case-insensitive).
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args, Clone)]
pub struct DescribeArgs {
    /// Queue, stream or topic.
    #[arg(value_parser = crate::cli::validate::valid_name)]
    pub queue: String,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args, Clone)]
pub struct BindingsArgs {
    /// Only bindings from this exchange. (The default exchange's implicit bindings, one
    /// per queue by its name, are never listed.)
    #[arg(long, value_name = "EXCHANGE")]
    pub source: Option<String>,
    /// Only bindings to this queue or exchange.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args, Clone)]
pub struct PeekArgs {
    /// Queue, stream or topic to read.
    #[arg(value_parser = crate::cli::validate::valid_name)]
    pub queue: String,
    /// How many messages.
    #[arg(short = 'n', long = "count", default_value_t = 10, value_name = "N")]
    pub count: usize,
    /// Start at this position: an index from the head of a queue, or an offset in a topic.
    #[arg(long, value_name = "POSITION", conflicts_with_all = ["since", "last"])]
    pub from: Option<u64>,
    /// Start at the first message at or after a time: RFC 3339 (2026-01-01T12:00:00Z) or
    /// a duration ago (90s, 15m, 2h, 1d).
    #[arg(long, value_name = "TIME", conflicts_with = "last", value_parser = crate::cli::validate::valid_since)]
    pub since: Option<String>,
    /// The last N messages instead of the first.
    #[arg(long)]
    pub last: bool,
    /// Topics: read one partition (default: all partitions merged by time).
    #[arg(long, value_name = "P")]
    pub partition: Option<i32>,
    /// Every message instead of -n: topics partition by partition (not merged by time) up
    /// to the end as it was when the read started, in pages so memory stays bounded.
    #[arg(long, conflicts_with_all = ["last", "since", "count"])]
    pub all: bool,
    /// How many messages `--all` holds at a time (memory against round trips).
    #[arg(long, hide = true, default_value_t = 10_000, value_name = "N")]
    pub page_size: usize,
    /// Peek even where it could push a message towards its delivery limit.
    #[arg(long)]
    pub force: bool,
    /// Print only the messages read that match, as `replay --filter` chooses them:
    /// `FIELD=VALUE`, `FIELD!=VALUE` or `FIELD~REGEX` joined with `and` and `or` (`and` binds
    /// tighter) and grouped with parentheses; a value in double quotes is taken as written.
    /// FIELD is reason, queue, exchange, routing_key, message_id, correlation_id, type,
    /// app_id, key, body or header.NAME. `-n` (or `--all`) says how many are read, not how
    /// many match.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Seed of the scenario: the same seed gives the same messages.
    #[arg(long, default_value_t = crate::config::DEFAULT_SEED)]
    pub seed: u64,
    /// Start the clock at 2026-01-01T00:00:00Z instead of now, so output is fully repeatable.
    #[arg(long)]
    pub fixed_clock: bool,
}

#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from", "body", "body_file"])))]
pub struct PublishArgs {
    /// JSON Lines in the `peek --json` format ("-" for standard input). Every line is read
    /// and checked before the first message is sent.
    #[arg(long, value_name = "FILE")]
    pub from: Option<String>,
    /// A single message with this body (UTF-8 text).
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// A single message whose body is this file, byte for byte ("-" for standard input).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<String>,
    /// The single message's header: NAME=TEXT, or NAME:=JSON for a typed value as
    /// `peek --json` writes them (42, true, {"$type":"i32","value":5}). Repeatable.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME=VALUE",
        conflicts_with = "from"
    )]
    pub headers: Vec<String>,
    /// The single message's AMQP property: NAME=VALUE, where NAME is content_type,
    /// content_encoding, delivery_mode (1, 2, transient, persistent), priority,
    /// correlation_id, reply_to, expiration (ms), message_id, timestamp (seconds or RFC
    /// 3339), type, user_id, app_id or cluster_id. Repeatable.
    #[arg(long = "property", value_name = "NAME=VALUE", conflicts_with = "from")]
    pub properties: Vec<String>,
    /// The single record's key (topics).
    #[arg(long, value_name = "KEY", conflicts_with = "from")]
    pub key: Option<String>,
    /// Send to this queue (through the default exchange). A single message (--body,
    /// --body-file) needs this, --exchange or --topic.
    #[arg(
        long,
        value_name = "QUEUE",
        conflicts_with_all = ["exchange", "topic"],
        required_unless_present_any = ["from", "exchange", "topic"],
        value_parser = crate::cli::validate::valid_name
    )]
    pub queue: Option<String>,
    /// Send to this exchange...
    #[arg(long, value_name = "EXCHANGE", conflicts_with = "topic")]
    pub exchange: Option<String>,
    /// ...with this routing key (default: each record's own).
    #[arg(long, value_name = "KEY")]
    pub routing_key: Option<String>,
    /// Send to this topic.
    #[arg(long, value_name = "TOPIC", value_parser = crate::cli::validate::valid_name)]
    pub topic: Option<String>,
    /// Topics: this partition (default: by key).
    #[arg(long, value_name = "P")]
    pub partition: Option<i32>,
    /// Topics: keep each record's own partition.
    #[arg(long, conflicts_with = "partition")]
    pub keep_partition: bool,
    /// One JSON receipt per message instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct TailArgs {
    /// Exchanges (RabbitMQ, local) or topics to follow; none means all.
    pub sources: Vec<String>,
    /// Stop after this many messages.
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this long without a message: 30s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::validate::valid_idle)]
    pub idle: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args, Clone)]
pub struct TraceArgs {
    /// The correlation ID to follow.
    #[arg(value_parser = crate::cli::validate::valid_name)]
    pub id: String,
    /// Only queues and topics whose names match this pattern (`*`, `?`).
    #[arg(long, value_name = "GLOB")]
    pub queues: Option<String>,
    /// Only messages since this time: RFC 3339 or a duration ago (15m, 2h); topics start
    /// reading there.
    #[arg(long, value_name = "TIME", value_parser = crate::cli::validate::valid_since)]
    pub since: Option<String>,
    /// A consumer group to check topic records against (repeatable), besides those the
    /// broker lists: brokers without group listing still answer for a named group.
    #[arg(long = "group", value_name = "GROUP", value_parser = crate::cli::validate::valid_name)]
    pub groups: Vec<String>,
    /// Keep watching for new hops through the live tail (every exchange and topic, and
    /// deliveries to consumers where the broker reports them) after the scan, until
    /// Ctrl-C; with --json each new hop is one more JSON line.
    #[arg(long)]
    pub follow: bool,
    /// Merge the journey recorded in this database (`mqscope record`) with the scan, so
    /// copies long consumed show too [default: the profile's record_db].
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// One JSON object: correlation_id, scanned, queues_scanned, hops (with their consumer
    /// groups and deliveries), skipped, notes, routes, elapsed_ms (and, with a database,
    /// recorded).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RecordArgs {
    /// Exchanges (RabbitMQ, local) or topics to tap; none taps them all (with tracing on in
    /// the vhost, RabbitMQ's firehose sees every publish).
    pub sources: Vec<String>,
    /// Keep only what happens on, is routed to, or died in queues and topics whose names
    /// match this pattern (`*`, `?`).
    #[arg(long, value_name = "GLOB")]
    pub queues: Option<String>,
    /// The database file (created if missing; a recording resumes into it) [default: the
    /// profile's record_db].
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Delete envelopes older than an age (7d, 12h) or the oldest while the database is over
    /// a size (10GB, 500MB), while recording; repeatable, one of each.
    #[arg(long, value_name = "AGE|SIZE")]
    pub retain: Vec<String>,
    /// Keep the first N bytes of each body.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub bodies: usize,
    /// A status line (rate, stored, dropped) this often: 10s, 1m.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub interval: String,
    /// Envelopes held between the tap and the database; beyond it they are dropped and
    /// counted, never waited for.
    #[arg(long, hide = true, default_value_t = 20_000, value_name = "N")]
    pub buffer: usize,
    /// Status lines and gaps as JSON Lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Destinations: RabbitMQ dead letters go back through the exchange and routing key \
of their newest x-death entry (straight to the queue they died in when the exchange would fan them \
out to other queues again: see --via); Kafka records to kafka_dlt-original-topic or \
__connect.errors.topic. Each copy carries x-mqscope-replayed-from and x-mqscope-replay-count.\n\
Filter: FIELD=VALUE, FIELD!=VALUE, FIELD~REGEX joined by 'and' and 'or' ('and' binds tighter), \
grouped with parentheses, a value in double quotes taken as written; fields: reason, queue (died in), \
exchange, routing_key, message_id, correlation_id, type, app_id, key, body, header.NAME.\n\
A journal in the state directory records every step; an interrupted replay goes on with --resume."
)]
pub struct ReplayArgs {
    /// The dead-letter queue or topic (with --resume: taken from the journal).
    #[arg(required_unless_present_any = ["resume", "abandon"], value_parser = crate::cli::validate::valid_name)]
    pub queue: Option<String>,
    /// Send every message here instead: queue:NAME, exchange:NAME, topic:NAME or a bare
    /// name (a queue on RabbitMQ, a topic on Kafka).
    #[arg(long, value_name = "TARGET", value_parser = crate::cli::validate::valid_to)]
    pub to: Option<String>,
    /// With --to exchange:NAME: the routing key (default: each message's original one).
    #[arg(long, value_name = "KEY", requires = "to")]
    pub routing_key: Option<String>,
    /// RabbitMQ: through the original exchange, straight to the queue it died in, or auto
    /// (the exchange unless it would deliver the copy to other queues too).
    #[arg(long, value_enum, default_value = "auto")]
    pub via: crate::ops::replay::Via,
    /// Only messages matching this expression (see below).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Only these messages: message ids or fingerprints (`peek --json`), comma-separated or repeated.
    #[arg(long, value_name = "ID", value_delimiter = ',', num_args = 1..)]
    pub ids: Vec<String>,
    /// Replay at most N messages.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Loop guard: refuse messages already replayed this many times.
    #[arg(long, value_name = "N", default_value_t = crate::ops::replay::DEFAULT_MAX_REPLAYS)]
    pub max_replays: u64,
    /// Go past the loop guard, and take from quorum queues with a delivery limit.
    #[arg(long)]
    pub force: bool,
    /// Kafka: produce to the partition the record came from.
    #[arg(long)]
    pub keep_partition: bool,
    /// Kafka: afterwards, commit this consumer group (one with no running members) past the
    /// records replayed, up to the first record of each partition that was not.
    #[arg(long, value_name = "GROUP")]
    pub commit_group: Option<String>,
    /// Kafka: afterwards, delete the records replayed, up to the first record of each
    /// partition that was not (DeleteRecords; the dead-letter topic is otherwise untouched).
    #[arg(long)]
    pub delete_records: bool,
    /// Messages per batch: journalled, published, confirmed and acked together.
    #[arg(long, value_name = "N", default_value_t = crate::ops::replay::BATCH)]
    pub batch: usize,
    /// Print the plan (per destination, skipped and why) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Go on with an interrupted replay: the newest unfinished one (for QUEUE, if given),
    /// or the journal file named.
    #[arg(long, value_name = "JOURNAL", num_args = 0..=1, default_missing_value = "", conflicts_with = "abandon")]
    pub resume: Option<String>,
    /// Give up an interrupted replay instead of finishing it (the newest unfinished one for
    /// QUEUE, or the journal file named): a new replay of its queue is then allowed. What it
    /// had published stays published; look at its journal first.
    #[arg(long, value_name = "JOURNAL", num_args = 0..=1, default_missing_value = "")]
    pub abandon: Option<String>,
    /// Print the plan or the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct PurgeArgs {
    /// The queue to empty.
    #[arg(value_parser = crate::cli::validate::valid_name)]
    pub queue: String,
    #[command(flatten)]
    pub how: RemovalArgs,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteArgs {
    /// The queue to delete them from.
    #[arg(value_parser = crate::cli::validate::valid_name)]
    pub queue: String,
    /// The messages to delete: message ids or fingerprints (`peek --json` gives each message's "fingerprint").
    #[arg(long, value_name = "ID", value_delimiter = ',', num_args = 1.., required_unless_present = "resume", conflicts_with = "resume")]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub how: RemovalArgs,
}

/// What `purge` and `delete` share: the confirmation, the backup and resuming.
#[derive(Debug, Args, Clone)]
pub struct RemovalArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Skip the backup (for huge queues): the removed messages are gone for good.
    #[arg(long, conflicts_with = "backup")]
    pub no_backup: bool,
    /// Write the backup here instead of the state directory.
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Go ahead on a quorum queue with a delivery limit (messages read and returned count
    /// towards it).
    #[arg(long)]
    pub force: bool,
    /// Finish an interrupted run on this queue (same backup file, same choice of messages):
    /// what it had backed up and not seen removed is removed now, not written twice.
    #[arg(long, conflicts_with_all = ["no_backup", "backup"])]
    pub resume: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}
