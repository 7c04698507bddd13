//! The generic read path of the Data API: filtered, ordered, paged lists of each resource.
//!
//! The `data` crate turns a REST result spec into a [`ListQuery`] and never writes SQL.
//! Column names are the REST field names (`buildid`, `complete`, `claimed`…) and are checked
//! against a fixed table per resource, so no caller text reaches the SQL; values are always
//! bound. Each list runs one query for the rows, one `COUNT(*)` when it is paged, and at most
//! one batched `IN (…)` query for child collections (tags, files, source stamps…).

use std::collections::BTreeMap;

use model::{BuilderId, MasterId, ProjectId, WorkerId};
use sqlx::AssertSqlSafe;

use crate::builds::{build_record, BUILD_COLUMNS};
use crate::buildsets::{
    buildrequest_record, buildset_record, sourcestamp_record, BUILDREQUEST_COLUMNS,
    BUILDREQUEST_FROM, BUILDSET_COLUMNS, SOURCESTAMP_COLUMNS,
};
use crate::changes::{change_record, CHANGE_COLUMNS};
use crate::decode::{flag, int, json, opt_int, opt_text, text};
use crate::error::{Context, StoreError};
use crate::logs::{log_record, LOG_COLUMNS};
use crate::masters::master_record;
use crate::rows::Rows;
use crate::steps::{step_record, STEP_COLUMNS};
use crate::{
    placeholders, Backend, BuildRecord, BuildRequestRecord, BuilderRecord, BuildsetRecord,
    ChangeRecord, ChangeSourceRecord, LogRecord, MasterRecord, ProjectRecord, SchedulerRecord,
    SourceStampRecord, StepRecord, Store, WorkerRecord,
};

/// A value in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// An integer; booleans are 0 and 1.
    Int(i64),
    /// A string.
    Text(String),
    /// SQL NULL (`IS NULL` for `Eq`, `IS NOT NULL` for `Ne`).
    Null,
}

/// How a filter compares a column with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// Equal to any of the values.
    Eq,
    /// Equal to none of the values (NULL counts as different from every value).
    Ne,
    /// Less than the one value.
    Lt,
    /// At most the one value.
    Le,
    /// Greater than the one value.
    Gt,
    /// At least the one value.
    Ge,
    /// A text column containing any of the values.
    Contains,
    /// Same as `Eq`.
    In,
    /// Same as `Ne`.
    NotIn,
}

/// One filter: `column op values`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSpec {
    /// REST field name, e.g. `builderid`.
    pub column: &'static str,
    /// Comparison.
    pub op: FilterOp,
    /// Values to compare with.
    pub values: Vec<SqlValue>,
}

impl FilterSpec {
    /// A filter on `column`.
    pub fn new(column: &'static str, op: FilterOp, values: Vec<SqlValue>) -> FilterSpec {
        FilterSpec { column, op, values }
    }
}

/// Filters (all must hold), order, and paging of a list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    /// Conditions, combined with AND.
    pub filters: Vec<FilterSpec>,
    /// Sort keys as (field, descending); the row id always breaks ties.
    pub order: Vec<(&'static str, bool)>,
    /// At most this many rows.
    pub limit: Option<i64>,
    /// Skip this many rows first.
    pub offset: Option<i64>,
}

impl ListQuery {
    /// Every row, by id.
    pub fn all() -> ListQuery {
        ListQuery::default()
    }

    /// Rows matching `filters`, by id.
    pub fn filtered(filters: Vec<FilterSpec>) -> ListQuery {
        ListQuery {
            filters,
            ..ListQuery::default()
        }
    }
}

