//! A change in one PostgreSQL statement: the delivery id, the source stamp, the change row,
//! its files and its properties, through data-modifying `WITH` clauses. On PostgreSQL every
//! statement is a round trip to the server, and five of them per change were most of a
//! webhook delivery's time. SQLite has no data-modifying `WITH`; it takes the
//! statement-by-statement path in `changes.rs`.

use model::{SourceStampId, Timestamp};
use sqlx::{Any, AssertSqlSafe, Transaction};

use crate::buildsets::sourcestamp_hash;
use crate::changes::{change_stamp, parent_query};
use crate::decode::{int, opt_int, property_pair};
use crate::error::{Context, StoreError};
use crate::{Delivery, NewChange};

/// What the statement wrote.
pub(crate) struct Written {
    pub(crate) changeid: i64,
    pub(crate) parent: Option<i64>,
    pub(crate) ssid: SourceStampId,
    pub(crate) ss_created_at: Timestamp,
}

/// Inserts `c`, and `delivery` when given. `None` when the delivery was recorded before: then
/// nothing else is written (the source stamp, the change and its children all read from the
/// delivery's insert, which returns no row on conflict).
pub(crate) async fn insert_change(
    tx: &mut Transaction<'static, Any>,
    c: &NewChange,
    delivery: Option<&Delivery>,
) -> Result<Option<Written>, StoreError> {
    let stamp = change_stamp(c);
    let properties: Vec<(String, String)> = c
        .properties
        .iter()
        .map(|(name, value, source)| (name.to_string(), property_pair(value, source)))
        .collect();
    let sql = statement(c, delivery.is_some(), properties.len());
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(sourcestamp_hash(&stamp, None))
        .bind(c.branch.as_deref())
        .bind(c.revision.as_deref())
        .bind(c.repository.as_str())
        .bind(c.codebase.as_str())
        .bind(c.project.as_str())
        .bind(c.created_at)
        .bind(c.author.as_str())
        .bind(c.committer.as_deref())
        .bind(c.comments.as_str())
        .bind(c.revlink.as_deref())
        .bind(c.when_timestamp)
        .bind(c.category.as_deref());
    if let Some(d) = delivery {
        query = query
            .bind(d.dialect.as_str())
            .bind(d.id.as_str())
            .bind(d.received_at);
    }
    for file in &c.files {
        query = query.bind(file.as_str());
    }
    for (name, value) in &properties {
        query = query.bind(name.as_str()).bind(value.as_str());
    }
    let Some(row) = query.fetch_optional(&mut **tx).await.ctx("changes_add")? else {
        return Ok(None);
    };
    Ok(Some(Written {
        changeid: int(&row, 0)?,
        parent: opt_int(&row, 1)?,
        ssid: SourceStampId(int(&row, 2)?),
        ss_created_at: int(&row, 3)?,
    }))
}

/// The statement for `c`. Parameters: $1–$7 the source stamp (hash, branch, revision,
/// repository, codebase, project, created_at), $8–$13 the change (author, committer,
/// comments, revlink, when, category), then the delivery's three when `with_delivery`, then
/// one per file, then two per property.
fn statement(c: &NewChange, with_delivery: bool, properties: usize) -> String {
    let mut next = 14;
    let mut clauses = Vec::new();
    let mut stamp_source = "";
    if with_delivery {
        clauses.push(format!(
            "d AS (INSERT INTO webhook_deliveries (dialect, delivery_id, received_at)
                   VALUES (${}, ${}, ${}) ON CONFLICT (dialect, delivery_id) DO NOTHING RETURNING id)",
            next,
            next + 1,
            next + 2
        ));
        next += 3;
        stamp_source = " FROM d";
    }
    clauses.push(format!(
        "s AS (INSERT INTO sourcestamps (ss_hash, branch, revision, patchid, repository, codebase, project, created_at)
               SELECT $1, $2, $3, NULL, $4, $5, $6, $7{stamp_source}
               ON CONFLICT (ss_hash) DO UPDATE SET ss_hash = excluded.ss_hash RETURNING id, created_at)"
    ));
    let parent = parent_query(c, "$4", "$2", "$6", "$5");
    clauses.push(format!(
        "c AS (INSERT INTO changes (author, committer, comments, branch, revision, revlink, when_timestamp,
                   category, repository, codebase, project, sourcestampid, parent_changeids)
               SELECT $8, $9, $10, $2, $3, $11, $12, $13, $4, $5, $6, s.id, {parent}
               FROM s RETURNING changeid, parent_changeids)"
    ));
    if !c.files.is_empty() {
        let values = rows(&mut next, c.files.len(), 1);
        clauses.push(format!(
            "f AS (INSERT INTO change_files (changeid, filename)
                   SELECT c.changeid, t.v FROM c CROSS JOIN (VALUES {values}) AS t(v))"
        ));
    }
    if properties > 0 {
        let values = rows(&mut next, properties, 2);
        clauses.push(format!(
            "p AS (INSERT INTO change_properties (changeid, property_name, property_value)
                   SELECT c.changeid, t.n, t.v FROM c CROSS JOIN (VALUES {values}) AS t(n, v))"
        ));
    }
    format!(
        "WITH {} SELECT c.changeid, c.parent_changeids, s.id, s.created_at FROM c CROSS JOIN s",
        clauses.join(", ")
    )
}

/// `($n, …), ($n+width, …)…` for `count` rows of `width` parameters, advancing `next`.
fn rows(next: &mut usize, count: usize, width: usize) -> String {
    (0..count)
        .map(|_| {
            let row = crate::placeholders(*next, width);
            *next += width;
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
