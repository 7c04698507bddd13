//! Webhook delivery ids (GitHub's `X-GitHub-Delivery`…), so that a replayed delivery is
//! accepted once per dialect.

use model::Timestamp;

use crate::error::{Context, StoreError};
use crate::Store;

impl Store {
    /// Forgets deliveries received before `before`; returns how many rows went.
    pub async fn webhook_deliveries_expire(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .ctx("webhook_deliveries_expire")?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::{ChangesAdded, Delivery, NewChange, Store};

    fn change(revision: &str) -> NewChange {
        NewChange {
            author: "alice".into(),
            revision: Some(revision.into()),
            files: vec!["a.c".into(), "b.c".into()],
            ..NewChange::default()
        }
    }

    async fn add(store: &Store, dialect: &str, id: &str, at: i64) -> bool {
        let delivery = Delivery {
            dialect: dialect.into(),
            id: id.into(),
            received_at: at,
        };
        let added = store
            .changes_add(vec![change(id)], Some(delivery))
            .await
            .expect("changes_add");
        matches!(added, ChangesAdded::Recorded(_))
    }

    #[tokio::test]
    async fn a_delivery_is_recorded_once_per_dialect_with_its_changes() {
        let store = Store::connect("sqlite::memory:").await.expect("connect");
        store.upgrade(&mut |_| {}).await.expect("upgrade");
        assert!(add(&store, "github", "d1", 10).await);
        assert!(
            !add(&store, "github", "d1", 11).await,
            "a replay is refused"
        );
        assert!(add(&store, "gitea", "d1", 12).await, "dialects are apart");
        assert_eq!(store.change_last_id().await.unwrap().map(|c| c.0), Some(2));
        assert_eq!(store.webhook_deliveries_expire(12).await.unwrap(), 1);
        assert!(
            add(&store, "github", "d1", 13).await,
            "expired ids are forgotten"
        );
    }
}