impl Store {
    /// Builds matching `q`, and how many match before paging.
    pub async fn builds_list(&self, q: &ListQuery) -> Result<(Vec<BuildRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&BUILDS, q).await?;
        Ok((rows.decode(|r| build_record(r))?, total))
    }

    /// Builders matching `q` with tags and masters, and the total before paging.
    pub async fn builders_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<BuilderRecord>, i64), StoreError> {
        let whole_list = q.filters.is_empty() && q.order.is_empty();
        if whole_list && self.backend == Backend::Sqlite {
            let all = self.builders_all().await?;
            let offset = q.offset.unwrap_or(0).clamp(0, i64::MAX) as usize;
            let limit = q.limit.unwrap_or(i64::MAX).clamp(0, i64::MAX) as usize;
            let page = all.iter().skip(offset).take(limit).cloned().collect();
            return Ok((page, all.len() as i64));
        }
        self.builders_query(q).await
    }

    /// [`Store::builders_list`] from the database.
    pub(crate) async fn builders_query(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<BuilderRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&BUILDERS, q).await?;
        let mut records = rows.decode(|row| {
            Ok(BuilderRecord {
                id: BuilderId(int(row, 0)?),
                name: text(row, 1)?,
                description: opt_text(row, 2)?,
                projectid: opt_int(row, 3)?.map(ProjectId),
                tags: Vec::new(),
                masterids: Vec::new(),
            })
        })?;
        if records.is_empty() {
            return Ok((records, total));
        }
        let n = records.len();
        let sql = format!(
            "SELECT bt.builderid, 0, t.name, 0 FROM builders_tags bt JOIN tags t ON t.id = bt.tagid
             WHERE bt.builderid IN ({})
             UNION ALL
             SELECT bm.builderid, 1, '', bm.masterid FROM builder_masters bm WHERE bm.builderid IN ({})",
            placeholders(1, n),
            placeholders(n + 1, n)
        );
        let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
        let children = self.fetch_with_ids(sql, &ids, 2).await?;
        let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut masters: BTreeMap<i64, Vec<MasterId>> = BTreeMap::new();
        children.for_each(|row| {
            let builderid = int(row, 0)?;
            match int(row, 1)? {
                0 => tags.entry(builderid).or_default().push(text(row, 2)?),
                _ => masters
                    .entry(builderid)
                    .or_default()
                    .push(MasterId(int(row, 3)?)),
            }
            Ok(())
        })?;
        for record in &mut records {
            record.tags = tags.remove(&record.id.0).unwrap_or_default();
            record.tags.sort();
            record.masterids = masters.remove(&record.id.0).unwrap_or_default();
            record.masterids.sort();
        }
        Ok((records, total))
    }

    /// Steps matching `q`, and the total before paging.
    pub async fn steps_list(&self, q: &ListQuery) -> Result<(Vec<StepRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&STEPS, q).await?;
        Ok((rows.decode(|r| step_record(r))?, total))
    }

    /// Logs matching `q`, and the total before paging.
    pub async fn logs_list(&self, q: &ListQuery) -> Result<(Vec<LogRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&LOGS, q).await?;
        Ok((rows.decode(|r| log_record(r))?, total))
    }

    /// Changes matching `q` with files and properties, and the total before paging.
    pub async fn changes_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<ChangeRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&CHANGES, q).await?;
        let mut records = rows.decode(|r| change_record(r))?;
        self.fill_change_children(&mut records).await?;
        Ok((records, total))
    }

    /// Build requests matching `q`, and the total before paging.
    pub async fn buildrequests_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<BuildRequestRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&BUILDREQUESTS, q).await?;
        Ok((rows.decode(|r| buildrequest_record(r))?, total))
    }

    /// Buildsets matching `q` with their source stamps, and the total before paging.
    pub async fn buildsets_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<BuildsetRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&BUILDSETS, q).await?;
        let mut records = rows.decode(|r| buildset_record(r))?;
        let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
        let mut stamps = self.buildsets_sourcestamps(&ids).await?;
        for record in &mut records {
            record.sourcestamps = stamps.remove(&record.id.0).unwrap_or_default();
        }
        Ok((records, total))
    }

    /// Workers matching `q` with connections and configuration, and the total before paging.
    pub async fn workers_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<WorkerRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&WORKERS, q).await?;
        let mut records = rows.decode(|row| {
            Ok(WorkerRecord {
                id: WorkerId(int(row, 0)?),
                name: text(row, 1)?,
                info: json(&text(row, 2)?, "workers", "info")?,
                paused: flag(row, 3)?,
                pause_reason: opt_text(row, 4)?,
                graceful: flag(row, 5)?,
                connected_to: Vec::new(),
                configured_on: Vec::new(),
            })
        })?;
        if records.is_empty() {
            return Ok((records, total));
        }
        let n = records.len();
        let sql = format!(
            "SELECT cn.workerid, 0, cn.masterid, 0 FROM connected_workers cn WHERE cn.workerid IN ({})
             UNION ALL
             SELECT cw.workerid, 1, bm.masterid, bm.builderid FROM configured_workers cw
             JOIN builder_masters bm ON bm.id = cw.buildermasterid WHERE cw.workerid IN ({})",
            placeholders(1, n),
            placeholders(n + 1, n)
        );
        let ids: Vec<i64> = records.iter().map(|r| r.id.0).collect();
        let children = self.fetch_with_ids(sql, &ids, 2).await?;
        let mut connected: BTreeMap<i64, Vec<MasterId>> = BTreeMap::new();
        let mut configured: BTreeMap<i64, Vec<(MasterId, BuilderId)>> = BTreeMap::new();
        children.for_each(|row| {
            let workerid = int(row, 0)?;
            let masterid = MasterId(int(row, 2)?);
            match int(row, 1)? {
                0 => connected.entry(workerid).or_default().push(masterid),
                _ => configured
                    .entry(workerid)
                    .or_default()
                    .push((masterid, BuilderId(int(row, 3)?))),
            }
            Ok(())
        })?;
        for record in &mut records {
            record.connected_to = connected.remove(&record.id.0).unwrap_or_default();
            record.connected_to.sort();
            record.configured_on = configured.remove(&record.id.0).unwrap_or_default();
            record.configured_on.sort();
        }
        Ok((records, total))
    }

    /// Masters matching `q`, and the total before paging.
    pub async fn masters_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<MasterRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&MASTERS, q).await?;
        Ok((rows.decode(|r| master_record(r))?, total))
    }

    /// Schedulers matching `q`, and the total before paging.
    pub async fn schedulers_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<SchedulerRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&SCHEDULERS, q).await?;
        let records = rows.decode(|row| {
            Ok(SchedulerRecord {
                id: model::SchedulerId(int(row, 0)?),
                name: text(row, 1)?,
                enabled: flag(row, 2)?,
                masterid: opt_int(row, 3)?.map(MasterId),
            })
        })?;
        Ok((records, total))
    }

    /// Change sources matching `q`, and the total before paging.
    pub async fn changesources_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<ChangeSourceRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&CHANGESOURCES, q).await?;
        let records = rows.decode(|row| {
            Ok(ChangeSourceRecord {
                id: model::ChangeSourceId(int(row, 0)?),
                name: text(row, 1)?,
                masterid: opt_int(row, 2)?.map(MasterId),
            })
        })?;
        Ok((records, total))
    }

    /// Projects matching `q`, and the total before paging.
    pub async fn projects_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<ProjectRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&PROJECTS, q).await?;
        let records = rows.decode(|row| {
            Ok(ProjectRecord {
                id: ProjectId(int(row, 0)?),
                name: text(row, 1)?,
                slug: text(row, 2)?,
                description: opt_text(row, 3)?,
                description_format: opt_text(row, 4)?,
                description_html: opt_text(row, 5)?,
            })
        })?;
        Ok((records, total))
    }

    /// Source stamps matching `q`, and the total before paging.
    pub async fn sourcestamps_list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<SourceStampRecord>, i64), StoreError> {
        let (rows, total) = self.list_rows(&SOURCESTAMPS, q).await?;
        Ok((rows.decode(|r| sourcestamp_record(r, 0))?, total))
    }

    /// Runs `sql` with `ids` bound `times` times over (one per `IN (…)` list).
    async fn fetch_with_ids(
        &self,
        sql: String,
        ids: &[i64],
        times: usize,
    ) -> Result<Rows, StoreError> {
        let args: Vec<SqlValue> = (0..times)
            .flat_map(|_| ids.iter().map(|id| SqlValue::Int(*id)))
            .collect();
        self.read_rows("list children", sql, &args).await
    }

    /// Runs a read-only `sql` with `args`: on the calling thread on a SQLite file (see
    /// [`crate::sqlite_reader`]), through sqlx otherwise.
    pub(crate) async fn read_rows(
        &self,
        operation: &'static str,
        sql: String,
        args: &[SqlValue],
    ) -> Result<Rows, StoreError> {
        self.read(operation, sql, args, Extent::Bounded).await
    }

    /// [`Store::read_rows`], for a read whose size the caller knows.
    async fn read(
        &self,
        operation: &'static str,
        sql: String,
        args: &[SqlValue],
        extent: Extent,
    ) -> Result<Rows, StoreError> {
        if let Some(reader) = &self.sqlite_reader {
            let query = || reader.query(operation, &sql, args);
            // A read that may walk a whole table (a list filtered in memory) can take tens of
            // milliseconds: let the runtime move this thread's other tasks elsewhere first.
            let table = match extent == Extent::WholeTable && multi_thread_runtime() {
                true => tokio::task::block_in_place(query)?,
                false => query()?,
            };
            return Ok(Rows::Table(table));
        }
        Ok(Rows::Any(
            bind_all(sqlx::query(AssertSqlSafe(sql)), args)
                .fetch_all(&self.pool)
                .await
                .ctx(operation)?,
        ))
    }

    /// The rows of `resource` matching `q` and the count before paging.
    async fn list_rows(
        &self,
        resource: &Resource,
        q: &ListQuery,
    ) -> Result<(Rows, i64), StoreError> {
        let mut args = Vec::new();
        let where_clause = where_clause(resource, &q.filters, &mut args)?;
        let order = order_clause(resource, &q.order)?;
        let paging = match (q.limit, q.offset, self.backend) {
            (None, None, _) => String::new(),
            (Some(limit), None, _) => format!(" LIMIT {}", limit.max(0)),
            (Some(limit), Some(offset), _) => {
                format!(" LIMIT {} OFFSET {}", limit.max(0), offset.max(0))
            }
            (None, Some(offset), Backend::Sqlite) => format!(" LIMIT -1 OFFSET {}", offset.max(0)),
            (None, Some(offset), Backend::Postgres) => format!(" OFFSET {}", offset.max(0)),
        };
        let sql = format!(
            "SELECT {} FROM {}{where_clause} ORDER BY {order}{paging}",
            resource.select, resource.from
        );
        let extent = match q.limit {
            Some(_) => Extent::Bounded,
            None => Extent::WholeTable,
        };
        let rows = self.read(resource.table, sql, &args, extent).await?;
        let returned = rows.len() as i64;
        let offset = q.offset.unwrap_or(0).max(0);
        // A page that is not full, and not past the end, already tells the total: most
        // requests skip the COUNT query.
        let page_tells_total =
            q.limit.is_none_or(|limit| returned < limit) && (returned > 0 || offset == 0);
        let total = match page_tells_total {
            true => offset + returned,
            false => {
                let sql = format!("SELECT COUNT(*) FROM {}{where_clause}", resource.from);
                let count = self.read_rows(resource.table, sql, &args).await?;
                count
                    .decode(|row| int(row, 0))?
                    .first()
                    .copied()
                    .unwrap_or(0)
            }
        };
        Ok((rows, total))
    }
}

