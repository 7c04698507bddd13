//! Changes: their source stamps, files, properties and parent.

use std::collections::BTreeMap;

use model::{ChangeId, Properties, SourceStampId, Timestamp};
use sqlx::AssertSqlSafe;
use sqlx::{Any, Transaction};

use crate::buildsets::find_or_create_sourcestamp;
use crate::change_writer::Job;
use crate::decode::{add_property_pair, int, opt_int, opt_text, property_pair, text, Columns};
use crate::error::{Context, StoreError};
use crate::list::SqlValue;
use crate::{
    placeholders, Backend, ChangeRecord, NewChange, NewSourceStamp, SourceStampRecord, Store,
};

/// Columns decoded by [`change_record`]; needs `changes c`.
pub(crate) const CHANGE_COLUMNS: &str = "c.changeid, c.author, c.committer, c.comments, c.branch, c.revision, \
     c.revlink, c.when_timestamp, c.category, c.repository, c.codebase, c.project, c.sourcestampid, c.parent_changeids";

/// A webhook delivery id (GitHub's `X-GitHub-Delivery`…), recorded in the same transaction
/// as the changes it carried.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The change hook dialect.
    pub dialect: String,
    /// The delivery id the forge sent.
    pub id: String,
    /// When it arrived.
    pub received_at: Timestamp,
}

/// A change as [`Store::changes_add`] stored it, with its source stamp.
#[derive(Debug, Clone)]
pub struct AddedChange {
    /// The change row, files and properties.
    pub change: ChangeRecord,
    /// Its source stamp (new or shared with an identical one).
    pub sourcestamp: SourceStampRecord,
}

/// What [`Store::changes_add`] did.
#[derive(Debug)]
pub enum ChangesAdded {
    /// Every change was stored.
    Recorded(Vec<AddedChange>),
    /// The delivery was recorded before: nothing was stored.
    Replayed,
}

impl Store {
    /// Stores a change: finds or creates its source stamp, links the previous change on the
    /// same repository/branch/project/codebase as parent, and stores files and properties.
    /// One transaction.
    pub async fn change_add(&self, c: &NewChange) -> Result<ChangeId, StoreError> {
        let job = [(std::slice::from_ref(c), None::<Delivery>)];
        match self.write_changes(&job).await?.pop() {
            Some(ChangesAdded::Recorded(added)) if added.len() == 1 => Ok(added[0].change.id),
            _ => Err(no_row()),
        }
    }

    /// Stores `changes` as [`Store::change_add`] does, and with them the webhook delivery
    /// that carried them, in one transaction: either the delivery is new and every change is
    /// stored, or it was seen before and nothing is. Returns the changes as stored, so that
    /// their events need no second read. Concurrent calls share transactions
    /// ([`crate::change_writer`]).
    pub async fn changes_add(
        &self,
        changes: Vec<NewChange>,
        delivery: Option<Delivery>,
    ) -> Result<ChangesAdded, StoreError> {
        match &self.change_writer {
            Some(writer) => writer.submit(changes, delivery).await,
            None => {
                let job = [(changes, delivery)];
                let mut results = self.write_changes(&job).await?;
                results.pop().ok_or(StoreError::WriterStopped)
            }
        }
    }

    /// Writes the changes of several deliveries in one transaction; one answer per delivery.
    pub(crate) async fn write_deliveries(
        &self,
        jobs: &[Job],
    ) -> Result<Vec<ChangesAdded>, StoreError> {
        let jobs: Vec<(&[NewChange], Option<&Delivery>)> = jobs
            .iter()
            .map(|job| (job.changes.as_slice(), job.delivery.as_ref()))
            .collect();
        self.write_changes(&jobs).await
    }

