//! Command-line flags. Every flag of `serve` is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "iga",
    version,
    about = "Identity governance: who has access to what, who approved it, and why."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run everything in one process: write API, projections, read API.
    Serve(Box<ServeArgs>),
    /// Rebuild every read model from position 0 of the event log (run it while `serve` is stopped).
    Rebuild(DataArgs),
    /// Check the embedded event log: contiguous positions, indexes, decodable events.
    Verify(DataArgs),
    /// Move the data dir's embedded event log to another engine (copy, check
    /// event by event, switch; the old log is kept), or remove what an
    /// earlier move kept. Run it while `serve` is stopped.
    Migrate(MigrateArgs),
    /// Ask a running instance whether it is alive (`/healthz`) or ready
    /// (`/readyz`); exit status 0 if so. For container health checks (the
    /// image has no shell or curl).
    Health(HealthArgs),
    /// Downstream events published on NATS.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The verifiable log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the log's Merkle tree from its events and check every signed
    /// checkpoint against it; names the first position that does not match.
    Verify(AuditVerifyArgs),
}

#[derive(Args, Clone, Debug)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Checkpoints saved from `GET /api/v1/audit/checkpoints` (its JSON), checked
    /// besides those in the log. Repeatable. Saved outside the service, they
    /// catch a rewrite that also replaced the checkpoints in the log.
    #[arg(long)]
    pub checkpoints: Vec<PathBuf>,
    /// A trusted signing key: base64 of the Ed25519 public key, or the C2SP
    /// verifier key `GET /api/v1/audit/keys` shows. Repeatable. Default: the
    /// data dir's own audit-signing.key.
    #[arg(long)]
    pub key: Vec<String>,
    /// Also check the checkpoints a running service serves
    /// (`GET <URL>/api/v1/audit/checkpoints`), e.g. a deployment on NATS
    /// checked with `--event-log nats://...` against its own API.
    #[arg(long)]
    pub url: Option<String>,
    /// The bearer token for `--url` (an admin's or auditor's).
    #[arg(long, env = "IGA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["to", "remove_old"])))]
pub struct MigrateArgs {
    /// Directory holding the embedded event log and the read models.
    #[arg(long, env = "IGA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The engine to move the log to: `fjall` (the default for new data
    /// dirs: durable against power loss) or `sled` (back).
    #[arg(long, value_parser = ["fjall", "sled"])]
    pub to: Option<String>,
    /// Delete the old log an earlier migration kept (`eventlog.old`,
    /// `eventlog-fjall.old`) and any copy an interrupted one left.
    #[arg(long)]
    pub remove_old: bool,
}

#[derive(Args, Clone, Debug)]
pub struct HealthArgs {
    /// The instance's address, as given to its `--listen` (an unspecified
    /// address such as 0.0.0.0 is asked on loopback).
    #[arg(long, env = "IGA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Ask `/readyz` (caught up with the log, able to answer) instead of
    /// `/healthz` (the process answers).
    #[arg(long)]
    pub ready: bool,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print published events as they arrive, one JSON object per line.
    Tail(TailArgs),
}

