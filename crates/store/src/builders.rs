//! Builders, their projects and tags, and which masters run them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use model::{BuilderId, MasterId, ProjectId};
use sqlx::AssertSqlSafe;

use crate::decode::int;
use crate::error::{Context, StoreError};
use crate::list::{FilterOp, FilterSpec, ListQuery, SqlValue};
use crate::{identifier, placeholders, BuilderRecord, Store};

/// Every builder with its tags and masters, kept in memory on SQLite, where this master is
/// the only writer: the list changes only on reconfig and master start and stop, and every
/// page and the REST builders list read it. PostgreSQL always queries, since other masters
/// change the builders' masters there.
#[derive(Debug, Default)]
pub(crate) struct BuilderList {
    /// Bumped after each committed write to builders, their tags or their masters. A reader
    /// keeps what it loaded only if no write committed meanwhile.
    generation: AtomicU64,
    loaded: Mutex<Option<(u64, Arc<Vec<BuilderRecord>>)>>,
}

impl BuilderList {
    fn cached(&self) -> Option<Arc<Vec<BuilderRecord>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        match &*loaded {
            Some((g, list)) if *g == generation => Some(list.clone()),
            _ => None,
        }
    }

    fn keep(&self, generation: u64, list: Arc<Vec<BuilderRecord>>) {
        if self.generation.load(Ordering::Acquire) == generation {
            *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, list));
        }
    }

    /// Called after a write commits.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// Every builder in id order, from memory (see [`BuilderList`]); SQLite only.
    pub(crate) async fn builders_all(&self) -> Result<Arc<Vec<BuilderRecord>>, StoreError> {
        if let Some(list) = self.builders.cached() {
            return Ok(list);
        }
        let generation = self.builders.generation.load(Ordering::Acquire);
        let (records, _) = self.builders_query(&ListQuery::all()).await?;
        let list = Arc::new(records);
        self.builders.keep(generation, list.clone());
        Ok(list)
    }

    /// Creates or updates builder `name` with its description, project (created if new)
    /// and tags (replacing the old ones). One transaction.
    pub async fn builder_upsert(
        &self,
        name: &str,
        description: Option<&str>,
        project: Option<&str>,
        tags: &[String],
    ) -> Result<BuilderId, StoreError> {
        const OP: &str = "builder_upsert";
        let mut tx = self.write_tx(OP).await?;
        let projectid = match project {
            None => None,
            Some(project) => {
                let row = sqlx::query(
                    "INSERT INTO projects (name, slug) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
                )
                .bind(project)
                .bind(identifier::force(project))
                .fetch_one(&mut *tx)
                .await
                .ctx(OP)?;
                Some(int(&row, 0)?)
            }
        };
        let row = sqlx::query(
            "INSERT INTO builders (name, description, projectid) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, projectid = excluded.projectid
             RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(projectid)
        .fetch_one(&mut *tx)
        .await
        .ctx(OP)?;
        let builderid = int(&row, 0)?;
        sqlx::query("DELETE FROM builders_tags WHERE builderid = $1")
            .bind(builderid)
            .execute(&mut *tx)
            .await
            .ctx(OP)?;
        for tag in tags {
            let row = sqlx::query(
                "INSERT INTO tags (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(tag.as_str())
            .fetch_one(&mut *tx)
            .await
            .ctx(OP)?;
            sqlx::query("INSERT INTO builders_tags (builderid, tagid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(builderid)
                .bind(int(&row, 0)?)
                .execute(&mut *tx)
                .await
                .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)?;
        self.builders.changed();
        Ok(BuilderId(builderid))
    }

    /// Makes `active` exactly the builders that `master` runs. Rows of builders that stay
    /// are kept, so their configured workers survive.
    pub async fn builder_set_masters(
        &self,
        master: MasterId,
        active: &[BuilderId],
    ) -> Result<(), StoreError> {
        const OP: &str = "builder_set_masters";
        let mut tx = self.write_tx(OP).await?;
        let sql = match active.len() {
            0 => "DELETE FROM builder_masters WHERE masterid = $1".to_string(),
            n => format!(
                "DELETE FROM builder_masters WHERE masterid = $1 AND builderid NOT IN ({})",
                placeholders(2, n)
            ),
        };
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(master.0);
        for b in active {
            query = query.bind(b.0);
        }
        query.execute(&mut *tx).await.ctx(OP)?;
        for b in active {
            sqlx::query("INSERT INTO builder_masters (builderid, masterid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(b.0)
                .bind(master.0)
                .execute(&mut *tx)
                .await
                .ctx(OP)?;
        }
        tx.commit().await.ctx(OP)?;
        self.builders.changed();
        Ok(())
    }

    /// The id of builder `name`.
    pub async fn builder_id(&self, name: &str) -> Result<Option<BuilderId>, StoreError> {
        let row = sqlx::query("SELECT id FROM builders WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ctx("builder_id")?;
        row.map(|r| int(&r, 0).map(BuilderId)).transpose()
    }

    /// One builder with its tags and masters.
    pub async fn builder_get(&self, id: BuilderId) -> Result<Option<BuilderRecord>, StoreError> {
        let query = ListQuery::filtered(vec![FilterSpec::new(
            "builderid",
            FilterOp::Eq,
            vec![SqlValue::Int(id.0)],
        )]);
        Ok(self.builders_list(&query).await?.0.into_iter().next())
    }

    /// The id of project `name`.
    pub async fn project_id(&self, name: &str) -> Result<Option<ProjectId>, StoreError> {
        let row = sqlx::query("SELECT id FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ctx("project_id")?;
        row.map(|r| int(&r, 0).map(ProjectId)).transpose()
    }
}
