//! Connecting to SQLite or PostgreSQL and keeping the schema current.
//!
//! Both backends run the same queries through sqlx's `Any` driver. The schema lives twice, in
//! `migrations/sqlite` and `migrations/postgres`, because DDL differs (identity columns,
//! triggers); the two must keep the same meaning, and the test suite runs on both.
//!
//! Portable column types: `TEXT`, `BIGINT` (SQLite `INTEGER`), booleans as `0`/`1` integers,
//! times as [`crate::UnixMillis`].

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, ConnectOptions, Transaction};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, by its scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or(url);
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(StoreError::UnsupportedDatabase(other.to_owned())),
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// The handle to the database: a connection pool and the backend it speaks to.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`). A SQLite file is created
    /// when missing. Does not migrate: call [`Db::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        // Statement logging would put case data into the logs; keep only slow-statement warnings.
        let options = AnyConnectOptions::from_str(&url)?
            .disable_statement_logging()
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let max_connections = match backend {
            // SQLite has one writer; a few readers are plenty.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers and every migration this build knows is applied.
    pub async fn is_ready(&self) -> bool {
        let applied: Result<Vec<(i64,)>, sqlx::Error> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await;
        let Ok(applied) = applied else {
            return false;
        };
        self.backend.migrator().iter().all(|migration| {
            applied
                .iter()
                .any(|(version,)| *version == migration.version)
        })
    }

    /// Begins a transaction, for work that writes. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails at once
    /// with "database is locked" when another connection wrote in between (waiting would not
    /// help: its snapshot is stale), whereas an immediate one waits its turn (the busy timeout,
    /// 5 s). PostgreSQL begins as usual.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The connection pool, for the repositories of this crate and for test assertions.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this database is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for the connections in use to be returned, then closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
