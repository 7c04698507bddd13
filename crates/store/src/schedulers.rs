//! Schedulers and change sources, the master running each, and scheduler change classifications.

use model::{ChangeId, ChangeSourceId, MasterId, SchedulerId};

use crate::decode::{flag, int};
use crate::error::{Context, StoreError};
use crate::{expect_row, Store};

impl Store {
    /// The id of scheduler `name`, creating it if needed and attaching it to `master` unless
    /// another master already runs it (one master per scheduler, as in Buildbot).
    pub async fn scheduler_upsert(
        &self,
        name: &str,
        master: MasterId,
    ) -> Result<SchedulerId, StoreError> {
        const OP: &str = "scheduler_upsert";
        let mut tx = self.write_tx(OP).await?;
        let row = sqlx::query(
            "INSERT INTO schedulers (name, enabled) VALUES ($1, 1)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        let id = int(&row, 0)?;
        sqlx::query("INSERT INTO scheduler_masters (schedulerid, masterid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(master.0)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        tx.commit().await.ctx(OP)?;
        Ok(SchedulerId(id))
    }

    /// The master running a scheduler, if any.
    pub async fn scheduler_master(&self, id: SchedulerId) -> Result<Option<MasterId>, StoreError> {
        let row = sqlx::query("SELECT masterid FROM scheduler_masters WHERE schedulerid = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("scheduler_master")?;
        row.map(|r| int(&r, 0).map(MasterId)).transpose()
    }

    /// Enables or disables a scheduler (the `enable` control).
    pub async fn scheduler_set_enabled(
        &self,
        id: SchedulerId,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE schedulers SET enabled = $1 WHERE id = $2")
            .bind(enabled as i64)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("scheduler_set_enabled")?;
        expect_row(result, "schedulers", id.0)
    }

    /// Whether a scheduler is enabled.
    pub async fn scheduler_enabled(&self, id: SchedulerId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT enabled FROM schedulers WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("scheduler_enabled")?;
        match row {
            Some(row) => flag(&row, 0),
            None => Err(StoreError::NotFound {
                table: "schedulers",
                id: id.0,
            }),
        }
    }

    /// The id of change source `name`, creating it if needed and attaching it to `master`
    /// unless another master already runs it.
    pub async fn changesource_upsert(
        &self,
        name: &str,
        master: MasterId,
    ) -> Result<ChangeSourceId, StoreError> {
        const OP: &str = "changesource_upsert";
        let mut tx = self.write_tx(OP).await?;
        let row = sqlx::query(
            "INSERT INTO changesources (name) VALUES ($1)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        let id = int(&row, 0)?;
        sqlx::query(
            "INSERT INTO changesource_masters (changesourceid, masterid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(master.0)
        .execute(&mut *tx)
        .await
        .ctx(OP)?;
        tx.commit().await.ctx(OP)?;
        Ok(ChangeSourceId(id))
    }

    /// Records whether `change` is important to `scheduler`, so that tree-stable timers
    /// survive a restart. Classifying the same change again overwrites.
    pub async fn scheduler_changes_classify(
        &self,
        scheduler: SchedulerId,
        change: ChangeId,
        important: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scheduler_changes (schedulerid, changeid, important) VALUES ($1, $2, $3)
             ON CONFLICT (schedulerid, changeid) DO UPDATE SET important = excluded.important",
        )
        .bind(scheduler.0)
        .bind(change.0)
        .bind(important as i64)
        .execute(&self.writer)
        .await
        .ctx("scheduler_changes_classify")?;
        Ok(())
    }

    /// The classified changes of a scheduler, as (change, important), by change id.
    pub async fn scheduler_changes_get(
        &self,
        scheduler: SchedulerId,
    ) -> Result<Vec<(ChangeId, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT changeid, important FROM scheduler_changes WHERE schedulerid = $1 ORDER BY changeid",
        )
        .bind(scheduler.0)
        .fetch_all(&self.pool)
        .await
        .ctx("scheduler_changes_get")?;
        rows.iter()
            .map(|r| Ok((ChangeId(int(r, 0)?), flag(r, 1)?)))
            .collect()
    }

    /// Forgets a scheduler's classifications, all of them or those of changes below `less_than`.
    pub async fn scheduler_changes_flush(
        &self,
        scheduler: SchedulerId,
        less_than: Option<ChangeId>,
    ) -> Result<(), StoreError> {
        let query = match less_than {
            None => sqlx::query("DELETE FROM scheduler_changes WHERE schedulerid = $1")
                .bind(scheduler.0),
            Some(limit) => sqlx::query(
                "DELETE FROM scheduler_changes WHERE schedulerid = $1 AND changeid < $2",
            )
            .bind(scheduler.0)
            .bind(limit.0),
        };
        query
            .execute(&self.writer)
            .await
            .ctx("scheduler_changes_flush")?;
        Ok(())
    }
}
