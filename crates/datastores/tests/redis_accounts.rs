//! Trove's in-datastore API on a real redis-server: tenant users as ACL
//! users (validated, listed, updated, deleted), root, and databases, which
//! Redis does not have.

mod redis_support;

use coffer_datastores::redis::Redis;
use coffer_model::{DatabaseSpec, UserUpdate};
use coffer_strategy::{DatastoreError, DatastoreManager};
use redis_support::*;

fn password(p: &str) -> UserUpdate {
    UserUpdate {
        password: Some(p.into()),
        ..Default::default()
    }
}

fn rename(n: &str) -> UserUpdate {
    UserUpdate {
        name: Some(n.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_users_root_and_databases() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _guard) = running(dir.path(), 243).await;
    let r = Redis::new();

    // A password that reads like ACL rules is one password, nothing more.
    let tricky = "x on ~* &* +@all nopass";
    r.create_users(&ctx, &[user("app", "secret"), user("tricky", tricky)])
        .await
        .unwrap();
    let app = Some(("app", "secret"));
    assert_eq!(cli(&ctx, app, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(&ctx, Some(("tricky", tricky)), &["GET", "k"]), "v");
    for pw in ["x", "", "nopass"] {
        let out = cli(&ctx, Some(("tricky", pw)), &["GET", "k"]);
        assert!(out.contains("WRONGPASS"), "{pw:?}: {out}");
    }
    for (u, pw) in [("app", "secret"), ("tricky", tricky)] {
        for cmd in [
            &["FLUSHALL"][..],
            &["CONFIG", "GET", "maxmemory"],
            &["ACL", "SETUSER", "x", "on"],
            &["SHUTDOWN", "NOSAVE"],
        ] {
            let out = cli(&ctx, Some((u, pw)), cmd);
            assert!(out.contains("NOPERM"), "{u} {cmd:?}: {out}");
        }
        // DEBUG is off for everyone (enable-debug-command no).
        let out = cli(&ctx, Some((u, pw)), &["DEBUG", "SLEEP", "0"]);
        assert!(
            out.contains("NOPERM") || out.contains("not allowed"),
            "{out}"
        );
    }

    // Bad users are refused before anything is sent.
    for (bad, host) in [
        ("default", "%"),
        ("os_admin", "%"),
        ("root", "%"),
        ("a b", "%"),
        ("x'; FLUSHALL", "%"),
        ("app", "10.0.0.1"),
    ] {
        let mut u = user(bad, "pw");
        u.host = host.into();
        let e = r.create_users(&ctx, &[u]).await.unwrap_err();
        assert!(matches!(e, DatastoreError::InvalidInput(_)), "{bad}: {e}");
    }
    let e = r.create_users(&ctx, &[user("u", "")]).await.unwrap_err();
    assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
    let mut with_db = user("dbuser", "pw");
    with_db.databases = vec!["app".into()];
    assert_not_supported(r.validate_user(&with_db));

    // Databases: not supported, but an empty create (prepare) is fine.
    r.create_databases(&ctx, &[]).await.unwrap();
    let d = DatabaseSpec { name: "d".into() };
    assert_not_supported(r.create_databases(&ctx, &[d]).await);
    assert_not_supported(r.validate_database_name("d"));
    assert_not_supported(r.list_databases(&ctx).await);
    assert_not_supported(r.delete_database(&ctx, "d").await);
    assert_not_supported(r.grant_access(&ctx, "app", "%", &["d".into()]).await);
    assert_not_supported(r.revoke_access(&ctx, "app", "%", "d").await);

    // Listing hides default, os_admin and root.
    r.enable_root(&ctx).await.unwrap();
    let users = r.list_users(&ctx).await.unwrap();
    assert_eq!(names(&users), ["app", "tricky"]);
    assert!(users
        .iter()
        .all(|u| u.host == "%" && u.databases.is_empty()));
    r.disable_root(&ctx).await.unwrap();

    // Update: a new password replaces the old one; a rename keeps it.
    r.update_user(&ctx, "app", "%", &password("secret2"))
        .await
        .unwrap();
    assert!(cli(&ctx, app, &["GET", "k"]).contains("WRONGPASS"));
    assert_eq!(cli(&ctx, Some(("app", "secret2")), &["GET", "k"]), "v");
    r.update_user(&ctx, "app", "%", &rename("app2"))
        .await
        .unwrap();
    let app2 = Some(("app2", "secret2"));
    assert_eq!(cli(&ctx, app2, &["GET", "k"]), "v");
    assert!(cli(&ctx, app2, &["FLUSHALL"]).contains("NOPERM"));
    assert!(cli(&ctx, Some(("app", "secret2")), &["GET", "k"]).contains("WRONGPASS"));
    let e = r.update_user(&ctx, "app2", "%", &rename("tricky")).await;
    assert!(matches!(e, Err(DatastoreError::AlreadyExists(_))), "{e:?}");
    let e = r.update_user(&ctx, "nobody", "%", &password("x")).await;
    assert!(matches!(e, Err(DatastoreError::NotFound(_))), "{e:?}");
    let e = r
        .update_user(&ctx, "app2", "localhost", &password("x"))
        .await;
    assert!(matches!(e, Err(DatastoreError::InvalidInput(_))), "{e:?}");
    let e = r.update_user(&ctx, "app2", "%", &rename("root")).await;
    assert!(matches!(e, Err(DatastoreError::InvalidInput(_))), "{e:?}");
    let both = UserUpdate {
        name: Some("app".into()),
        password: Some("secret".into()),
        host: Some("%".into()),
    };
    r.update_user(&ctx, "app2", "%", &both).await.unwrap();
    assert_eq!(cli(&ctx, app, &["GET", "k"]), "v");
    assert_eq!(names(&r.list_users(&ctx).await.unwrap()), ["app", "tricky"]);

    // Delete: gone (its password refused), then NotFound.
    r.delete_user(&ctx, "tricky", "%").await.unwrap();
    assert!(cli(&ctx, Some(("tricky", tricky)), &["GET", "k"]).contains("WRONGPASS"));
    let e = r.delete_user(&ctx, "tricky", "%").await;
    assert!(matches!(e, Err(DatastoreError::NotFound(_))), "{e:?}");
    let e = r.delete_user(&ctx, "os_admin", "%").await;
    assert!(matches!(e, Err(DatastoreError::InvalidInput(_))), "{e:?}");

    // Root: off, on with a returned password (a new one each time), off.
    assert!(!r.root_enabled(&ctx).await.unwrap());
    let first = r.enable_root(&ctx).await.unwrap();
    assert!(r.root_enabled(&ctx).await.unwrap());
    let root = Some(("root", first.as_str()));
    let maxmemory = cli(&ctx, root, &["CONFIG", "GET", "maxmemory"]);
    assert_eq!(maxmemory, "maxmemory\n402653184"); // 384 MB of 512
    let second = r.enable_root(&ctx).await.unwrap();
    assert_ne!(first, second);
    assert!(cli(&ctx, root, &["PING"]).contains("WRONGPASS"));
    assert_eq!(cli(&ctx, Some(("root", &second)), &["PING"]), "PONG");
    r.disable_root(&ctx).await.unwrap();
    assert!(cli(&ctx, Some(("root", &second)), &["PING"]).contains("WRONGPASS"));
    assert!(!r.root_enabled(&ctx).await.unwrap());
    r.disable_root(&ctx).await.unwrap();

    let pid = r.pid(&ctx).unwrap();
    r.stop(&ctx, STOP).await.unwrap();
    assert!(!alive(pid), "no process left");
}