/// How much of a table a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// A page, a count, or rows of a few parents.
    Bounded,
    /// Anything up to every row.
    WholeTable,
}

/// True on tokio's multi-thread runtime, the only one where `block_in_place` may be used.
fn multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// What values a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integers (ids, timestamps, counts, result codes).
    Int,
    /// Text.
    Text,
    /// 0 or 1.
    Bool,
}

/// One filterable (and maybe sortable) field of a resource.
struct Column {
    /// REST field name.
    name: &'static str,
    /// SQL expression the filter compares.
    expr: &'static str,
    /// Its values.
    kind: Kind,
    /// For fields of a related table: the start of an `id IN (SELECT … WHERE` subquery that
    /// the condition on `expr` completes. Such fields filter but do not sort.
    via: Option<&'static str>,
}

/// A listable resource.
struct Resource {
    /// Name used in errors.
    table: &'static str,
    /// Column list decoded by the resource's record function.
    select: &'static str,
    /// FROM clause.
    from: &'static str,
    /// Row id, the final sort key.
    id: &'static str,
    /// Fields callers may use.
    columns: &'static [Column],
}

/// A plain field.
const fn col(name: &'static str, expr: &'static str, kind: Kind) -> Column {
    Column {
        name,
        expr,
        kind,
        via: None,
    }
}

