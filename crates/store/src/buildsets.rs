//! Source stamps, buildsets and build requests: submission, claims and completion.

use std::collections::BTreeMap;

use model::{
    BuildRequestId, BuilderId, BuildsetId, MasterId, Properties, Results, SourceStampId, Timestamp,
};
use sha1::{Digest, Sha1};
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::decode::{
    add_property_pair, blob, flag, int, opt_int, opt_text, property_pair, results, text, Columns,
};
use crate::error::{Context, StoreError};
use crate::list::SqlValue;
use crate::{
    placeholders, Backend, BuildRequestRecord, BuildsetRecord, NewBuildset, NewSourceStamp,
    PatchRecord, SourceStampRecord, Store,
};

/// Columns decoded by [`sourcestamp_record`]; needs `sourcestamps ss LEFT JOIN patches p`.
pub(crate) const SOURCESTAMP_COLUMNS: &str =
    "ss.id, ss.branch, ss.revision, ss.repository, ss.codebase, ss.project, \
     ss.created_at, p.id, p.patchlevel, p.subdir, p.patch_author, p.patch_comment, p.patch_body";

/// Columns decoded by [`buildset_record`] (without source stamps); needs `buildsets bs`.
pub(crate) const BUILDSET_COLUMNS: &str =
    "bs.id, bs.external_idstring, bs.reason, bs.submitted_at, bs.complete, \
     bs.complete_at, bs.results, bs.parent_buildid, bs.parent_relationship, bs.rebuilt_buildid";

/// Columns decoded by [`buildrequest_record`]; needs `buildrequests br LEFT JOIN buildrequest_claims c`.
pub(crate) const BUILDREQUEST_COLUMNS: &str =
    "br.id, br.buildsetid, br.builderid, br.priority, br.complete, \
     br.results, br.submitted_at, br.complete_at, br.waited_for, c.masterid, c.claimed_at";

/// The FROM clause that goes with [`BUILDREQUEST_COLUMNS`].
pub(crate) const BUILDREQUEST_FROM: &str =
    "buildrequests br LEFT JOIN buildrequest_claims c ON c.brid = br.id";

impl Store {
    /// Submits a buildset: its row, properties, source stamps and one request per builder,
    /// in one transaction. Returns the buildset and the (builder, request) pairs.
    pub async fn buildset_add(
        &self,
        b: &NewBuildset,
    ) -> Result<(BuildsetId, Vec<(BuilderId, BuildRequestId)>), StoreError> {
        const OP: &str = "buildset_add";
        let mut tx = self.write_tx(OP).await?;
        let row = sqlx::query(
            "INSERT INTO buildsets (external_idstring, reason, submitted_at, complete, results,
                 parent_buildid, parent_relationship, rebuilt_buildid)
             VALUES ($1, $2, $3, 0, -1, $4, $5, $6) RETURNING id",
        )
        .bind(b.external_idstring.as_deref())
        .bind(b.reason.as_str())
        .bind(b.submitted_at)
        .bind(b.parent_buildid.map(|id| id.0))
        .bind(b.parent_relationship.as_deref())
        .bind(b.rebuilt_buildid.map(|id| id.0))
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        let bsid = int(&row, 0)?;
        for (name, value, source) in b.properties.iter() {
            sqlx::query("INSERT INTO buildset_properties (buildsetid, property_name, property_value) VALUES ($1, $2, $3)")
                .bind(bsid)
                .bind(name)
                .bind(property_pair(value, source))
                .execute(&mut *tx)
                .await
                .ctx(OP)?;
        }
        for ss in &b.sourcestamps {
            let (ssid, _) = find_or_create_sourcestamp(&mut tx, ss, b.submitted_at).await?;
            sqlx::query(
                "INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(bsid)
            .bind(ssid.0)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        }
        let mut requests = Vec::with_capacity(b.builders.len());
        for builder in &b.builders {
            let row = sqlx::query(
                "INSERT INTO buildrequests (buildsetid, builderid, priority, complete, results, submitted_at, waited_for)
                 VALUES ($1, $2, $3, 0, -1, $4, $5) RETURNING id",
            )
            .bind(bsid)
            .bind(builder.0)
            .bind(b.priority)
            .bind(b.submitted_at)
            .bind(b.waited_for as i64)
            .fetch_one(&mut *tx)
            .await
            .ctx(OP)?;
            requests.push((*builder, BuildRequestId(int(&row, 0)?)));
        }
        tx.commit().await.ctx(OP)?;
        Ok((BuildsetId(bsid), requests))
    }

