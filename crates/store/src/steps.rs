//! Steps of a build: numbering, unique names, state and URLs.

use model::{BuildId, Results, StepId, Timestamp};
use sqlx::AssertSqlSafe;

use crate::decode::{flag, int, json, opt_int, results, text, Columns};
use crate::error::{Context, StoreError};
use crate::{expect_row, identifier, is_unique_violation, lock_row, StepRecord, Store};

/// Columns decoded by [`step_record`]; needs `steps s`.
pub(crate) const STEP_COLUMNS: &str =
    "s.id, s.number, s.name, s.buildid, s.started_at, s.locks_acquired_at, \
     s.complete_at, s.state_string, s.results, s.urls_json, s.hidden";

impl Store {
    /// Adds a step to a build. Its number follows the build's last step (from 0); its name is
    /// `name` cut to 50 characters, or `name_2`, `name_3`… when already used in the build.
    /// Returns (id, number, unique name).
    pub async fn step_add(
        &self,
        build: BuildId,
        name: &str,
        state_string: &str,
    ) -> Result<(StepId, i64, String), StoreError> {
        const OP: &str = "step_add";
        for _attempt in 0..5 {
            let mut tx = self.write_tx(OP).await?;
            lock_row(
                &mut tx,
                self.backend,
                "SELECT id FROM builds WHERE id = $1 FOR UPDATE",
                build.0,
                OP,
            )
            .await?;
            let rows = sqlx::query("SELECT number, name FROM steps WHERE buildid = $1")
                .bind(build.0)
                .fetch_all(&mut *tx)
                .await
                .ctx(OP)?;
            let mut number = 0;
            let mut taken = Vec::with_capacity(rows.len());
            for row in &rows {
                number = number.max(int(row, 0)? + 1);
                taken.push(text(row, 1)?);
            }
            let unique = identifier::first_free(name, identifier::MAX_LEN, &taken);
            let inserted = sqlx::query(
                "INSERT INTO steps (number, name, buildid, state_string, urls_json, hidden)
                 VALUES ($1, $2, $3, $4, '[]', 0) RETURNING id",
            )
            .bind(number)
            .bind(unique.as_str())
            .bind(build.0)
            .bind(state_string)
            .fetch_one(&mut *tx)
            .await;
            match inserted {
                Ok(row) => {
                    tx.commit().await.ctx(OP)?;
                    return Ok((StepId(int(&row, 0)?), number, unique));
                }
                Err(err) if is_unique_violation(&err) => {
                    tx.rollback().await.ctx(OP)?;
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

    /// Marks a step started.
    pub async fn step_start(&self, id: StepId, now: Timestamp) -> Result<(), StoreError> {
        self.step_update(
            "step_start",
            "UPDATE steps SET started_at = $1 WHERE id = $2",
            now,
            id,
        )
        .await
    }

    /// Records when a step acquired its locks.
    pub async fn step_locks_acquired(&self, id: StepId, now: Timestamp) -> Result<(), StoreError> {
        self.step_update(
            "step_locks_acquired",
            "UPDATE steps SET locks_acquired_at = $1 WHERE id = $2",
            now,
            id,
        )
        .await
    }

    /// Sets the short status text of a step.
    pub async fn step_set_state_string(
        &self,
        id: StepId,
        state_string: &str,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE steps SET state_string = $1 WHERE id = $2")
            .bind(state_string)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("step_set_state_string")?;
        expect_row(result, "steps", id.0)
    }

    /// Replaces the links of a step, as (name, url).
    pub async fn step_set_urls(
        &self,
        id: StepId,
        urls: &[(String, String)],
    ) -> Result<(), StoreError> {
        let list: Vec<serde_json::Value> = urls
            .iter()
            .map(|(name, url)| serde_json::json!({ "name": name, "url": url }))
            .collect();
        let result = sqlx::query("UPDATE steps SET urls_json = $1 WHERE id = $2")
            .bind(serde_json::Value::Array(list).to_string())
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("step_set_urls")?;
        expect_row(result, "steps", id.0)
    }

    /// Finishes a step.
    pub async fn step_finish(
        &self,
        id: StepId,
        results: Results,
        hidden: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE steps SET results = $1, hidden = $2, complete_at = $3 WHERE id = $4",
        )
        .bind(results.code())
        .bind(hidden as i64)
        .bind(now)
        .bind(id.0)
        .execute(&self.writer)
        .await
        .ctx("step_finish")?;
        expect_row(result, "steps", id.0)
    }

    /// One step.
    pub async fn step_get(&self, id: StepId) -> Result<Option<StepRecord>, StoreError> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps s WHERE s.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("step_get")?;
        row.as_ref().map(step_record).transpose()
    }

    /// The steps of a build, by number.
    pub async fn steps_for_build(&self, build: BuildId) -> Result<Vec<StepRecord>, StoreError> {
        let sql =
            format!("SELECT {STEP_COLUMNS} FROM steps s WHERE s.buildid = $1 ORDER BY s.number");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(build.0)
            .fetch_all(&self.pool)
            .await
            .ctx("steps_for_build")?;
        rows.iter().map(step_record).collect()
    }

    /// Runs `UPDATE … SET x = $1 WHERE id = $2` with a timestamp.
    async fn step_update(
        &self,
        op: &'static str,
        sql: &'static str,
        now: Timestamp,
        id: StepId,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(sql)
            .bind(now)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx(op)?;
        expect_row(result, "steps", id.0)
    }
}

/// Decodes [`STEP_COLUMNS`].
pub(crate) fn step_record<R: Columns + ?Sized>(row: &R) -> Result<StepRecord, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        table: "steps",
        column: "urls_json",
        reason: reason.to_string(),
    };
    let urls = match json(&text(row, 9)?, "steps", "urls_json")? {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| {
                let name = item.get("name").and_then(|v| v.as_str());
                let url = item.get("url").and_then(|v| v.as_str());
                match (name, url) {
                    (Some(name), Some(url)) => Ok((name.to_string(), url.to_string())),
                    _ => Err(corrupt("entry without name and url")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(corrupt("not a list")),
    };
    Ok(StepRecord {
        id: StepId(int(row, 0)?),
        number: int(row, 1)?,
        name: text(row, 2)?,
        buildid: BuildId(int(row, 3)?),
        started_at: opt_int(row, 4)?,
        locks_acquired_at: opt_int(row, 5)?,
        complete_at: opt_int(row, 6)?,
        state_string: text(row, 7)?,
        results: results(row, 8, "steps")?,
        urls,
        hidden: flag(row, 10)?,
    })
}