/// A field reached through a subquery.
const fn via(name: &'static str, subquery: &'static str, expr: &'static str, kind: Kind) -> Column {
    Column {
        name,
        expr,
        kind,
        via: Some(subquery),
    }
}

use Kind::{Bool, Int, Text};

static BUILDS: Resource = Resource {
    table: "builds",
    select: BUILD_COLUMNS,
    from: "builds b",
    id: "b.id",
    columns: &[
        col("buildid", "b.id", Int),
        col("number", "b.number", Int),
        col("builderid", "b.builderid", Int),
        col("buildrequestid", "b.buildrequestid", Int),
        col("workerid", "b.workerid", Int),
        col("masterid", "b.masterid", Int),
        col("started_at", "b.started_at", Int),
        col("complete_at", "b.complete_at", Int),
        col(
            "complete",
            "(CASE WHEN b.complete_at IS NULL THEN 0 ELSE 1 END)",
            Bool,
        ),
        col("locks_duration_s", "b.locks_duration_s", Int),
        col("results", "b.results", Int),
        col("state_string", "b.state_string", Text),
        via(
            "buildsetid",
            "b.buildrequestid IN (SELECT br.id FROM buildrequests br WHERE",
            "br.buildsetid",
            Int,
        ),
        via(
            "changeid",
            "b.buildrequestid IN (SELECT br.id FROM buildrequests br \
             JOIN buildset_sourcestamps bss ON bss.buildsetid = br.buildsetid \
             JOIN changes ch ON ch.sourcestampid = bss.sourcestampid WHERE",
            "ch.changeid",
            Int,
        ),
    ],
};

