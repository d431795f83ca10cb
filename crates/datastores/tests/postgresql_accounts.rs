//! Trove's in-datastore API on a real PostgreSQL 15 server, checked with
//! `psql` as the tenant would use it: databases, users, grants, updates,
//! drops, duplicates and names that would break naive SQL.

mod postgresql_support;

use coffer_datastores::postgresql::PostgreSql;
use coffer_model::UserUpdate;
use coffer_strategy::{DatastoreError, DatastoreManager};
use postgresql_support::*;

fn is<T: std::fmt::Debug>(r: Result<T, DatastoreError>, kind: fn(&DatastoreError) -> bool) {
    match r {
        Err(e) if kind(&e) => {}
        other => panic!("unexpected {other:?}"),
    }
}
fn not_found(e: &DatastoreError) -> bool {
    matches!(e, DatastoreError::NotFound(_))
}
fn invalid(e: &DatastoreError) -> bool {
    matches!(e, DatastoreError::InvalidInput(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_users_and_access() {
    let (_dir, ctx, _guard) = started().await;
    let m = PostgreSql::new();

    // Databases, awkward names created literally.
    let names = ["app", INJECTION, "we\"ird", "other"];
    m.create_databases(&ctx, &dbs(&names)).await.unwrap();
    m.create_databases(&ctx, &dbs(&["app"])).await.unwrap();
    let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(m.list_databases(&ctx).await.unwrap(), sorted);
    is(
        m.create_databases(&ctx, &dbs(&["ok", "template1"])).await,
        invalid,
    );
    assert!(!m.list_databases(&ctx).await.unwrap().contains(&"ok".into()));
    is(m.validate_database_name(&"d".repeat(64)), invalid);

    // app reaches app and creates tables; u2 reaches nothing.
    let (app, u2) = (user("app", "secret", &["app"]), user("u2", "pw2", &[]));
    m.create_users(&ctx, &[app, u2]).await.unwrap();
    let sql = "CREATE TABLE t(i int); INSERT INTO t VALUES (1); SELECT * FROM t";
    assert_eq!(ok(&psql(&ctx, "app", "secret", "app", sql).await), "1");
    let err = failed(&psql(&ctx, "u2", "pw2", "app", "SELECT 1").await);
    assert!(err.contains("permission denied for database"), "{err}");
    failed(&psql(&ctx, "app", "secret", INJECTION, "SELECT 1").await);
    failed(&psql(&ctx, "app", "wrong", "app", "SELECT 1").await);
    let listed = m.list_users(&ctx).await.unwrap();
    assert_eq!(listed, vec![info("app", &["app"]), info("u2", &[])]);
    is(
        m.create_users(&ctx, &[user("postgres", "x", &[])]).await,
        invalid,
    );
    is(
        m.create_users(&ctx, &[user("u9", "x", &["nope"])]).await,
        not_found,
    );
    let mut hosted = user("u9", "x", &[]);
    hosted.host = "10.0.0.%".into();
    is(m.create_users(&ctx, &[hosted]).await, invalid);

    // A quote-laden user on the injection-named database.
    let odd = "o'ne\"il";
    m.create_users(&ctx, &[user(odd, "p'w\\", &[INJECTION])])
        .await
        .unwrap();
    let current = "SELECT current_database()";
    assert_eq!(
        ok(&psql(&ctx, odd, "p'w\\", INJECTION, current).await),
        INJECTION
    );
    assert!(m
        .list_databases(&ctx)
        .await
        .unwrap()
        .contains(&"app".into()));

    // Grant and revoke, seen by psql and by list_users.
    let app_db = ["app".to_string()];
    m.grant_access(&ctx, "u2", "%", &app_db).await.unwrap();
    ok(&psql(&ctx, "u2", "pw2", "app", "CREATE TABLE t2(i int)").await);
    assert!(m
        .list_users(&ctx)
        .await
        .unwrap()
        .contains(&info("u2", &["app"])));
    m.revoke_access(&ctx, "u2", "%", "app").await.unwrap();
    failed(&psql(&ctx, "u2", "pw2", "app", "SELECT 1").await);
    assert!(m.list_users(&ctx).await.unwrap().contains(&info("u2", &[])));
    is(
        m.grant_access(&ctx, "u2", "%", &["nope".into()]).await,
        not_found,
    );
    is(m.grant_access(&ctx, "ghost", "%", &app_db).await, not_found);
    is(m.revoke_access(&ctx, "ghost", "%", "app").await, not_found);
    is(m.revoke_access(&ctx, "u2", "%", "nope").await, not_found);
    is(
        m.grant_access(&ctx, "u2", "localhost", &app_db).await,
        invalid,
    );

    // A retried create converges and sets the password again.
    m.create_users(&ctx, &[user("app", "secret2", &["app"])])
        .await
        .unwrap();
    failed(&psql(&ctx, "app", "secret", "app", "SELECT 1").await);
    ok(&psql(&ctx, "app", "secret2", "app", "SELECT 1").await);

    // update_user: password, rename, conflicts.
    let pw = UserUpdate {
        password: Some("new'pw\\".into()),
        ..Default::default()
    };
    m.update_user(&ctx, "app", "%", &pw).await.unwrap();
    ok(&psql(&ctx, "app", "new'pw\\", "app", "INSERT INTO t VALUES (2)").await);
    let rename = |to: &str| UserUpdate {
        name: Some(to.into()),
        ..Default::default()
    };
    m.update_user(&ctx, "u2", "%", &rename("u3")).await.unwrap();
    ok(&psql(&ctx, "u3", "pw2", "postgres", "SELECT 1").await);
    let e = m.update_user(&ctx, "u3", "%", &rename("app")).await;
    is(e, |e| matches!(e, DatastoreError::AlreadyExists(_)));
    is(
        m.update_user(&ctx, "ghost", "%", &rename("g2")).await,
        not_found,
    );
    is(
        m.update_user(&ctx, "u3", "%", &rename("os_admin")).await,
        invalid,
    );
    let host = UserUpdate {
        host: Some("10.%".into()),
        ..Default::default()
    };
    is(m.update_user(&ctx, "u3", "%", &host).await, invalid);

    // delete_user keeps the data it owned; delete_database drops it.
    m.grant_access(&ctx, "u3", "%", &["other".into()])
        .await
        .unwrap();
    ok(&psql(&ctx, "u3", "pw2", "other", "CREATE TABLE kept(i int)").await);
    m.delete_user(&ctx, "u3", "%").await.unwrap();
    is(m.delete_user(&ctx, "u3", "%").await, not_found);
    failed(&psql(&ctx, "u3", "pw2", "postgres", "SELECT 1").await);
    let owner = "SELECT tableowner FROM pg_tables WHERE tablename = 'kept'";
    assert_eq!(admin_psql(&ctx, "other", owner).await, "os_admin");
    is(m.delete_user(&ctx, "postgres", "%").await, invalid);
    m.delete_database(&ctx, "other").await.unwrap();
    is(m.delete_database(&ctx, "other").await, not_found);
    is(m.delete_database(&ctx, "postgres").await, invalid);
    assert_eq!(
        m.list_users(&ctx).await.unwrap(),
        vec![info("app", &["app"]), info(odd, &[INJECTION])]
    );
    assert_eq!(
        ok(&psql(&ctx, "app", "new'pw\\", "app", "SELECT count(*) FROM t").await),
        "2"
    );
    m.stop(&ctx, STOP).await.unwrap();
}
