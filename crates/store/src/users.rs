//! Users and their attributes (`users`, `users_info`); managed by the CLI.

use std::collections::BTreeMap;

use model::UserId;
use sqlx::any::AnyRow;
use sqlx::AssertSqlSafe;

use crate::decode::{int, opt_text, text};
use crate::error::{Context, StoreError};
use crate::{expect_row, placeholders, Store, UserRecord};

/// Columns decoded by [`user_record`].
const USER_COLUMNS: &str = "uid, identifier, bb_username, bb_password";

/// What [`Store::user_update`] changes; `None` fields are left alone.
#[derive(Debug, Clone, PartialEq)]
pub struct UserUpdate<'a> {
    /// New identifier.
    pub identifier: Option<&'a str>,
    /// New web login name.
    pub bb_username: Option<&'a str>,
    /// New password hash.
    pub bb_password: Option<&'a str>,
    /// Attributes to set, as (type, data); others are kept.
    pub attributes: &'a [(String, String)],
}

impl Store {
    /// Adds a user with attributes. One transaction.
    pub async fn user_add(
        &self,
        identifier: &str,
        bb_username: Option<&str>,
        bb_password: Option<&str>,
        attributes: &[(String, String)],
    ) -> Result<UserId, StoreError> {
        const OP: &str = "user_add";
        let mut tx = self.write_tx(OP).await?;
        let row = sqlx::query("INSERT INTO users (identifier, bb_username, bb_password) VALUES ($1, $2, $3) RETURNING uid")
            .bind(identifier)
            .bind(bb_username)
            .bind(bb_password)
            .fetch_one(&mut *tx)
            .await
            .ctx(OP)?;
        let uid = int(&row, 0)?;
        for (attr_type, attr_data) in attributes {
            sqlx::query("INSERT INTO users_info (uid, attr_type, attr_data) VALUES ($1, $2, $3)")
                .bind(uid)
                .bind(attr_type.as_str())
                .bind(attr_data.as_str())
                .execute(&mut *tx)
                .await
                .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)?;
        Ok(UserId(uid))
    }

    /// The user with `identifier`.
    pub async fn user_get_by_identifier(
        &self,
        identifier: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE identifier = $1");
        self.users_where(AssertSqlSafe(sql), Some(identifier))
            .await
            .map(|mut v| v.pop())
    }

    /// The user with web login `bb_username`.
    pub async fn user_get_by_username(
        &self,
        bb_username: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE bb_username = $1");
        self.users_where(AssertSqlSafe(sql), Some(bb_username))
            .await
            .map(|mut v| v.pop())
    }

    /// Every user, by uid.
    pub async fn users_list(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY uid");
        self.users_where(AssertSqlSafe(sql), None).await
    }

    /// Changes a user. One transaction.
    pub async fn user_update(
        &self,
        uid: UserId,
        update: &UserUpdate<'_>,
    ) -> Result<(), StoreError> {
        const OP: &str = "user_update";
        let mut tx = self.write_tx(OP).await?;
        let result = sqlx::query(
            "UPDATE users SET identifier = COALESCE($1, identifier), bb_username = COALESCE($2, bb_username),
                 bb_password = COALESCE($3, bb_password) WHERE uid = $4",
        )
        .bind(update.identifier)
        .bind(update.bb_username)
        .bind(update.bb_password)
        .bind(uid.0)
        .execute(&mut *tx)
        .await
        .ctx(OP)?;
        expect_row(result, "users", uid.0)?;
        for (attr_type, attr_data) in update.attributes {
            sqlx::query(
                "INSERT INTO users_info (uid, attr_type, attr_data) VALUES ($1, $2, $3)
                 ON CONFLICT (uid, attr_type) DO UPDATE SET attr_data = excluded.attr_data",
            )
            .bind(uid.0)
            .bind(attr_type.as_str())
            .bind(attr_data.as_str())
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)
    }

    /// Removes a user and its attributes.
    pub async fn user_remove(&self, uid: UserId) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM users WHERE uid = $1")
            .bind(uid.0)
            .execute(&self.writer)
            .await
            .ctx("user_remove")?;
        expect_row(result, "users", uid.0)
    }

    /// Users matching `sql` (with at most one text parameter), with their attributes.
    async fn users_where(
        &self,
        sql: AssertSqlSafe<String>,
        param: Option<&str>,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(param) = param {
            query = query.bind(param.to_string());
        }
        let rows = query.fetch_all(&self.pool).await.ctx("users")?;
        let mut users = rows
            .iter()
            .map(user_record)
            .collect::<Result<Vec<_>, _>>()?;
        if users.is_empty() {
            return Ok(users);
        }
        let sql = format!(
            "SELECT uid, attr_type, attr_data FROM users_info WHERE uid IN ({}) ORDER BY attr_type",
            placeholders(1, users.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for user in &users {
            query = query.bind(user.uid.0);
        }
        let mut attrs: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
        for row in query.fetch_all(&self.pool).await.ctx("users_info")? {
            attrs
                .entry(int(&row, 0)?)
                .or_default()
                .push((text(&row, 1)?, text(&row, 2)?));
        }
        for user in &mut users {
            user.attributes = attrs.remove(&user.uid.0).unwrap_or_default();
        }
        Ok(users)
    }
}

/// Decodes [`USER_COLUMNS`]; attributes are left empty.
fn user_record(row: &AnyRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        uid: UserId(int(row, 0)?),
        identifier: text(row, 1)?,
        bb_username: opt_text(row, 2)?,
        bb_password: opt_text(row, 3)?,
        attributes: Vec::new(),
    })
}
