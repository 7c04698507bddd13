//! Changes: their source stamps, files, properties and parent.

use std::collections::BTreeMap;

use model::{ChangeId, Properties, SourceStampId};
use sqlx::any::AnyRow;
use sqlx::AssertSqlSafe;

use crate::buildsets::find_or_create_sourcestamp;
use crate::decode::{add_property_pair, int, opt_int, opt_text, property_pair, text};
use crate::error::{Context, StoreError};
use crate::{placeholders, ChangeRecord, NewChange, NewSourceStamp, Store};

/// Columns decoded by [`change_record`]; needs `changes c`.
pub(crate) const CHANGE_COLUMNS: &str = "c.changeid, c.author, c.committer, c.comments, c.branch, c.revision, \
     c.revlink, c.when_timestamp, c.category, c.repository, c.codebase, c.project, c.sourcestampid, c.parent_changeids";

impl Store {
    /// Stores a change: finds or creates its source stamp, links the previous change on the
    /// same repository/branch/project/codebase as parent, and stores files and properties.
    /// One transaction.
    pub async fn change_add(&self, c: &NewChange) -> Result<ChangeId, StoreError> {
        const OP: &str = "change_add";
        let mut tx = self.write_tx(OP).await?;
        let stamp = NewSourceStamp {
            branch: c.branch.clone(),
            revision: c.revision.clone(),
            repository: c.repository.clone(),
            codebase: c.codebase.clone(),
            project: c.project.clone(),
            patch: None,
        };
        let ssid = find_or_create_sourcestamp(&mut tx, &stamp, c.created_at).await?;
        // Two spellings, so that both engines walk the (repository, branch, project,
        // codebase, changeid) index instead of scanning every change of the repository.
        let parent = match c.branch.as_deref() {
            Some(branch) => sqlx::query(
                "SELECT MAX(changeid) FROM changes
                 WHERE repository = $1 AND branch = $2 AND project = $3 AND codebase = $4",
            )
            .bind(c.repository.as_str())
            .bind(branch)
            .bind(c.project.as_str())
            .bind(c.codebase.as_str()),
            None => sqlx::query(
                "SELECT MAX(changeid) FROM changes
                 WHERE repository = $1 AND branch IS NULL AND project = $2 AND codebase = $3",
            )
            .bind(c.repository.as_str())
            .bind(c.project.as_str())
            .bind(c.codebase.as_str()),
        }
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        let parent = opt_int(&parent, 0)?;
        let row = sqlx::query(
            "INSERT INTO changes (author, committer, comments, branch, revision, revlink, when_timestamp,
                 category, repository, codebase, project, sourcestampid, parent_changeids)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING changeid",
        )
        .bind(c.author.as_str())
        .bind(c.committer.as_deref())
        .bind(c.comments.as_str())
        .bind(c.branch.as_deref())
        .bind(c.revision.as_deref())
        .bind(c.revlink.as_deref())
        .bind(c.when_timestamp)
        .bind(c.category.as_deref())
        .bind(c.repository.as_str())
        .bind(c.codebase.as_str())
        .bind(c.project.as_str())
        .bind(ssid.0)
        .bind(parent)
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        let changeid = int(&row, 0)?;
        for file in &c.files {
            sqlx::query("INSERT INTO change_files (changeid, filename) VALUES ($1, $2)")
                .bind(changeid)
                .bind(file.as_str())
                .execute(&mut *tx)
                .await
                .ctx(OP)?;
        }
        for (name, value, source) in c.properties.iter() {
            sqlx::query("INSERT INTO change_properties (changeid, property_name, property_value) VALUES ($1, $2, $3)")
                .bind(changeid)
                .bind(name)
                .bind(property_pair(value, source))
                .execute(&mut *tx)
                .await
                .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)?;
        Ok(ChangeId(changeid))
    }

    /// One change with files, properties and parent.
    pub async fn change_get(&self, id: ChangeId) -> Result<Option<ChangeRecord>, StoreError> {
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes c WHERE c.changeid = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("change_get")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut records = vec![change_record(&row)?];
        self.fill_change_children(&mut records).await?;
        Ok(records.pop())
    }

    /// The newest change id, if any change exists.
    pub async fn change_last_id(&self) -> Result<Option<ChangeId>, StoreError> {
        let row = sqlx::query("SELECT MAX(changeid) FROM changes")
            .fetch_one(&self.pool)
            .await
            .ctx("change_last_id")?;
        Ok(opt_int(&row, 0)?.map(ChangeId))
    }

    /// Changes that make up a source stamp, by id.
    pub async fn changes_for_sourcestamp(
        &self,
        id: SourceStampId,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM changes c WHERE c.sourcestampid = $1 ORDER BY c.changeid"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_all(&self.pool)
            .await
            .ctx("changes_for_sourcestamp")?;
        let mut records = rows
            .iter()
            .map(change_record)
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_change_children(&mut records).await?;
        Ok(records)
    }

    /// Loads files and properties of `records` in one query.
    pub(crate) async fn fill_change_children(
        &self,
        records: &mut [ChangeRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let n = records.len();
        let sql = format!(
            "SELECT changeid, 0, filename, '' FROM change_files WHERE changeid IN ({})
             UNION ALL
             SELECT changeid, 1, property_name, property_value FROM change_properties WHERE changeid IN ({})",
            placeholders(1, n),
            placeholders(n + 1, n)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for _pass in 0..2 {
            for r in records.iter() {
                query = query.bind(r.id.0);
            }
        }
        let rows = query.fetch_all(&self.pool).await.ctx("change children")?;
        let mut files: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut props: BTreeMap<i64, Properties> = BTreeMap::new();
        for row in &rows {
            let changeid = int(row, 0)?;
            match int(row, 1)? {
                0 => files.entry(changeid).or_default().push(text(row, 2)?),
                _ => add_property_pair(
                    props.entry(changeid).or_default(),
                    text(row, 2)?,
                    &text(row, 3)?,
                    "change_properties",
                )?,
            }
        }
        for record in records.iter_mut() {
            record.files = files.remove(&record.id.0).unwrap_or_default();
            record.properties = props.remove(&record.id.0).unwrap_or_default();
        }
        Ok(())
    }
}

/// Decodes [`CHANGE_COLUMNS`]; files and properties are left empty.
pub(crate) fn change_record(row: &AnyRow) -> Result<ChangeRecord, StoreError> {
    Ok(ChangeRecord {
        id: ChangeId(int(row, 0)?),
        author: text(row, 1)?,
        committer: opt_text(row, 2)?,
        comments: text(row, 3)?,
        branch: opt_text(row, 4)?,
        revision: opt_text(row, 5)?,
        revlink: opt_text(row, 6)?,
        when_timestamp: int(row, 7)?,
        category: opt_text(row, 8)?,
        repository: text(row, 9)?,
        codebase: text(row, 10)?,
        project: text(row, 11)?,
        sourcestampid: SourceStampId(int(row, 12)?),
        files: Vec::new(),
        properties: Properties::new(),
        parent_changeids: opt_int(row, 13)?.into_iter().map(ChangeId).collect(),
    })
}