    async fn write_changes<C: AsRef<[NewChange]>, D: std::borrow::Borrow<Delivery>>(
        &self,
        jobs: &[(C, Option<D>)],
    ) -> Result<Vec<ChangesAdded>, StoreError> {
        const OP: &str = "changes_add";
        let mut tx = self.write_tx(OP).await?;
        let mut results = Vec::with_capacity(jobs.len());
        for (changes, delivery) in jobs {
            let changes = changes.as_ref();
            let delivery = delivery.as_ref().map(std::borrow::Borrow::borrow);
            results.push(match self.backend {
                Backend::Sqlite => write_job(&mut tx, changes, delivery).await?,
                Backend::Postgres => write_job_in_statements(&mut tx, changes, delivery).await?,
            });
        }
        tx.commit().await.ctx(OP)?;
        Ok(results)
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
        let args: Vec<SqlValue> = (0..2)
            .flat_map(|_| records.iter().map(|r| SqlValue::Int(r.id.0)))
            .collect();
        let rows = self.read_rows("change children", sql, &args).await?;
        let mut files: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut props: BTreeMap<i64, Properties> = BTreeMap::new();
        rows.for_each(|row| {
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
            Ok(())
        })?;
        for record in records.iter_mut() {
            record.files = files.remove(&record.id.0).unwrap_or_default();
            record.properties = props.remove(&record.id.0).unwrap_or_default();
        }
        Ok(())
    }
}

/// Decodes [`CHANGE_COLUMNS`]; files and properties are left empty.
/// One delivery's changes, statement by statement (SQLite: each statement is cheap, and a
/// data-modifying `WITH` is PostgreSQL only).
async fn write_job(
    tx: &mut Transaction<'static, Any>,
    changes: &[NewChange],
    delivery: Option<&Delivery>,
) -> Result<ChangesAdded, StoreError> {
    if let Some(d) = delivery {
        if !record_delivery(tx, d).await? {
            return Ok(ChangesAdded::Replayed);
        }
    }
    let mut added = Vec::with_capacity(changes.len());
    for c in changes {
        added.push(insert_change(tx, c).await?);
    }
    Ok(ChangesAdded::Recorded(added))
}

/// One delivery's changes on PostgreSQL, one statement per change ([`crate::changes_pg`]):
/// each round trip to the server costs more than the rows it carries.
async fn write_job_in_statements(
    tx: &mut Transaction<'static, Any>,
    changes: &[NewChange],
    delivery: Option<&Delivery>,
) -> Result<ChangesAdded, StoreError> {
    // PostgreSQL caps a statement at 65,535 parameters: a change touching thousands of files
    // goes statement by statement, its files a few hundred per insert.
    let huge = |c: &NewChange| c.files.len() + 2 * c.properties.iter().count() > 5_000;
    let Some(first) = changes.first().filter(|_| !changes.iter().any(huge)) else {
        return write_job(tx, changes, delivery).await;
    };
    let mut added = Vec::with_capacity(changes.len());
    // The delivery id goes with the first change: when it was seen before, nothing is written.
    match crate::changes_pg::insert_change(tx, first, delivery).await? {
        Some(row) => added.push(into_added(first, row)),
        None => return Ok(ChangesAdded::Replayed),
    }
    for c in &changes[1..] {
        match crate::changes_pg::insert_change(tx, c, None).await? {
            Some(row) => added.push(into_added(c, row)),
            None => return Err(no_row()),
        }
    }
    Ok(ChangesAdded::Recorded(added))
}

fn into_added(c: &NewChange, row: crate::changes_pg::Written) -> AddedChange {
    added_change(
        c,
        row.changeid,
        row.parent,
        change_stamp(c),
        row.ssid,
        row.ss_created_at,
    )
}

/// Records a delivery id; false when it was recorded before.
async fn record_delivery(
    tx: &mut Transaction<'static, Any>,
    d: &Delivery,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (dialect, delivery_id, received_at) VALUES ($1, $2, $3)
         ON CONFLICT (dialect, delivery_id) DO NOTHING",
    )
    .bind(d.dialect.as_str())
    .bind(d.id.as_str())
    .bind(d.received_at)
    .execute(&mut **tx)
    .await
    .ctx("changes_add")?;
    Ok(inserted.rows_affected() == 1)
}