#[derive(Args, Clone, Debug)]
pub struct TailArgs {
    /// Where events are published: `nats://host:4222[?stream=..&prefix=..]`
    /// (the same URL as `serve --publish`, or its event log when that is NATS).
    #[arg(long, env = "IGA_PUBLISH", alias = "event-log")]
    pub publish: String,
    /// Start after this log position (`Iga-Position`); default: only new events.
    #[arg(long)]
    pub after: Option<u64>,
    /// Only subjects matching this filter, e.g. `iga.events.request.>`.
    #[arg(long)]
    pub subject: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Directory holding the embedded event log and the read models.
    #[arg(long, env = "IGA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The event log: absent for the embedded log under the data dir (on
    /// fjall, or on sled for a data dir created on sled before fjall was the
    /// default: `iga migrate --to fjall` moves it), `fjall:` or `sled:` to
    /// name the engine, or a `nats://` or `kurrentdb://` URL.
    #[arg(long, env = "IGA_EVENT_LOG")]
    pub event_log: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Address to listen on; port 0 picks a free port (the chosen one is printed).
    #[arg(long, env = "IGA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token of the built-in `admin` user. When unset, one is generated
    /// on first start, written to DATA_DIR/admin.token (mode 0600) and printed once.
    #[arg(long, env = "IGA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Base64 of the 32-byte key that seals webhook secrets in the log. When
    /// unset, one is generated on first start and kept in DATA_DIR/secrets.key
    /// (mode 0600). Every instance of a distributed deployment needs the same.
    #[arg(long, env = "IGA_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// Base64 of the 32-byte Ed25519 seed that signs the log's checkpoints.
    /// When unset, one is generated on first start and kept in
    /// DATA_DIR/audit-signing.key (mode 0600). Instances that sign as one log
    /// need the same.
    #[arg(long, env = "IGA_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<String>,
    /// The checkpoints' origin line: names this log (and its key) in every
    /// signed note, e.g. `iga.example.com/prod`.
    #[arg(long, env = "IGA_AUDIT_ORIGIN", default_value = "iga")]
    pub audit_origin: String,
    /// Seconds between signed checkpoints while events are logged (one is
    /// also signed at once when an admin or auditor asks).
    #[arg(long, env = "IGA_AUDIT_CHECKPOINT_SECS", default_value_t = 60)]
    pub audit_checkpoint_secs: u64,
    /// How long a webhook has to answer one delivery attempt, in milliseconds.
    #[arg(long, env = "IGA_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// The pause after a delivery's first failed attempt, in milliseconds;
    /// it doubles with every attempt (with jitter), up to an hour.
    #[arg(long, env = "IGA_WEBHOOK_RETRY_FIRST_MS", default_value_t = 5_000)]
    pub webhook_retry_first_ms: u64,
    /// How long a failing delivery is retried before it fails, in seconds.
    #[arg(long, env = "IGA_WEBHOOK_GIVE_UP_AFTER_SECS", default_value_t = 86_400)]
    pub webhook_give_up_after_secs: u64,
    /// Most calls this instance has in flight to one webhook at a time.
    #[arg(long, env = "IGA_WEBHOOK_CONCURRENCY", default_value_t = 4)]
    pub webhook_concurrency: usize,
    /// The CloudEvents `source` of the events delivered to webhooks.
    #[arg(long, env = "IGA_EVENT_SOURCE", default_value = "urn:iga")]
    pub event_source: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "IGA_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest event accepted by the embedded log, in bytes.
    #[arg(long, env = "IGA_MAX_EVENT_BYTES", default_value_t = 1024 * 1024)]
    pub max_event_bytes: usize,
    /// How long a read waits for its X-Consistency-Token before answering 503, in milliseconds.
    #[arg(long, env = "IGA_CONSISTENCY_WAIT_MS", default_value_t = 5000)]
    pub consistency_wait_ms: u64,
    /// Risk levels (comma-separated `riskLevelValueId`s) whose entitlements
    /// need a justification when requested.
    #[arg(
        long,
        env = "IGA_JUSTIFICATION_RISK_LEVELS",
        default_value = "high,critical",
        value_delimiter = ','
    )]
    pub justification_risk_levels: Vec<String>,
    /// Requests running longer than this are answered 408, in seconds.
    #[arg(long, env = "IGA_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// On SIGTERM, how long in-flight requests may take to finish, in seconds.
    #[arg(long, env = "IGA_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Publish every event downstream to NATS JetStream (`nats://host:4222[?replicas=3&stream=..&prefix=..]`,
    /// stream `IGA_PUBLISHED`, subjects `iga.events.<aggregate>.<event>`). Default: the event log's
    /// servers when the log is on NATS, else nothing; `none` turns it off.
    #[arg(long, env = "IGA_PUBLISH")]
    pub publish: Option<String>,
    /// Log format: `text` or `json`. The level is set with RUST_LOG (default `info`).
    #[arg(long, env = "IGA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// A boxed error with a readable chain, without another dependency.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}