static BUILDERS: Resource = Resource {
    table: "builders",
    select: "bl.id, bl.name, bl.description, bl.projectid",
    from: "builders bl",
    id: "bl.id",
    columns: &[
        col("builderid", "bl.id", Int),
        col("name", "bl.name", Text),
        col("description", "bl.description", Text),
        col("projectid", "bl.projectid", Int),
        via("masterid", "bl.id IN (SELECT bm.builderid FROM builder_masters bm WHERE", "bm.masterid", Int),
        via(
            "tags",
            "bl.id IN (SELECT bt.builderid FROM builders_tags bt JOIN tags t ON t.id = bt.tagid WHERE",
            "t.name",
            Text,
        ),
        via(
            "workerid",
            "bl.id IN (SELECT bm.builderid FROM builder_masters bm \
             JOIN configured_workers cw ON cw.buildermasterid = bm.id WHERE",
            "cw.workerid",
            Int,
        ),
    ],
};

static STEPS: Resource = Resource {
    table: "steps",
    select: STEP_COLUMNS,
    from: "steps s",
    id: "s.id",
    columns: &[
        col("stepid", "s.id", Int),
        col("number", "s.number", Int),
        col("name", "s.name", Text),
        col("buildid", "s.buildid", Int),
        col("started_at", "s.started_at", Int),
        col("locks_acquired_at", "s.locks_acquired_at", Int),
        col("complete_at", "s.complete_at", Int),
        col(
            "complete",
            "(CASE WHEN s.complete_at IS NULL THEN 0 ELSE 1 END)",
            Bool,
        ),
        col("results", "s.results", Int),
        col("state_string", "s.state_string", Text),
        col("hidden", "s.hidden", Bool),
    ],
};

static LOGS: Resource = Resource {
    table: "logs",
    select: LOG_COLUMNS,
    from: "logs l",
    id: "l.id",
    columns: &[
        col("logid", "l.id", Int),
        col("name", "l.name", Text),
        col("slug", "l.slug", Text),
        col("stepid", "l.stepid", Int),
        col("complete", "l.complete", Bool),
        col("num_lines", "l.num_lines", Int),
        col("type", "l.type", Text),
    ],
};