/// Inserts one change with its source stamp, parent link, files and properties, in four
/// statements whatever the number of files and properties: each round trip to the database
/// costs more than the rows it carries.
async fn insert_change(
    tx: &mut Transaction<'static, Any>,
    c: &NewChange,
) -> Result<AddedChange, StoreError> {
    const OP: &str = "change_add";
    let stamp = change_stamp(c);
    let (ssid, ss_created_at) = find_or_create_sourcestamp(tx, &stamp, c.created_at).await?;
    let parent = parent_query(c, "$9", "$4", "$11", "$10");
    let sql = format!(
        "INSERT INTO changes (author, committer, comments, branch, revision, revlink, when_timestamp,
             category, repository, codebase, project, sourcestampid, parent_changeids)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, {parent})
         RETURNING changeid, parent_changeids"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
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
        .fetch_one(&mut **tx)
        .await
        .ctx(OP)?;
    let changeid = int(&row, 0)?;
    let parent = opt_int(&row, 1)?;
    let files: Vec<[String; 1]> = c.files.iter().map(|f| [f.clone()]).collect();
    insert_children(tx, "change_files (changeid, filename)", changeid, &files).await?;
    let properties: Vec<[String; 2]> = c
        .properties
        .iter()
        .map(|(name, value, source)| [name.to_string(), property_pair(value, source)])
        .collect();
    insert_children(
        tx,
        "change_properties (changeid, property_name, property_value)",
        changeid,
        &properties,
    )
    .await?;
    Ok(added_change(
        c,
        changeid,
        parent,
        stamp,
        ssid,
        ss_created_at,
    ))
}

/// The newest change id on `c`'s repository/branch/project/codebase (its parent), as a
/// subquery over the given placeholders. Two spellings, so that both engines walk the
/// (repository, branch, project, codebase, changeid) index instead of scanning every change
/// of the repository.
pub(crate) fn parent_query(
    c: &NewChange,
    repository: &str,
    branch: &str,
    project: &str,
    codebase: &str,
) -> String {
    let branch_test = match c.branch {
        Some(_) => format!("branch = {branch}"),
        None => "branch IS NULL".to_string(),
    };
    format!(
        "(SELECT MAX(changeid) FROM changes WHERE repository = {repository} AND {branch_test} \
         AND project = {project} AND codebase = {codebase})"
    )
}

/// A stored change that came back without its row: the insert returned nothing.
fn no_row() -> StoreError {
    StoreError::Corrupt {
        table: "changes",
        column: "changeid",
        reason: "inserting a change returned no row".to_string(),
    }
}

/// The source stamp a change makes.
pub(crate) fn change_stamp(c: &NewChange) -> NewSourceStamp {
    NewSourceStamp {
        branch: c.branch.clone(),
        revision: c.revision.clone(),
        repository: c.repository.clone(),
        codebase: c.codebase.clone(),
        project: c.project.clone(),
        patch: None,
    }
}

/// The change and source stamp as written, for the event that announces them.
fn added_change(
    c: &NewChange,
    changeid: i64,
    parent: Option<i64>,
    stamp: NewSourceStamp,
    ssid: SourceStampId,
    ss_created_at: Timestamp,
) -> AddedChange {
    AddedChange {
        change: ChangeRecord {
            id: ChangeId(changeid),
            author: c.author.clone(),
            committer: c.committer.clone(),
            comments: c.comments.clone(),
            branch: c.branch.clone(),
            revision: c.revision.clone(),
            revlink: c.revlink.clone(),
            when_timestamp: c.when_timestamp,
            category: c.category.clone(),
            repository: c.repository.clone(),
            codebase: c.codebase.clone(),
            project: c.project.clone(),
            sourcestampid: ssid,
            files: c.files.clone(),
            properties: c.properties.clone(),
            parent_changeids: parent.map(ChangeId).into_iter().collect(),
        },
        sourcestamp: SourceStampRecord {
            id: ssid,
            branch: stamp.branch,
            revision: stamp.revision,
            repository: stamp.repository,
            codebase: stamp.codebase,
            project: stamp.project,
            created_at: ss_created_at,
            patch: None,
        },
    }
}

/// Inserts `rows` of texts under parent `id` into `table (parent, columns…)`, a few hundred
/// rows per statement (SQLite caps the parameters of one statement).
async fn insert_children<const N: usize>(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    id: i64,
    rows: &[[String; N]],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(400) {
        let mut next = 2;
        let tuples: Vec<String> = chunk
            .iter()
            .map(|_| {
                let tuple = format!("($1, {})", placeholders(next, N));
                next += N;
                tuple
            })
            .collect();
        let sql = format!("INSERT INTO {table} VALUES {}", tuples.join(", "));
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
        for value in chunk.iter().flatten() {
            query = query.bind(value.as_str());
        }
        query.execute(&mut **tx).await.ctx("change_add")?;
    }
    Ok(())
}

pub(crate) fn change_record<R: Columns + ?Sized>(row: &R) -> Result<ChangeRecord, StoreError> {
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
