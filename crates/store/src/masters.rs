//! Masters: one row per master process (`host:basedir`).

use model::{MasterId, Timestamp};

use crate::decode::{flag, int, text, Columns};
use crate::error::{Context, StoreError};
use crate::{expect_row, MasterRecord, Store};

impl Store {
    /// The id of master `name`, creating the row if needed.
    pub async fn master_upsert(&self, name: &str) -> Result<MasterId, StoreError> {
        let row = sqlx::query(
            "INSERT INTO masters (name, active, last_active) VALUES ($1, 0, $2)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(model::now())
        .fetch_one(&self.writer)
        .await
        .ctx("master_upsert")?;
        Ok(MasterId(int(&row, 0)?))
    }

    /// Marks a master active (and alive now) or inactive. An inactive master also loses
    /// its builder, scheduler, change source and worker attachments, as in Buildbot.
    pub async fn master_set_active(&self, id: MasterId, active: bool) -> Result<(), StoreError> {
        let mut tx = self.write_tx("master_set_active").await?;
        let result = sqlx::query("UPDATE masters SET active = $1, last_active = $2 WHERE id = $3")
            .bind(active as i64)
            .bind(model::now())
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .ctx("master_set_active")?;
        expect_row(result, "masters", id.0)?;
        if !active {
            for sql in [
                "DELETE FROM builder_masters WHERE masterid = $1",
                "DELETE FROM scheduler_masters WHERE masterid = $1",
                "DELETE FROM changesource_masters WHERE masterid = $1",
                "DELETE FROM connected_workers WHERE masterid = $1",
            ] {
                sqlx::query(sql)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .ctx("master_set_active")?;
            }
        }
        tx.commit().await.ctx("master_set_active")?;
        self.builders.changed();
        Ok(())
    }

    /// Records that a master is still alive.
    pub async fn master_heartbeat(&self, id: MasterId, now: Timestamp) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE masters SET last_active = $1 WHERE id = $2")
            .bind(now)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("master_heartbeat")?;
        expect_row(result, "masters", id.0)
    }

    /// One master.
    pub async fn master_get(&self, id: MasterId) -> Result<Option<MasterRecord>, StoreError> {
        let row = sqlx::query("SELECT id, name, active, last_active FROM masters WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("master_get")?;
        row.map(|r| master_record(&r)).transpose()
    }
}

/// Decodes `id, name, active, last_active`.
pub(crate) fn master_record<R: Columns + ?Sized>(row: &R) -> Result<MasterRecord, StoreError> {
    Ok(MasterRecord {
        id: MasterId(int(row, 0)?),
        name: text(row, 1)?,
        active: flag(row, 2)?,
        last_active: int(row, 3)?,
    })
}
