//! Builds: numbering, state, results and properties.

use std::collections::BTreeMap;

use model::{
    BuildId, BuildRequestId, BuilderId, MasterId, Properties, Results, Timestamp, WorkerId,
};
use sqlx::AssertSqlSafe;

use crate::decode::{int, json, opt_int, results, text, Columns};
use crate::error::{Context, StoreError};
use crate::{expect_row, is_unique_violation, lock_row, placeholders, BuildRecord, Store};

/// Columns decoded by [`build_record`]; needs `builds b`.
pub(crate) const BUILD_COLUMNS: &str =
    "b.id, b.number, b.builderid, b.buildrequestid, b.workerid, b.masterid, \
     b.started_at, b.complete_at, b.locks_duration_s, b.state_string, b.results";

/// How often `build_add` retries when a concurrent master took the same number.
const NUMBER_ATTEMPTS: usize = 5;

impl Store {
    /// Starts a build of `request` on `builder`; its number is the builder's previous
    /// highest plus one. On PostgreSQL the builder row is locked while numbering; a unique
    /// violation (which that lock should prevent) still makes us retry.
    pub async fn build_add(
        &self,
        builder: BuilderId,
        request: BuildRequestId,
        worker: Option<WorkerId>,
        master: MasterId,
        state_string: &str,
        now: Timestamp,
    ) -> Result<(BuildId, i64), StoreError> {
        const OP: &str = "build_add";
        for _attempt in 0..NUMBER_ATTEMPTS {
            let mut tx = self.write_tx(OP).await?;
            lock_row(
                &mut tx,
                self.backend,
                "SELECT id FROM builders WHERE id = $1 FOR UPDATE",
                builder.0,
                OP,
            )
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO builds (number, builderid, buildrequestid, workerid, masterid, started_at,
                     locks_duration_s, state_string)
                 SELECT COALESCE(MAX(number), 0) + 1, $1, $2, $3, $4, $5, 0, $6 FROM builds WHERE builderid = $1
                 RETURNING id, number",
            )
            .bind(builder.0)
            .bind(request.0)
            .bind(worker.map(|w| w.0))
            .bind(master.0)
            .bind(now)
            .bind(state_string)
            .fetch_one(&mut *tx)
            .await;
            match inserted {
                Ok(row) => {
                    tx.commit().await.ctx(OP)?;
                    return Ok((BuildId(int(&row, 0)?), int(&row, 1)?));
                }
                Err(err) if is_unique_violation(&err) => {
                    tx.rollback().await.ctx(OP)?;
                    continue;
                }
                Err(err) => {
                    return Err(StoreError::Database {
                        operation: OP,
                        source: err,
                    })
                }
            }
        }
        Err(StoreError::Conflict { operation: OP })
    }

    /// Sets the short status text of a build.
    pub async fn build_set_state_string(
        &self,
        id: BuildId,
        state_string: &str,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE builds SET state_string = $1 WHERE id = $2")
            .bind(state_string)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("build_set_state_string")?;
        expect_row(result, "builds", id.0)
    }

    /// Adds to the seconds a build spent waiting for locks.
    pub async fn build_add_locks_duration(
        &self,
        id: BuildId,
        seconds: i64,
    ) -> Result<(), StoreError> {
        let result =
            sqlx::query("UPDATE builds SET locks_duration_s = locks_duration_s + $1 WHERE id = $2")
                .bind(seconds)
                .bind(id.0)
                .execute(&self.writer)
                .await
                .ctx("build_add_locks_duration")?;
        expect_row(result, "builds", id.0)
    }

    /// Finishes a build with `results`.
    pub async fn build_finish(
        &self,
        id: BuildId,
        results: Results,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE builds SET results = $1, complete_at = $2 WHERE id = $3")
            .bind(results.code())
            .bind(now)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("build_finish")?;
        expect_row(result, "builds", id.0)
    }

    /// Sets the given properties of a build (others are left alone). One transaction.
    pub async fn build_properties_set(
        &self,
        id: BuildId,
        props: &Properties,
    ) -> Result<(), StoreError> {
        const OP: &str = "build_properties_set";
        if props.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx(OP).await?;
        for (name, value, source) in props.iter() {
            sqlx::query(
                "INSERT INTO build_properties (buildid, name, value, source) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (buildid, name) DO UPDATE SET value = excluded.value, source = excluded.source",
            )
            .bind(id.0)
            .bind(name)
            .bind(value.to_string())
            .bind(source)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)
    }

    /// All properties of a build.
    pub async fn build_properties(&self, id: BuildId) -> Result<Properties, StoreError> {
        Ok(self
            .builds_properties(&[id])
            .await?
            .remove(&id)
            .unwrap_or_default())
    }

    /// The properties of many builds in one query (for `property=` on build lists).
    pub async fn builds_properties(
        &self,
        ids: &[BuildId],
    ) -> Result<BTreeMap<BuildId, Properties>, StoreError> {
        let mut map: BTreeMap<BuildId, Properties> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(map);
        }
        let sql = format!(
            "SELECT buildid, name, value, source FROM build_properties WHERE buildid IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        for row in query.fetch_all(&self.pool).await.ctx("builds_properties")? {
            let value = json(&text(&row, 2)?, "build_properties", "value")?;
            map.entry(BuildId(int(&row, 0)?)).or_default().set(
                text(&row, 1)?,
                value,
                text(&row, 3)?,
            );
        }
        Ok(map)
    }

    /// One build.
    pub async fn build_get(&self, id: BuildId) -> Result<Option<BuildRecord>, StoreError> {
        let sql = format!("SELECT {BUILD_COLUMNS} FROM builds b WHERE b.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("build_get")?;
        row.as_ref().map(build_record).transpose()
    }

    /// Build `number` of `builder`.
    pub async fn build_by_number(
        &self,
        builder: BuilderId,
        number: i64,
    ) -> Result<Option<BuildRecord>, StoreError> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM builds b WHERE b.builderid = $1 AND b.number = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(builder.0)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
            .ctx("build_by_number")?;
        row.as_ref().map(build_record).transpose()
    }

    /// Builds of `master` that never finished (crash recovery), by id.
    pub async fn builds_unfinished_for_master(
        &self,
        master: MasterId,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let sql =
            format!("SELECT {BUILD_COLUMNS} FROM builds b WHERE b.masterid = $1 AND b.complete_at IS NULL ORDER BY b.id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(master.0)
            .fetch_all(&self.pool)
            .await
            .ctx("builds_unfinished_for_master")?;
        rows.iter().map(build_record).collect()
    }

    /// The newest finished build of `builder` numbered below `before_number`.
    pub async fn previous_finished_build(
        &self,
        builder: BuilderId,
        before_number: i64,
    ) -> Result<Option<BuildRecord>, StoreError> {
        // The (builderid, number) unique index serves this backwards scan.
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM builds b
             WHERE b.builderid = $1 AND b.number < $2 AND b.complete_at IS NOT NULL
             ORDER BY b.number DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(builder.0)
            .bind(before_number)
            .fetch_optional(&self.pool)
            .await
            .ctx("previous_finished_build")?;
        row.as_ref().map(build_record).transpose()
    }
}

/// Decodes [`BUILD_COLUMNS`].
pub(crate) fn build_record<R: Columns + ?Sized>(row: &R) -> Result<BuildRecord, StoreError> {
    Ok(BuildRecord {
        id: BuildId(int(row, 0)?),
        number: int(row, 1)?,
        builderid: BuilderId(int(row, 2)?),
        buildrequestid: BuildRequestId(int(row, 3)?),
        workerid: opt_int(row, 4)?.map(WorkerId),
        masterid: MasterId(int(row, 5)?),
        started_at: int(row, 6)?,
        complete_at: opt_int(row, 7)?,
        locks_duration_s: int(row, 8)?,
        state_string: text(row, 9)?,
        results: results(row, 10, "builds")?,
    })
}