static CHANGES: Resource = Resource {
    table: "changes",
    select: CHANGE_COLUMNS,
    from: "changes c",
    id: "c.changeid",
    columns: &[
        col("changeid", "c.changeid", Int),
        col("author", "c.author", Text),
        col("committer", "c.committer", Text),
        col("comments", "c.comments", Text),
        col("branch", "c.branch", Text),
        col("revision", "c.revision", Text),
        col("revlink", "c.revlink", Text),
        col("when_timestamp", "c.when_timestamp", Int),
        col("category", "c.category", Text),
        col("repository", "c.repository", Text),
        col("codebase", "c.codebase", Text),
        col("project", "c.project", Text),
        col("sourcestampid", "c.sourcestampid", Int),
        via(
            "buildid",
            "c.sourcestampid IN (SELECT bss.sourcestampid FROM buildset_sourcestamps bss \
             JOIN buildrequests br ON br.buildsetid = bss.buildsetid \
             JOIN builds bd ON bd.buildrequestid = br.id WHERE",
            "bd.id",
            Int,
        ),
    ],
};

static BUILDREQUESTS: Resource = Resource {
    table: "buildrequests",
    select: BUILDREQUEST_COLUMNS,
    from: BUILDREQUEST_FROM,
    id: "br.id",
    columns: &[
        col("buildrequestid", "br.id", Int),
        col("buildsetid", "br.buildsetid", Int),
        col("builderid", "br.builderid", Int),
        col("priority", "br.priority", Int),
        col("complete", "br.complete", Bool),
        col("results", "br.results", Int),
        col("submitted_at", "br.submitted_at", Int),
        col("complete_at", "br.complete_at", Int),
        col("waited_for", "br.waited_for", Bool),
        col(
            "claimed",
            "(CASE WHEN c.brid IS NULL THEN 0 ELSE 1 END)",
            Bool,
        ),
        col("claimed_at", "c.claimed_at", Int),
        col("claimed_by_masterid", "c.masterid", Int),
    ],
};

static BUILDSETS: Resource = Resource {
    table: "buildsets",
    select: BUILDSET_COLUMNS,
    from: "buildsets bs",
    id: "bs.id",
    columns: &[
        col("bsid", "bs.id", Int),
        col("external_idstring", "bs.external_idstring", Text),
        col("reason", "bs.reason", Text),
        col("submitted_at", "bs.submitted_at", Int),
        col("complete", "bs.complete", Bool),
        col("complete_at", "bs.complete_at", Int),
        col("results", "bs.results", Int),
        col("parent_buildid", "bs.parent_buildid", Int),
        col("parent_relationship", "bs.parent_relationship", Text),
        col("rebuilt_buildid", "bs.rebuilt_buildid", Int),
    ],
};

static WORKERS: Resource = Resource {
    table: "workers",
    select: "w.id, w.name, w.info, w.paused, w.pause_reason, w.graceful",
    from: "workers w",
    id: "w.id",
    columns: &[
        col("workerid", "w.id", Int),
        col("name", "w.name", Text),
        col("paused", "w.paused", Bool),
        col("pause_reason", "w.pause_reason", Text),
        col("graceful", "w.graceful", Bool),
        via(
            "masterid",
            "w.id IN (SELECT cw.workerid FROM configured_workers cw \
             JOIN builder_masters bm ON bm.id = cw.buildermasterid WHERE",
            "bm.masterid",
            Int,
        ),
        via(
            "builderid",
            "w.id IN (SELECT cw.workerid FROM configured_workers cw \
             JOIN builder_masters bm ON bm.id = cw.buildermasterid WHERE",
            "bm.builderid",
            Int,
        ),
        via(
            "connected_masterid",
            "w.id IN (SELECT cn.workerid FROM connected_workers cn WHERE",
            "cn.masterid",
            Int,
        ),
    ],
};

