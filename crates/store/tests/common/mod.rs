//! Test databases: a temporary SQLite file, and a fresh PostgreSQL database when
//! `SIGNALBOX_TEST_PG_URL` names a server (its user must be allowed to create databases).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, Connection, Executor};
use store::Store;

/// A store on a database that exists only for one test.
pub struct TestDb {
    /// The store under test, already upgraded.
    pub store: Store,
    /// Keeps the SQLite file alive.
    _dir: Option<tempfile::TempDir>,
    /// (admin url, database name) to drop afterwards.
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite database in a temporary directory, with the schema created.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("state.sqlite").display());
        let store = Store::connect(&url).await.expect("connect to sqlite");
        TestDb {
            store,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` when `SIGNALBOX_TEST_PG_URL` is unset.
    pub async fn postgres() -> Option<TestDb> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let Ok(admin) = std::env::var("SIGNALBOX_TEST_PG_URL") else {
            eprintln!("SIGNALBOX_TEST_PG_URL is not set; skipping the PostgreSQL run");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "signalbox_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to SIGNALBOX_TEST_PG_URL");
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        conn.close().await.ok();
        let store = Store::connect(&with_database(&admin, &name))
            .await
            .expect("connect to test database");
        Some(TestDb {
            store,
            _dir: None,
            pg: Some((admin, name)),
        })
    }

    /// Closes the store and drops a PostgreSQL test database.
    pub async fn finish(self) {
        self.store.close().await;
        let Some((admin, name)) = self.pg else {
            return;
        };
        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
            conn.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .await
                .ok();
            conn.close().await.ok();
        }
    }
}

/// `url` pointing at database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Runs an async test function on SQLite and, when configured, on PostgreSQL.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite().await;
                super::$name(&db.store).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::common::TestDb::postgres().await else {
                    return;
                };
                super::$name(&db.store).await;
                db.finish().await;
            }
        }
    )*};
}