    /// One buildset with its source stamps.
    pub async fn buildset_get(&self, id: BuildsetId) -> Result<Option<BuildsetRecord>, StoreError> {
        let sql = format!("SELECT {BUILDSET_COLUMNS} FROM buildsets bs WHERE bs.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("buildset_get")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut record = buildset_record(&row)?;
        record.sourcestamps = self.buildset_sourcestamps(id).await?;
        Ok(Some(record))
    }

    /// The properties of a buildset.
    pub async fn buildset_properties(&self, id: BuildsetId) -> Result<Properties, StoreError> {
        let rows = sqlx::query(
            "SELECT property_name, property_value FROM buildset_properties WHERE buildsetid = $1",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .ctx("buildset_properties")?;
        let mut props = Properties::new();
        for row in &rows {
            add_property_pair(
                &mut props,
                text(row, 0)?,
                &text(row, 1)?,
                "buildset_properties",
            )?;
        }
        Ok(props)
    }

    /// The properties of several buildsets in one query (for `property=` on build requests).
    pub async fn buildsets_properties(
        &self,
        ids: &[BuildsetId],
    ) -> Result<BTreeMap<BuildsetId, Properties>, StoreError> {
        let mut map: BTreeMap<BuildsetId, Properties> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(map);
        }
        let sql = format!(
            "SELECT buildsetid, property_name, property_value FROM buildset_properties
             WHERE buildsetid IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        for row in query
            .fetch_all(&self.pool)
            .await
            .ctx("buildsets_properties")?
        {
            add_property_pair(
                map.entry(BuildsetId(int(&row, 0)?)).or_default(),
                text(&row, 1)?,
                &text(&row, 2)?,
                "buildset_properties",
            )?;
        }
        Ok(map)
    }

    /// The source stamps of a buildset, in insertion order.
    pub async fn buildset_sourcestamps(
        &self,
        id: BuildsetId,
    ) -> Result<Vec<SourceStampRecord>, StoreError> {
        let mut map = self.buildsets_sourcestamps(&[id.0]).await?;
        Ok(map.remove(&id.0).unwrap_or_default())
    }

    /// Source stamps of many buildsets in one query, keyed by buildset id.
    pub async fn buildsets_sourcestamps(
        &self,
        ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<SourceStampRecord>>, StoreError> {
        let mut map: BTreeMap<i64, Vec<SourceStampRecord>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(map);
        }
        let sql = format!(
            "SELECT bss.buildsetid, {SOURCESTAMP_COLUMNS} FROM buildset_sourcestamps bss
             JOIN sourcestamps ss ON ss.id = bss.sourcestampid LEFT JOIN patches p ON p.id = ss.patchid
             WHERE bss.buildsetid IN ({}) ORDER BY bss.id",
            placeholders(1, ids.len())
        );
        let args: Vec<SqlValue> = ids.iter().map(|id| SqlValue::Int(*id)).collect();
        let rows = self.read_rows("buildset_sourcestamps", sql, &args).await?;
        rows.for_each(|row| {
            map.entry(int(row, 0)?)
                .or_default()
                .push(sourcestamp_record(row, 1)?);
            Ok(())
        })?;
        Ok(map)
    }

    /// One source stamp.
    pub async fn sourcestamp_get(
        &self,
        id: SourceStampId,
    ) -> Result<Option<SourceStampRecord>, StoreError> {
        let sql = format!(
            "SELECT {SOURCESTAMP_COLUMNS} FROM sourcestamps ss LEFT JOIN patches p ON p.id = ss.patchid WHERE ss.id = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("sourcestamp_get")?;
        row.map(|r| sourcestamp_record(&r, 0)).transpose()
    }

    /// Incomplete, unclaimed requests, optionally only for `builders`; highest priority
    /// first, then oldest, then by id.
    pub async fn buildrequests_unclaimed(
        &self,
        builders: Option<&[BuilderId]>,
    ) -> Result<Vec<BuildRequestRecord>, StoreError> {
        let builder_clause = match builders {
            None => String::new(),
            Some([]) => return Ok(Vec::new()),
            Some(list) => format!(" AND br.builderid IN ({})", placeholders(1, list.len())),
        };
        let sql = format!(
            "SELECT {BUILDREQUEST_COLUMNS} FROM {BUILDREQUEST_FROM}
             WHERE br.complete = 0 AND c.brid IS NULL{builder_clause}
             ORDER BY br.priority DESC, br.submitted_at, br.id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in builders.unwrap_or_default() {
            query = query.bind(b.0);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .ctx("buildrequests_unclaimed")?;
        rows.iter().map(buildrequest_record).collect()
    }

    /// Claims every request of `ids` for `master`, or none: false when any was already claimed.
    pub async fn buildrequests_claim(
        &self,
        ids: &[BuildRequestId],
        master: MasterId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "buildrequests_claim";
        // Inserting in id order keeps two masters claiming overlapping sets from deadlocking.
        let mut sorted = ids.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut tx = self.write_tx(OP).await?;
        for id in &sorted {
            let result = sqlx::query(
                "INSERT INTO buildrequest_claims (brid, masterid, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(master.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
            if result.rows_affected() == 0 {
                tx.rollback().await.ctx(OP)?;
                return Ok(false);
            }
        }
        tx.commit().await.ctx(OP)?;
        Ok(true)
    }

    /// Releases the claims that `master` holds on `ids`.
    pub async fn buildrequests_unclaim(
        &self,
        ids: &[BuildRequestId],
        master: MasterId,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM buildrequest_claims WHERE masterid = $1 AND brid IN ({})",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(master.0);
        for id in ids {
            query = query.bind(id.0);
        }
        query
            .execute(&self.writer)
            .await
            .ctx("buildrequests_unclaim")?;
        Ok(())
    }

    /// Completes requests with `results`; a buildset whose requests are now all complete is
    /// completed too, with the worst of their results, in the same transaction. Returns the
    /// buildsets that became complete.
    pub async fn buildrequests_complete(
        &self,
        ids: &[BuildRequestId],
        results: Results,
        now: Timestamp,
    ) -> Result<Vec<BuildsetId>, StoreError> {
        const OP: &str = "buildrequests_complete";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx(OP).await?;
        if self.backend == Backend::Postgres {
            // Lock the buildsets first: two masters completing the last two requests of one
            // buildset would otherwise each see the other's request still incomplete.
            let sql = format!(
                "SELECT id FROM buildsets WHERE id IN (SELECT buildsetid FROM buildrequests WHERE id IN ({}))
                 ORDER BY id FOR UPDATE",
                placeholders(1, ids.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in ids {
                query = query.bind(id.0);
            }
            query.fetch_all(&mut *tx).await.ctx(OP)?;
        }
        let sql = format!(
            "UPDATE buildrequests SET complete = 1, results = $1, complete_at = $2 WHERE complete = 0 AND id IN ({})",
            placeholders(3, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(results.code())
            .bind(now);
        for id in ids {
            query = query.bind(id.0);
        }
        query.execute(&mut *tx).await.ctx(OP)?;

        let sql = format!(
            "SELECT buildsetid, complete, results FROM buildrequests
             WHERE buildsetid IN (SELECT buildsetid FROM buildrequests WHERE id IN ({}))",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.0);
        }
        // Per buildset: None once an incomplete request is seen, else the worst result so far.
        let mut outcome: BTreeMap<i64, Option<Results>> = BTreeMap::new();
        for row in query.fetch_all(&mut *tx).await.ctx(OP)? {
            let bsid = int(&row, 0)?;
            let request = match flag(&row, 1)? {
                true => self::results(&row, 2, "buildrequests")?.or(Some(Results::Success)),
                false => None,
            };
            let entry = outcome.entry(bsid).or_insert(Some(Results::Skipped));
            *entry = match (*entry, request) {
                (Some(worst), Some(r)) => Some(worst.worst(r)),
                _ => None,
            };
        }
        let mut completed = Vec::new();
        for (bsid, worst) in outcome {
            let Some(worst) = worst else {
                continue;
            };
            let result = sqlx::query(
                "UPDATE buildsets SET complete = 1, complete_at = $1, results = $2 WHERE id = $3 AND complete = 0",
            )
            .bind(now)
            .bind(worst.code())
            .bind(bsid)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
            if result.rows_affected() > 0 {
                completed.push(BuildsetId(bsid));
            }
        }
        tx.commit().await.ctx(OP)?;
        Ok(completed)
    }

    /// One build request with its claim.
    pub async fn buildrequest_get(
        &self,
        id: BuildRequestId,
    ) -> Result<Option<BuildRequestRecord>, StoreError> {
        let sql =
            format!("SELECT {BUILDREQUEST_COLUMNS} FROM {BUILDREQUEST_FROM} WHERE br.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("buildrequest_get")?;
        row.as_ref().map(buildrequest_record).transpose()
    }

    /// Requests claimed by `master` and not complete (crash recovery).
    pub async fn claims_held_by_master(
        &self,
        master: MasterId,
    ) -> Result<Vec<BuildRequestId>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.brid FROM buildrequest_claims c JOIN buildrequests br ON br.id = c.brid
             WHERE c.masterid = $1 AND br.complete = 0 ORDER BY c.brid",
        )
        .bind(master.0)
        .fetch_all(&self.pool)
        .await
        .ctx("claims_held_by_master")?;
        rows.iter().map(|r| int(r, 0).map(BuildRequestId)).collect()
    }
}

/// Finds the source stamp identical to `ss` or creates it; a patched stamp is always new.
pub(crate) async fn find_or_create_sourcestamp(
    conn: &mut AnyConnection,
    ss: &NewSourceStamp,
    now: Timestamp,
) -> Result<(SourceStampId, Timestamp), StoreError> {
    const OP: &str = "find_or_create_sourcestamp";
    let patchid = match &ss.patch {
        None => None,
        Some(patch) => {
            let row = sqlx::query(
                "INSERT INTO patches (patchlevel, patch_body, patch_author, patch_comment, subdir)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(patch.level)
            .bind(patch.body.clone())
            .bind(patch.author.as_deref())
            .bind(patch.comment.as_deref())
            .bind(patch.subdir.as_deref())
            .fetch_one(&mut *conn)
            .await
            .ctx(OP)?;
            Some(int(&row, 0)?)
        }
    };
    let row = sqlx::query(
        "INSERT INTO sourcestamps (ss_hash, branch, revision, patchid, repository, codebase, project, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (ss_hash) DO UPDATE SET ss_hash = excluded.ss_hash RETURNING id, created_at",
    )
    .bind(sourcestamp_hash(ss, patchid))
    .bind(ss.branch.as_deref())
    .bind(ss.revision.as_deref())
    .bind(patchid)
    .bind(ss.repository.as_str())
    .bind(ss.codebase.as_str())
    .bind(ss.project.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .ctx(OP)?;
    Ok((SourceStampId(int(&row, 0)?), int(&row, 1)?))
}

/// SHA-1 hex of the fields that make two source stamps the same one.
pub(crate) fn sourcestamp_hash(ss: &NewSourceStamp, patchid: Option<i64>) -> String {
    let mut hasher = Sha1::new();
    let fields = [
        ss.branch.as_deref(),
        ss.revision.as_deref(),
        Some(ss.repository.as_str()),
        Some(ss.codebase.as_str()),
        Some(ss.project.as_str()),
    ];
    for field in fields {
        match field {
            // A NUL byte cannot occur in these texts, so it separates fields unambiguously;
            // a missing value is marked apart from an empty one.
            None => hasher.update(b"\x01\x00"),
            Some(s) => {
                hasher.update(s.as_bytes());
                hasher.update(b"\x00");
            }
        }
    }
    if let Some(id) = patchid {
        hasher.update(id.to_string().as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decodes [`SOURCESTAMP_COLUMNS`] starting at column `at`.
pub(crate) fn sourcestamp_record<R: Columns + ?Sized>(
    row: &R,
    at: usize,
) -> Result<SourceStampRecord, StoreError> {
    let patch = match opt_int(row, at + 7)? {
        None => None,
        Some(id) => Some(PatchRecord {
            id,
            level: int(row, at + 8)?,
            subdir: opt_text(row, at + 9)?,
            author: opt_text(row, at + 10)?,
            comment: opt_text(row, at + 11)?,
            body: blob(row, at + 12)?,
        }),
    };
    Ok(SourceStampRecord {
        id: SourceStampId(int(row, at)?),
        branch: opt_text(row, at + 1)?,
        revision: opt_text(row, at + 2)?,
        repository: text(row, at + 3)?,
        codebase: text(row, at + 4)?,
        project: text(row, at + 5)?,
        created_at: int(row, at + 6)?,
        patch,
    })
}

/// Decodes [`BUILDSET_COLUMNS`]; source stamps are left empty.
pub(crate) fn buildset_record<R: Columns + ?Sized>(row: &R) -> Result<BuildsetRecord, StoreError> {
    Ok(BuildsetRecord {
        id: BuildsetId(int(row, 0)?),
        external_idstring: opt_text(row, 1)?,
        reason: text(row, 2)?,
        submitted_at: int(row, 3)?,
        complete: flag(row, 4)?,
        complete_at: opt_int(row, 5)?,
        results: results(row, 6, "buildsets")?,
        parent_buildid: opt_int(row, 7)?.map(model::BuildId),
        parent_relationship: opt_text(row, 8)?,
        rebuilt_buildid: opt_int(row, 9)?.map(model::BuildId),
        sourcestamps: Vec::new(),
    })
}

/// Decodes [`BUILDREQUEST_COLUMNS`].
pub(crate) fn buildrequest_record<R: Columns + ?Sized>(
    row: &R,
) -> Result<BuildRequestRecord, StoreError> {
    let claimed_by = match opt_int(row, 9)? {
        None => None,
        Some(master) => Some((MasterId(master), int(row, 10)?)),
    };
    Ok(BuildRequestRecord {
        id: BuildRequestId(int(row, 0)?),
        buildsetid: BuildsetId(int(row, 1)?),
        builderid: BuilderId(int(row, 2)?),
        priority: int(row, 3)?,
        complete: flag(row, 4)?,
        results: results(row, 5, "buildrequests")?,
        submitted_at: int(row, 6)?,
        complete_at: opt_int(row, 7)?,
        waited_for: flag(row, 8)?,
        claimed_by,
    })
}
