//! A throw-away PostgreSQL database for the metadata store of one test.

const PG: &str = "postgres://postgres@127.0.0.1:5432";

/// A fresh PostgreSQL database, dropped on drop.
pub struct TempDb {
    name: String,
}

fn pg(sql: String) {
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&format!("{PG}/postgres"))
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start)");
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    });
}

impl TempDb {
    pub fn new() -> Self {
        // One per test process and call, so tests in one binary do not collide.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("coffer_e2e_{}_{n}", std::process::id());
        pg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        pg(format!("CREATE DATABASE {name}"));
        TempDb { name }
    }

    /// The one integer `sql` (a `SELECT count(*) ...`) answers in this
    /// database.
    #[allow(dead_code)]
    pub fn count(&self, sql: &str) -> i64 {
        let (url, sql) = (self.url(), sql.to_string());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                use sqlx::{Connection, Row};
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(&sql)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
                    .get::<i64, _>(0)
            })
    }

    pub fn url(&self) -> String {
        format!("{PG}/{}", self.name)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        pg(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
