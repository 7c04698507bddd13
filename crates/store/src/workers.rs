//! Workers: configuration per master and builder, connections, and pause state.

use model::{BuilderId, MasterId, WorkerId};

use crate::decode::int;
use crate::error::{Context, StoreError};
use crate::list::{FilterOp, FilterSpec, ListQuery, SqlValue};
use crate::{expect_row, Store, WorkerRecord};

impl Store {
    /// The id of worker `name`, creating the row if needed.
    pub async fn worker_upsert(&self, name: &str) -> Result<WorkerId, StoreError> {
        let row = sqlx::query(
            "INSERT INTO workers (name, info) VALUES ($1, '{}')
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .fetch_one(&self.writer)
        .await
        .ctx("worker_upsert")?;
        Ok(WorkerId(int(&row, 0)?))
    }

    /// Makes `pairs` exactly the (worker, builder) configuration of `master`. A pair whose
    /// builder `master` does not run (see [`Store::builder_set_masters`]) is skipped.
    pub async fn worker_set_configured(
        &self,
        master: MasterId,
        pairs: &[(WorkerId, BuilderId)],
    ) -> Result<(), StoreError> {
        const OP: &str = "worker_set_configured";
        let mut tx = self.write_tx(OP).await?;
        sqlx::query(
            "DELETE FROM configured_workers WHERE buildermasterid IN (SELECT id FROM builder_masters WHERE masterid = $1)",
        )
        .bind(master.0)
        .execute(&mut *tx)
        .await
        .ctx(OP)?;
        for (worker, builder) in pairs {
            sqlx::query(
                "INSERT INTO configured_workers (buildermasterid, workerid)
                 SELECT id, $1 FROM builder_masters WHERE builderid = $2 AND masterid = $3
                 ON CONFLICT DO NOTHING",
            )
            .bind(worker.0)
            .bind(builder.0)
            .bind(master.0)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)
    }

    /// Records that a worker connected to `master`, with the info it sent.
    pub async fn worker_connected(
        &self,
        id: WorkerId,
        master: MasterId,
        info: &serde_json::Value,
    ) -> Result<(), StoreError> {
        const OP: &str = "worker_connected";
        let mut tx = self.write_tx(OP).await?;
        let result = sqlx::query("UPDATE workers SET info = $1 WHERE id = $2")
            .bind(info.to_string())
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        expect_row(result, "workers", id.0)?;
        sqlx::query("INSERT INTO connected_workers (masterid, workerid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(master.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        tx.commit().await.ctx(OP)
    }

    /// Records that a worker left `master`.
    pub async fn worker_disconnected(
        &self,
        id: WorkerId,
        master: MasterId,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM connected_workers WHERE masterid = $1 AND workerid = $2")
            .bind(master.0)
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("worker_disconnected")?;
        Ok(())
    }

    /// Sets the pause and graceful-shutdown state of a worker.
    pub async fn worker_set_state(
        &self,
        id: WorkerId,
        paused: bool,
        pause_reason: Option<&str>,
        graceful: bool,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE workers SET paused = $1, pause_reason = $2, graceful = $3 WHERE id = $4",
        )
        .bind(paused as i64)
        .bind(pause_reason)
        .bind(graceful as i64)
        .bind(id.0)
        .execute(&self.writer)
        .await
        .ctx("worker_set_state")?;
        expect_row(result, "workers", id.0)
    }

    /// One worker with its connections and configuration.
    pub async fn worker_get(&self, id: WorkerId) -> Result<Option<WorkerRecord>, StoreError> {
        let query = ListQuery::filtered(vec![FilterSpec::new(
            "workerid",
            FilterOp::Eq,
            vec![SqlValue::Int(id.0)],
        )]);
        Ok(self.workers_list(&query).await?.0.into_iter().next())
    }
}
