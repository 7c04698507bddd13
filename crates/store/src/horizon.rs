//! Expiry of old history: `buildHorizon` (builds kept per builder) and `logHorizon` (builds
//! per builder whose log contents are kept).

use model::BuilderId;

use crate::error::{Context, StoreError};
use crate::Store;

impl Store {
    /// Deletes finished builds of `builder` older than its newest `keep` (with their steps,
    /// logs and properties). Returns how many builds went.
    pub async fn builds_expire(&self, builder: BuilderId, keep: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM builds WHERE builderid = $1 AND complete_at IS NOT NULL \
             AND number <= (SELECT MAX(number) FROM builds WHERE builderid = $1) - $2",
        )
        .bind(builder.0)
        .bind(keep.max(0))
        .execute(&self.writer)
        .await
        .ctx("builds_expire")?;
        Ok(result.rows_affected())
    }

    /// Deletes the log contents of finished builds of `builder` older than its newest `keep`;
    /// the log rows stay, so pages still list them. Returns how many chunks went.
    pub async fn logs_expire(&self, builder: BuilderId, keep: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM logchunks WHERE logid IN (SELECT l.id FROM logs l \
             JOIN steps s ON s.id = l.stepid JOIN builds b ON b.id = s.buildid \
             WHERE b.builderid = $1 AND b.complete_at IS NOT NULL \
             AND b.number <= (SELECT MAX(number) FROM builds WHERE builderid = $1) - $2)",
        )
        .bind(builder.0)
        .bind(keep.max(0))
        .execute(&self.writer)
        .await
        .ctx("logs_expire")?;
        Ok(result.rows_affected())
    }
}
