//! Generic persisted state of named objects (poller revisions, nightly last run, secrets).

use crate::decode::{int, json, text};
use crate::error::{Context, StoreError};
use crate::Store;

impl Store {
    /// The value stored under `key` for object (`object_name`, `class_name`).
    pub async fn object_state_get(
        &self,
        object_name: &str,
        class_name: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query(
            "SELECT s.value_json FROM object_state s JOIN objects o ON o.id = s.objectid
             WHERE o.name = $1 AND o.class_name = $2 AND s.name = $3",
        )
        .bind(object_name)
        .bind(class_name)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .ctx("object_state_get")?;
        match row {
            None => Ok(None),
            Some(row) => json(&text(&row, 0)?, "object_state", "value_json").map(Some),
        }
    }

    /// Stores `value` under `key` for object (`object_name`, `class_name`), creating the object.
    pub async fn object_state_set(
        &self,
        object_name: &str,
        class_name: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        const OP: &str = "object_state_set";
        let mut tx = self.write_tx(OP).await?;
        let row = sqlx::query(
            "INSERT INTO objects (name, class_name) VALUES ($1, $2)
             ON CONFLICT (name, class_name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(object_name)
        .bind(class_name)
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        sqlx::query(
            "INSERT INTO object_state (objectid, name, value_json) VALUES ($1, $2, $3)
             ON CONFLICT (objectid, name) DO UPDATE SET value_json = excluded.value_json",
        )
        .bind(int(&row, 0)?)
        .bind(key)
        .bind(value.to_string())
        .execute(&mut *tx)
        .await
        .ctx(OP)?;
        tx.commit().await.ctx(OP)
    }
}