static MASTERS: Resource = Resource {
    table: "masters",
    select: "m.id, m.name, m.active, m.last_active",
    from: "masters m",
    id: "m.id",
    columns: &[
        col("masterid", "m.id", Int),
        col("name", "m.name", Text),
        col("active", "m.active", Bool),
        col("last_active", "m.last_active", Int),
        via(
            "builderid",
            "m.id IN (SELECT bm.masterid FROM builder_masters bm WHERE",
            "bm.builderid",
            Int,
        ),
    ],
};

static SCHEDULERS: Resource = Resource {
    table: "schedulers",
    select: "s.id, s.name, s.enabled, sm.masterid",
    from: "schedulers s LEFT JOIN scheduler_masters sm ON sm.schedulerid = s.id",
    id: "s.id",
    columns: &[
        col("schedulerid", "s.id", Int),
        col("name", "s.name", Text),
        col("enabled", "s.enabled", Bool),
        col("masterid", "sm.masterid", Int),
    ],
};

static CHANGESOURCES: Resource = Resource {
    table: "changesources",
    select: "cs.id, cs.name, cm.masterid",
    from: "changesources cs LEFT JOIN changesource_masters cm ON cm.changesourceid = cs.id",
    id: "cs.id",
    columns: &[
        col("changesourceid", "cs.id", Int),
        col("name", "cs.name", Text),
        col("masterid", "cm.masterid", Int),
    ],
};

static PROJECTS: Resource = Resource {
    table: "projects",
    select: "p.id, p.name, p.slug, p.description, p.description_format, p.description_html",
    from: "projects p",
    id: "p.id",
    columns: &[
        col("projectid", "p.id", Int),
        col("name", "p.name", Text),
        col("slug", "p.slug", Text),
        col("description", "p.description", Text),
        col("description_format", "p.description_format", Text),
        col("description_html", "p.description_html", Text),
        // A project is active while one of its builders runs on a master (spec §7.16).
        col(
            "active",
            "(CASE WHEN EXISTS (SELECT 1 FROM builders pb JOIN builder_masters pbm \
             ON pbm.builderid = pb.id WHERE pb.projectid = p.id) THEN 1 ELSE 0 END)",
            Bool,
        ),
    ],
};

static SOURCESTAMPS: Resource = Resource {
    table: "sourcestamps",
    select: SOURCESTAMP_COLUMNS,
    from: "sourcestamps ss LEFT JOIN patches p ON p.id = ss.patchid",
    id: "ss.id",
    columns: &[
        col("ssid", "ss.id", Int),
        col("branch", "ss.branch", Text),
        col("revision", "ss.revision", Text),
        col("repository", "ss.repository", Text),
        col("codebase", "ss.codebase", Text),
        col("project", "ss.project", Text),
        col("created_at", "ss.created_at", Int),
        via(
            "buildsetid",
            "ss.id IN (SELECT bss.sourcestampid FROM buildset_sourcestamps bss WHERE",
            "bss.buildsetid",
            Int,
        ),
    ],
};

/// ` WHERE …` for `filters` (empty when there are none), pushing bound values onto `args`.
fn where_clause(
    resource: &Resource,
    filters: &[FilterSpec],
    args: &mut Vec<SqlValue>,
) -> Result<String, StoreError> {
    let mut conditions = Vec::with_capacity(filters.len());
    for filter in filters {
        let column = find_column(resource, filter.column)?;
        let condition = condition(resource, column, filter, args)?;
        conditions.push(match column.via {
            None => condition,
            Some(subquery) => format!("{subquery} {condition})"),
        });
    }
    match conditions.is_empty() {
        true => Ok(String::new()),
        false => Ok(format!(" WHERE {}", conditions.join(" AND "))),
    }
}

