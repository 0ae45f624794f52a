//! Settings from flags and the environment (the same names), with secrets kept out of `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about = "Realtime visitor monitoring and targeting"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the service (the default).
    Serve(Settings),
}

impl Cli {
    pub fn settings(self) -> Settings {
        match self.command {
            Some(Command::Serve(s)) => s,
            None => self.serve,
        }
    }
}

/// A secret string whose `Debug` never prints it.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LOOKOUT_ADDR", default_value = "0.0.0.0:8080")]
    pub addr: SocketAddr,

    /// `sqlite://PATH` (embedded default, created if missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://lookout.db")]
    pub database_url: Secret,

    /// Redis URL; when set, several nodes form one cluster.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<Secret>,

    /// URL at which browsers reach the service (derives the ws(s):// URLs); from the request when unset.
    #[arg(long, env = "LOOKOUT_PUBLIC_URL")]
    pub public_url: Option<url::Url>,

    /// HS256 secret for login tokens; generated once and kept in the database when unset.
    #[arg(long, env = "LOOKOUT_JWT_SECRET")]
    pub jwt_secret: Option<Secret>,

    /// Seed a demo account, site and car-dealer shop served at /demo/.
    #[arg(long, env = "LOOKOUT_DEMO")]
    pub demo: bool,

    /// Log format: `text` (default) or `json`.
    #[arg(long, env = "LOOKOUT_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Lifetime of login tokens, in hours.
    #[arg(long, env = "LOOKOUT_TOKEN_TTL_HOURS", default_value_t = 24 * 7)]
    pub token_ttl_hours: u64,

    #[command(flatten)]
    pub limits: Limits,
}

/// Limits of the live channel and the writer, with defaults suited to one node.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Live visitor connections per site on this node.
    #[arg(
        long,
        env = "LOOKOUT_MAX_CONNECTIONS_PER_SITE",
        default_value_t = 50_000
    )]
    pub max_connections_per_site: usize,
    /// Live visitor connections per client IP on this node.
    #[arg(long, env = "LOOKOUT_MAX_CONNECTIONS_PER_IP", default_value_t = 500)]
    pub max_connections_per_ip: usize,
    /// Frames per second a visitor socket may send (burst of twice that).
    #[arg(long, env = "LOOKOUT_MAX_FRAMES_PER_SECOND", default_value_t = 20)]
    pub max_frames_per_second: u32,
    /// Largest frame a visitor may send, in bytes.
    #[arg(long, env = "LOOKOUT_MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    pub max_frame_bytes: usize,
    /// Capacity of the batching writer's queue (page views, events, statuses).
    #[arg(long, env = "LOOKOUT_WRITER_QUEUE", default_value_t = 100_000)]
    pub writer_queue: usize,
    /// Rows per batch of the writer.
    #[arg(long, env = "LOOKOUT_WRITER_BATCH", default_value_t = 2_000)]
    pub writer_batch: usize,
    /// Longest time a row waits in the writer before its batch is flushed, in milliseconds.
    #[arg(long, env = "LOOKOUT_WRITER_FLUSH_MS", default_value_t = 50)]
    pub writer_flush_ms: u64,
    /// Grace period before a visitor whose last tab closed is shown as left, in milliseconds.
    #[arg(long, env = "LOOKOUT_LEAVE_GRACE_MS", default_value_t = 5_000)]
    pub leave_grace_ms: u64,
    /// Seconds a new socket has to send its first frame (`hello` or `auth`).
    #[arg(long, env = "LOOKOUT_HELLO_TIMEOUT_SECS", default_value_t = 10)]
    pub hello_timeout_secs: u64,
}

impl Limits {
    pub fn leave_grace(&self) -> Duration {
        Duration::from_millis(self.leave_grace_ms)
    }
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_secs(self.hello_timeout_secs)
    }
}

impl Settings {
    /// Settings for tests and embedding: everything default, a given database, port 0.
    pub fn for_database(database_url: &str) -> Self {
        let mut s = Cli::parse_from(["lookout"]).settings();
        s.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        s.database_url = Secret(database_url.to_string());
        s
    }
}
