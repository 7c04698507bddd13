//! The audit log of control actions (`audit_log`): who asked for what, on which object,
//! when, from where, and whether the access policy allowed it.

use crate::decode::{int, opt_text, text};
use crate::error::{Context, StoreError};
use crate::Store;

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// Unix time of the decision.
    pub at: i64,
    /// Who asked (`anonymous` when nobody was logged in).
    pub username: String,
    /// The seed-002 action (`forceBuild`, `stopBuild`…).
    pub action: String,
    /// The object acted on (`builds/12`, `builders/runtests`…).
    pub target: String,
    /// The client's address, if known.
    pub remote: Option<String>,
    /// Whether the policy allowed it.
    pub allowed: bool,
}

/// What [`Store::audit_add`] records; the time is taken when it is written.
#[derive(Debug, Clone, Copy)]
pub struct NewAuditEntry<'a> {
    /// Who asked.
    pub username: &'a str,
    /// The seed-002 action.
    pub action: &'a str,
    /// The object acted on.
    pub target: &'a str,
    /// The client's address, if known.
    pub remote: Option<&'a str>,
    /// Whether the policy allowed it.
    pub allowed: bool,
}

impl Store {
    /// Records one decision.
    pub async fn audit_add(&self, entry: &NewAuditEntry<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, username, action, target, remote, allowed) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(model::now())
        .bind(entry.username)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.remote)
        .bind(i64::from(entry.allowed))
        .execute(&self.writer)
        .await
        .ctx("audit_add")?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_recent(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, username, action, target, remote, allowed FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .ctx("audit_recent")?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: int(row, 0)?,
                    at: int(row, 1)?,
                    username: text(row, 2)?,
                    action: text(row, 3)?,
                    target: text(row, 4)?,
                    remote: opt_text(row, 5)?,
                    allowed: int(row, 6)? != 0,
                })
            })
            .collect()
    }
}