/// The SQL condition of one filter on `column`.
fn condition(
    resource: &Resource,
    column: &Column,
    filter: &FilterSpec,
    args: &mut Vec<SqlValue>,
) -> Result<String, StoreError> {
    let bad = |reason: String| StoreError::BadQuery {
        table: resource.table,
        reason,
    };
    let expr = column.expr;
    let mut has_null = false;
    let mut values = Vec::with_capacity(filter.values.len());
    for value in &filter.values {
        let fits = match (value, column.kind) {
            (SqlValue::Null, _) => {
                has_null = true;
                continue;
            }
            (SqlValue::Int(_), Kind::Int) => true,
            (SqlValue::Int(v), Kind::Bool) => *v == 0 || *v == 1,
            (SqlValue::Text(_), Kind::Text) => true,
            _ => false,
        };
        if !fits {
            return Err(bad(format!(
                "value {value:?} does not fit field {}",
                column.name
            )));
        }
        values.push(value.clone());
    }
    let list = |args: &mut Vec<SqlValue>, values: Vec<SqlValue>| {
        let start = args.len() + 1;
        let n = values.len();
        args.extend(values);
        placeholders(start, n)
    };
    Ok(match filter.op {
        FilterOp::Eq | FilterOp::In => match (has_null, values.is_empty()) {
            (false, true) => "1 = 0".to_string(),
            (true, true) => format!("{expr} IS NULL"),
            (false, false) => format!("{expr} IN ({})", list(args, values)),
            (true, false) => format!("({expr} IS NULL OR {expr} IN ({}))", list(args, values)),
        },
        FilterOp::Ne | FilterOp::NotIn => match (has_null, values.is_empty()) {
            (false, true) => "1 = 1".to_string(),
            (true, true) => format!("{expr} IS NOT NULL"),
            (false, false) => format!("({expr} IS NULL OR {expr} NOT IN ({}))", list(args, values)),
            (true, false) => format!(
                "({expr} IS NOT NULL AND {expr} NOT IN ({}))",
                list(args, values)
            ),
        },
        FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge => {
            if has_null || values.len() != 1 {
                return Err(bad(format!(
                    "{:?} on {} needs exactly one non-null value",
                    filter.op, column.name
                )));
            }
            let op = match filter.op {
                FilterOp::Lt => "<",
                FilterOp::Le => "<=",
                FilterOp::Gt => ">",
                _ => ">=",
            };
            format!("{expr} {op} {}", list(args, values))
        }
        FilterOp::Contains => {
            if column.kind != Kind::Text || has_null || values.is_empty() {
                return Err(bad(format!(
                    "contains on {} needs text values",
                    column.name
                )));
            }
            let patterns: Vec<SqlValue> = values
                .into_iter()
                .map(|v| match v {
                    SqlValue::Text(s) => SqlValue::Text(format!("%{}%", escape_like(&s))),
                    other => other,
                })
                .collect();
            let start = args.len() + 1;
            let n = patterns.len();
            args.extend(patterns);
            let alternatives: Vec<String> = (start..start + n)
                .map(|i| format!("{expr} LIKE ${i} ESCAPE '\\'"))
                .collect();
            format!("({})", alternatives.join(" OR "))
        }
    })
}

/// `ORDER BY` keys for `order`, ending with the row id.
fn order_clause(resource: &Resource, order: &[(&'static str, bool)]) -> Result<String, StoreError> {
    let mut keys = Vec::with_capacity(order.len() + 1);
    for (name, descending) in order {
        let column = find_column(resource, name)?;
        if column.via.is_some() {
            return Err(StoreError::BadQuery {
                table: resource.table,
                reason: format!("cannot sort by {name}"),
            });
        }
        // Spell NULL placement out: SQLite and PostgreSQL disagree on the default.
        keys.push(match descending {
            true => format!("{} DESC NULLS LAST", column.expr),
            false => format!("{} ASC NULLS FIRST", column.expr),
        });
    }
    keys.push(resource.id.to_string());
    Ok(keys.join(", "))
}

/// The column `name` of `resource`.
fn find_column<'r>(resource: &'r Resource, name: &str) -> Result<&'r Column, StoreError> {
    resource
        .columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| StoreError::BadQuery {
            table: resource.table,
            reason: format!("unknown field {name}"),
        })
}

/// `s` with LIKE wildcards and the escape character escaped.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Binds `args` in order.
fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &'q [SqlValue],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for arg in args {
        query = match arg {
            SqlValue::Int(v) => query.bind(*v),
            SqlValue::Text(s) => query.bind(s.as_str()),
            SqlValue::Null => query.bind(None::<i64>),
        };
    }
    query
}
