//! The database facade: one `sqlx::Any` pool over SQLite (embedded default) or Postgres, chosen
//! by the URL scheme, with per-backend migrations. Queries are written once with `$N`
//! placeholders (both backends accept them); times are integer milliseconds and JSON is text, so
//! the same rows decode on both. The few spots where SQL differs ask `Db::backend`.

pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AnyPool, ConnectOptions, Executor};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// On Postgres, how the batching writer opens its own native connection (COPY and binary
    /// array parameters are not available through `sqlx::Any`).
    pg_options: Option<Arc<PgConnectOptions>>,
}

impl std::fmt::Debug for Db {
    // Not derived: the connect options hold the database password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects, creating a missing SQLite file, and applies the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Backend::Postgres, url.to_string())
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://");
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing DATABASE_URL")?;
        let pg_options = match backend {
            Backend::Postgres => Some(Arc::new(
                PgConnectOptions::from_str(&url).context("parsing DATABASE_URL")?,
            )),
            Backend::Sqlite => None,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL sync is durable in WAL mode
                        // except for the last transactions on power loss.
                        conn.execute(
                            "pragma journal_mode = wal; pragma synchronous = normal; \
                             pragma busy_timeout = 5000; pragma foreign_keys = on;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.context("applying migrations")?;
        Ok(Self {
            pool,
            backend,
            pg_options,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A native Postgres connection outside the pool, for the batching writer; None on SQLite.
    pub(crate) async fn connect_pg(&self) -> Option<Result<PgConnection, sqlx::Error>> {
        let options = self.pg_options.as_ref()?;
        Some(options.connect().await)
    }

    /// `column` starts with a bound prefix, written so that the (site_id, url, at) index serves it
    /// (byte-wise comparison: BINARY collation on SQLite, "C" on Postgres).
    pub fn prefix_clause(&self, column: &str, lo: usize, hi: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("({column} >= ${lo} and {column} < ${hi})"),
            Backend::Postgres => {
                format!("({column} collate \"C\" >= ${lo} and {column} collate \"C\" < ${hi})")
            }
        }
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn get_setting(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("select value from setting where name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
    }

    /// Stores a setting unless one exists; returns the value that is kept.
    pub async fn init_setting(&self, name: &str, value: &str) -> Result<String, sqlx::Error> {
        sqlx::query(
            "insert into setting (name, value) values ($1, $2) on conflict (name) do nothing",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(self
            .get_setting(name)
            .await?
            .unwrap_or_else(|| value.to_string()))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The exclusive upper bound of all strings starting with `prefix` in byte order, or None when
/// every string above `prefix` qualifies.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        // Skip the surrogate gap, which has no chars.
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bound_increments_the_last_char() {
        assert_eq!(prefix_upper_bound("/cars/").as_deref(), Some("/cars0"));
        assert_eq!(prefix_upper_bound("a").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
    }
}
