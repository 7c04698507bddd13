//! Read queries for the status pages: each answers a whole page section in one statement,
//! whatever the number of builders (the overview pages must stay fast at 1,000 builders).

use model::{BuildId, BuilderId, Results, SourceStampId, StepId, Timestamp};

use crate::builds::{build_record, BUILD_COLUMNS};
use crate::changes::{change_record, CHANGE_COLUMNS};
use crate::decode::{int, opt_int, opt_text};
use crate::error::StoreError;
use crate::list::SqlValue;
use crate::logs::{log_record, LOG_COLUMNS};
use crate::steps::{step_record, STEP_COLUMNS};
use crate::{placeholders, BuildRecord, ChangeRecord, LogRecord, StepRecord, Store};

/// A builder's state on the overview pages.
#[derive(Debug, Clone, PartialEq)]
pub struct BuilderSummary {
    /// The builder.
    pub builderid: BuilderId,
    /// Its newest finished build, however long ago it ran.
    pub last_finished: Option<BuildRecord>,
    /// Mean duration in seconds of its last ten finished builds (for ETAs).
    pub recent_duration_s: Option<i64>,
}

/// Which builds a build list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct BuildFilter {
    /// Only these builders (None: all).
    pub builders: Option<Vec<BuilderId>>,
    /// Only builds whose first source stamp is on one of these branches (empty: all).
    pub branches: Vec<String>,
    /// Only finished builds with one of these results (None: any, running included).
    pub results: Option<Vec<Results>>,
    /// Only builds started strictly before this time.
    pub started_before: Option<Timestamp>,
    /// Only builds started at or after this time.
    pub started_after: Option<Timestamp>,
    /// Only builds having every (name, value) property; values match their JSON text or
    /// their plain text.
    pub properties: Vec<(String, String)>,
    /// Only finished builds.
    pub finished_only: bool,
    /// Order by completion time instead of start time.
    pub by_completion: bool,
    /// At most this many.
    pub limit: i64,
}

/// A build with the branch and revision of its first source stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRow {
    /// The build.
    pub build: BuildRecord,
    /// Branch of its first source stamp.
    pub branch: Option<String>,
    /// Revision of its first source stamp.
    pub revision: Option<String>,
}

/// Which changes the revision pages show, newest first.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// Only these branches (empty: all).
    pub branches: Vec<String>,
    /// Only these repositories (empty: all).
    pub repositories: Vec<String>,
    /// Only these projects (empty: all).
    pub projects: Vec<String>,
    /// Only these codebases (empty: all).
    pub codebases: Vec<String>,
    /// Only these categories (empty: all).
    pub categories: Vec<String>,
    /// Only these authors (empty: all); matched as a prefix, so `alice` finds `alice <a@x>`.
    pub authors: Vec<String>,
    /// Order by `when_timestamp` instead of change id.
    pub by_time: bool,
    /// At most this many.
    pub limit: i64,
}

/// Appends `column IN (…)` for `values` to `conditions`.
fn any_of(
    conditions: &mut Vec<String>,
    binds: &mut Vec<SqlValue>,
    column: &str,
    values: Vec<SqlValue>,
) {
    let start = binds.len() + 1;
    conditions.push(format!(
        "{column} IN ({})",
        placeholders(start, values.len())
    ));
    binds.extend(values);
}

