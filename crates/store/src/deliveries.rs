//! Webhook delivery ids (GitHub's `X-GitHub-Delivery`…), so that a replayed delivery is
//! accepted once per dialect.

use model::Timestamp;

use crate::decode::int;
use crate::error::{Context, StoreError};
use crate::Store;

impl Store {
    /// True when delivery `delivery_id` of `dialect` was already recorded.
    pub async fn webhook_delivery_seen(
        &self,
        dialect: &str,
        delivery_id: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE dialect = $1 AND delivery_id = $2",
        )
        .bind(dialect)
        .bind(delivery_id)
        .fetch_one(&self.pool)
        .await
        .ctx("webhook_delivery_seen")?;
        Ok(int(&row, 0)? > 0)
    }

    /// Records delivery `delivery_id` of `dialect`; true the first time, false when it was
    /// already recorded. `ON CONFLICT DO NOTHING` keeps two racing writers from failing.
    pub async fn webhook_delivery_record(
        &self,
        dialect: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO webhook_deliveries (dialect, delivery_id, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (dialect, delivery_id) DO NOTHING",
        )
        .bind(dialect)
        .bind(delivery_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .ctx("webhook_delivery_record")?;
        Ok(result.rows_affected() == 1)
    }

    /// Forgets deliveries received before `before`; returns how many rows went.
    pub async fn webhook_deliveries_expire(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .ctx("webhook_deliveries_expire")?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn a_delivery_is_recorded_once_per_dialect() {
        let store = Store::connect("sqlite::memory:").await.expect("connect");
        store.upgrade(&mut |_| {}).await.expect("upgrade");
        assert!(!store.webhook_delivery_seen("github", "d1").await.unwrap());
        assert!(store
            .webhook_delivery_record("github", "d1", 10)
            .await
            .unwrap());
        assert!(store.webhook_delivery_seen("github", "d1").await.unwrap());
        assert!(!store
            .webhook_delivery_record("github", "d1", 11)
            .await
            .unwrap());
        assert!(store
            .webhook_delivery_record("gitea", "d1", 12)
            .await
            .unwrap());
        assert_eq!(store.webhook_deliveries_expire(12).await.unwrap(), 1);
        assert!(!store.webhook_delivery_seen("github", "d1").await.unwrap());
    }
}
