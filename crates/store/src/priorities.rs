//! Build request priority changes (the `set_priority` control of spec §8).

use model::BuildRequestId;

use crate::error::{Context, StoreError};
use crate::Store;

impl Store {
    /// Sets the priority of an incomplete build request; false if there is no such request
    /// or it already completed.
    pub async fn buildrequest_set_priority(
        &self,
        id: BuildRequestId,
        priority: i64,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE buildrequests SET priority = $1 WHERE id = $2 AND complete = 0")
                .bind(priority)
                .bind(id.0)
                .execute(&self.writer)
                .await
                .ctx("buildrequest_set_priority")?;
        Ok(result.rows_affected() > 0)
    }
}
