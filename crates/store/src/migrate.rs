//! Embedded migrations, one SQL set per engine, and the `schema_version` table.

use sqlx::Executor;

use crate::decode::int;
use crate::error::{Context, StoreError};
use crate::{Backend, SchemaState, Store};

/// SQLite migrations: (version, script), ascending.
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_initial.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_deliveries_outbox.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_audit.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_master_events.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_builds_by_builder.sql"),
    ),
];

/// PostgreSQL migrations: (version, script), ascending; same versions as [`SQLITE`].
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_initial.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_deliveries_outbox.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_audit.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_master_events.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_builds_by_builder.sql"),
    ),
];

/// The schema version this build creates and expects.
pub const SCHEMA_VERSION: i64 = 5;

impl Store {
    /// How the database's schema compares with this build's migrations.
    pub async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let Some(version) = self.schema_version().await? else {
            return Ok(SchemaState::Empty);
        };
        Ok(match version {
            v if v == SCHEMA_VERSION => SchemaState::Current,
            v if v < SCHEMA_VERSION => SchemaState::Old { version: v },
            v => SchemaState::Newer { version: v },
        })
    }

    /// Fails unless the schema is current; `start` calls this before anything else.
    pub async fn ensure_current(&self) -> Result<(), StoreError> {
        match self.schema_state().await? {
            SchemaState::Current => Ok(()),
            SchemaState::Empty => Err(StoreError::SchemaMismatch {
                found: 0,
                expected: SCHEMA_VERSION,
            }),
            SchemaState::Old { version } | SchemaState::Newer { version } => {
                Err(StoreError::SchemaMismatch {
                    found: version,
                    expected: SCHEMA_VERSION,
                })
            }
        }
    }

    /// Runs every pending migration, each in its own transaction, reporting each by name.
    pub async fn upgrade(&self, progress: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        let current = match self.schema_version().await? {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaMismatch {
                    found: v,
                    expected: SCHEMA_VERSION,
                })
            }
            Some(v) => v,
            None => {
                sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .execute(&self.writer)
                .await
                .ctx("create schema_version")?;
                0
            }
        };
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        for &(version, script) in migrations.iter().filter(|(v, _)| *v > current) {
            progress(&format!("applying schema migration {version}"));
            let failed = |source| StoreError::Migration { version, source };
            let mut tx = self.write_tx("migrate").await?;
            tx.execute(sqlx::raw_sql(script)).await.map_err(failed)?;
            sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(model::now())
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
        }
        progress(&format!("schema is at version {SCHEMA_VERSION}"));
        Ok(())
    }

    /// The highest applied migration, or `None` when there is no `schema_version` table.
    async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        let exists_sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_version'"
            }
        };
        let row = sqlx::query(exists_sql)
            .fetch_one(&self.pool)
            .await
            .ctx("read schema_version")?;
        if int(&row, 0)? == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .fetch_one(&self.pool)
            .await
            .ctx("read schema_version")?;
        Ok(Some(int(&row, 0)?))
    }
}