impl Store {
    /// Every builder (or those of `builders`) with its newest finished build and recent mean
    /// duration, in one statement: each correlated subquery walks the (builderid, number)
    /// index backwards and stops at once.
    /// With `branches`, the newest finished build on one of those branches counts.
    pub async fn builder_summaries(
        &self,
        builders: Option<&[BuilderId]>,
        branches: &[String],
    ) -> Result<Vec<BuilderSummary>, StoreError> {
        // SQLite numbers `$n` parameters in order of first appearance: branches come first.
        let branch_clause = if branches.is_empty() {
            String::new()
        } else {
            format!(
                " AND EXISTS (SELECT 1 FROM buildrequests br2
                   JOIN buildset_sourcestamps bss ON bss.buildsetid = br2.buildsetid
                   JOIN sourcestamps ss ON ss.id = bss.sourcestampid
                   WHERE br2.id = b2.buildrequestid AND ss.branch IN ({}))",
                placeholders(1, branches.len())
            )
        };
        let clause = match builders {
            None => String::new(),
            Some([]) => return Ok(Vec::new()),
            Some(list) => format!(
                " WHERE bl.id IN ({})",
                placeholders(branches.len() + 1, list.len())
            ),
        };
        let sql = format!(
            "SELECT {BUILD_COLUMNS}, bl.id,
                (SELECT CAST(AVG(d.duration) AS BIGINT) FROM
                   (SELECT b3.complete_at - b3.started_at AS duration FROM builds b3
                    WHERE b3.builderid = bl.id AND b3.complete_at IS NOT NULL
                    ORDER BY b3.number DESC LIMIT 10) d)
             FROM builders bl
             LEFT JOIN builds b ON b.id =
                (SELECT b2.id FROM builds b2 WHERE b2.builderid = bl.id AND b2.complete_at IS NOT NULL
{branch_clause}
                 ORDER BY b2.number DESC LIMIT 1){clause}
             ORDER BY bl.id"
        );
        let args: Vec<SqlValue> = branches
            .iter()
            .cloned()
            .map(SqlValue::Text)
            .chain(
                builders
                    .unwrap_or_default()
                    .iter()
                    .map(|b| SqlValue::Int(b.0)),
            )
            .collect();
        let rows = self.read_rows("builder_summaries", sql, &args).await?;
        let columns = BUILD_COLUMNS.split(',').count();
        rows.decode(|row| {
            let last_finished = match opt_int(row, 0)? {
                Some(_) => Some(build_record(row)?),
                None => None,
            };
            Ok(BuilderSummary {
                builderid: BuilderId(int(row, columns)?),
                last_finished,
                recent_duration_s: opt_int(row, columns + 1)?,
            })
        })
    }

    /// Every build that has not finished, on any master, oldest first.
    pub async fn builds_running(&self) -> Result<Vec<BuildRecord>, StoreError> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM builds b WHERE b.complete_at IS NULL ORDER BY b.id"
        );
        let rows = self.read_rows("builds_running", sql, &[]).await?;
        rows.decode(|row| build_record(row))
    }

    /// Builds matching `filter`, newest first, with their first source stamp's branch and
    /// revision.
    pub async fn builds_filtered(&self, filter: &BuildFilter) -> Result<Vec<BuildRow>, StoreError> {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        if let Some(builders) = &filter.builders {
            if builders.is_empty() {
                return Ok(Vec::new());
            }
            let values = builders.iter().map(|b| SqlValue::Int(b.0)).collect();
            any_of(&mut conditions, &mut binds, "b.builderid", values);
        }
        if let Some(results) = &filter.results {
            if results.is_empty() {
                return Ok(Vec::new());
            }
            let values = results.iter().map(|r| SqlValue::Int(r.code())).collect();
            any_of(&mut conditions, &mut binds, "b.results", values);
        }
        if filter.finished_only {
            conditions.push("b.complete_at IS NOT NULL".to_string());
        }
        if let Some(t) = filter.started_before {
            binds.push(SqlValue::Int(t));
            conditions.push(format!("b.started_at < ${}", binds.len()));
        }
        if let Some(t) = filter.started_after {
            binds.push(SqlValue::Int(t));
            conditions.push(format!("b.started_at >= ${}", binds.len()));
        }
        for (name, value) in &filter.properties {
            binds.push(SqlValue::Text(name.clone()));
            let n = binds.len();
            binds.push(SqlValue::Text(
                serde_json::Value::String(value.clone()).to_string(),
            ));
            binds.push(SqlValue::Text(value.clone()));
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM build_properties p WHERE p.buildid = b.id AND p.name = ${n} \
                 AND p.value IN (${}, ${}))",
                n + 1,
                n + 2
            ));
        }
        if !filter.branches.is_empty() {
            let start = binds.len() + 1;
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM buildset_sourcestamps bss2
                   JOIN sourcestamps ss2 ON ss2.id = bss2.sourcestampid
                   WHERE bss2.buildsetid = br.buildsetid AND ss2.branch IN ({}))",
                placeholders(start, filter.branches.len())
            ));
            binds.extend(filter.branches.iter().cloned().map(SqlValue::Text));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        binds.push(SqlValue::Int(filter.limit.max(0)));
        let limit = binds.len();
        let order = if filter.by_completion {
            "b.complete_at DESC, b.id DESC"
        } else {
            "b.started_at DESC, b.id DESC"
        };
        let first_ss = "(SELECT MIN(bss.sourcestampid) FROM buildset_sourcestamps bss \
                         WHERE bss.buildsetid = br.buildsetid)";
        let sql = format!(
            "SELECT {BUILD_COLUMNS}, ss.branch, ss.revision
             FROM builds b JOIN buildrequests br ON br.id = b.buildrequestid
             LEFT JOIN sourcestamps ss ON ss.id = {first_ss}
             {where_clause} ORDER BY {order} LIMIT ${limit}"
        );
        let rows = self.read_rows("builds_filtered", sql, &binds).await?;
        let columns = BUILD_COLUMNS.split(',').count();
        rows.decode(|row| {
            Ok(BuildRow {
                build: build_record(row)?,
                branch: opt_text(row, columns)?,
                revision: opt_text(row, columns + 1)?,
            })
        })
    }

    /// Many builds by id in one query, by id (the live cells of a batch of events).
    pub async fn builds_by_ids(&self, ids: &[BuildId]) -> Result<Vec<BuildRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM builds b WHERE b.id IN ({}) ORDER BY b.id",
            placeholders(1, ids.len())
        );
        let args: Vec<SqlValue> = ids.iter().map(|id| SqlValue::Int(id.0)).collect();
        let rows = self.read_rows("builds_by_ids", sql, &args).await?;
        rows.decode(|row| build_record(row))
    }

    /// For each of `ids`, the results of the previous finished build of the same builder
    /// (None: it is the builder's first), in one query: the console tells a new failure
    /// from one that goes on.
    pub async fn previous_results(
        &self,
        ids: &[BuildId],
    ) -> Result<Vec<(BuildId, Option<Results>)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT b.id, (SELECT p.results FROM builds p WHERE p.builderid = b.builderid
                  AND p.number < b.number AND p.complete_at IS NOT NULL
                  ORDER BY p.number DESC LIMIT 1)
             FROM builds b WHERE b.id IN ({})",
            placeholders(1, ids.len())
        );
        let args: Vec<SqlValue> = ids.iter().map(|id| SqlValue::Int(id.0)).collect();
        let rows = self.read_rows("previous_results", sql, &args).await?;
        rows.decode(|row| {
            Ok((
                BuildId(int(row, 0)?),
                crate::decode::results(row, 1, "builds")?,
            ))
        })
    }

    /// The steps of many builds in one query, by build then number.
    pub async fn steps_for_builds(&self, ids: &[BuildId]) -> Result<Vec<StepRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM steps s WHERE s.buildid IN ({}) ORDER BY s.buildid, s.number",
            placeholders(1, ids.len())
        );
        let args: Vec<SqlValue> = ids.iter().map(|id| SqlValue::Int(id.0)).collect();
        let rows = self.read_rows("steps_for_builds", sql, &args).await?;
        rows.decode(|row| step_record(row))
    }

    /// Changes matching `filter`, newest first, with files and properties.
    pub async fn changes_filtered(
        &self,
        filter: &ChangeFilter,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        let lists: [(&str, &Vec<String>); 5] = [
            ("c.branch", &filter.branches),
            ("c.repository", &filter.repositories),
            ("c.project", &filter.projects),
            ("c.codebase", &filter.codebases),
            ("c.category", &filter.categories),
        ];
        for (column, values) in lists {
            if !values.is_empty() {
                let values = values.iter().cloned().map(SqlValue::Text).collect();
                any_of(&mut conditions, &mut binds, column, values);
            }
        }
        if !filter.authors.is_empty() {
            let mut ors = Vec::new();
            for author in &filter.authors {
                binds.push(SqlValue::Text(author.clone()));
                let n = binds.len();
                ors.push(format!("c.author = ${n} OR c.author LIKE ${n} || ' %'"));
            }
            conditions.push(format!("({})", ors.join(" OR ")));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        binds.push(SqlValue::Int(filter.limit.max(0)));
        let limit = binds.len();
        let order = if filter.by_time {
            "c.when_timestamp DESC, c.changeid DESC"
        } else {
            "c.changeid DESC"
        };
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM changes c {where_clause} ORDER BY {order} LIMIT ${limit}"
        );
        let rows = self.read_rows("changes_filtered", sql, &binds).await?;
        let mut records = rows.decode(|row| change_record(row))?;
        self.fill_change_children(&mut records).await?;
        Ok(records)
    }

    /// Every build of buildsets that used one of `sourcestamps`, with the stamp, in one
    /// query (the console and grid place builds by revision, not "the last N builds").
    pub async fn builds_for_sourcestamps(
        &self,
        sourcestamps: &[SourceStampId],
    ) -> Result<Vec<(SourceStampId, BuildRecord)>, StoreError> {
        if sourcestamps.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {BUILD_COLUMNS}, bss.sourcestampid FROM buildset_sourcestamps bss
             JOIN buildrequests br ON br.buildsetid = bss.buildsetid
             JOIN builds b ON b.buildrequestid = br.id
             WHERE bss.sourcestampid IN ({}) ORDER BY b.id",
            placeholders(1, sourcestamps.len())
        );
        let args: Vec<SqlValue> = sourcestamps.iter().map(|id| SqlValue::Int(id.0)).collect();
        let rows = self
            .read_rows("builds_for_sourcestamps", sql, &args)
            .await?;
        let columns = BUILD_COLUMNS.split(',').count();
        rows.decode(|row| Ok((SourceStampId(int(row, columns)?), build_record(row)?)))
    }

    /// Finished builds of `builder`, newest first: (started_at, complete_at, results) for
    /// the duration and pass-rate charts.
    pub async fn builder_history(
        &self,
        builder: BuilderId,
        limit: i64,
    ) -> Result<Vec<(i64, Timestamp, Timestamp, Option<Results>)>, StoreError> {
        let sql = "SELECT b.number, b.started_at, b.complete_at, b.results FROM builds b
                   WHERE b.builderid = $1 AND b.complete_at IS NOT NULL
                   ORDER BY b.number DESC LIMIT $2";
        let args = [SqlValue::Int(builder.0), SqlValue::Int(limit)];
        let rows = self
            .read_rows("builder_history", sql.to_string(), &args)
            .await?;
        rows.decode(|row| {
            Ok((
                int(row, 0)?,
                int(row, 1)?,
                int(row, 2)?,
                crate::decode::results(row, 3, "builds")?,
            ))
        })
    }

    /// The logs of many steps in one query, by step then id.
    pub async fn logs_for_steps(&self, ids: &[StepId]) -> Result<Vec<LogRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM logs l WHERE l.stepid IN ({}) ORDER BY l.stepid, l.id",
            placeholders(1, ids.len())
        );
        let args: Vec<SqlValue> = ids.iter().map(|id| SqlValue::Int(id.0)).collect();
        let rows = self.read_rows("logs_for_steps", sql, &args).await?;
        rows.decode(|row| log_record(row))
    }

    /// The newest build of `builder` whose source stamps include `revision`.
    pub async fn build_for_revision(
        &self,
        builder: BuilderId,
        revision: &str,
    ) -> Result<Option<BuildRecord>, StoreError> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM builds b
             JOIN buildrequests br ON br.id = b.buildrequestid
             JOIN buildset_sourcestamps bss ON bss.buildsetid = br.buildsetid
             JOIN sourcestamps ss ON ss.id = bss.sourcestampid
             WHERE b.builderid = $1 AND ss.revision = $2 ORDER BY b.number DESC LIMIT 1"
        );
        let args = [
            SqlValue::Int(builder.0),
            SqlValue::Text(revision.to_string()),
        ];
        let rows = self.read_rows("build_for_revision", sql, &args).await?;
        Ok(rows.decode(|row| build_record(row))?.into_iter().next())
    }
}
