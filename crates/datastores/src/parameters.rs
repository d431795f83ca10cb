//! The parameter schemas Coffer ships for the datastore versions it runs:
//! what a configuration group may set, in Trove's
//! `{"configuration-parameters": [...]}` layout (`parameters/*.json`).
//!
//! Every `restart_required` flag says what the real server does (checked
//! against running servers by the `configuration_*` integration tests),
//! and no schema holds a parameter Coffer itself depends on (addresses,
//! paths, users, replication and durability switches; checked below).

/// Every built-in schema: (manager, version, JSON).
const SCHEMAS: &[(&str, &str, &str)] = &[
    (
        "mariadb",
        "10.11",
        include_str!("../parameters/mariadb-10.11.json"),
    ),
    (
        "postgresql",
        "15",
        include_str!("../parameters/postgresql-15.json"),
    ),
    ("redis", "7.0", include_str!("../parameters/redis-7.0.json")),
];

/// Every built-in schema: (manager, version, JSON).
pub fn builtin_schemas() -> &'static [(&'static str, &'static str, &'static str)] {
    SCHEMAS
}

/// The built-in schema of exactly this manager and version, if Coffer
/// ships one.
pub fn builtin_schema(manager: &str, version: &str) -> Option<&'static str> {
    SCHEMAS
        .iter()
        .find(|(m, v, _)| *m == manager && *v == version)
        .map(|(_, _, json)| *json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{mariadb, postgresql, redis};
    use coffer_model::ParameterSchema;

    fn parsed(manager: &str, version: &str) -> ParameterSchema {
        let json = builtin_schema(manager, version).unwrap();
        ParameterSchema::parse(json).unwrap_or_else(|e| panic!("{manager} {version}: {e}"))
    }

    #[test]
    fn every_builtin_schema_parses() {
        assert_eq!(builtin_schemas().len(), 3);
        for (manager, version, _) in builtin_schemas() {
            let schema = parsed(manager, version);
            let count = schema.parameters().count();
            assert!((15..=40).contains(&count), "{manager}: {count} parameters");
            let restart = schema.parameters().filter(|p| p.restart_required).count();
            assert!(
                restart > 0 && restart < count,
                "{manager}: a mix is offered"
            );
            assert!(
                schema.parameters().all(|p| p.description.is_some()),
                "{manager}: every parameter is described"
            );
        }
        assert!(builtin_schema("mariadb", "10.6").is_none());
        assert!(builtin_schema("MariaDB", "10.11").is_none());
        assert!(builtin_schema("oracle", "19").is_none());
    }

    #[test]
    fn no_schema_offers_what_coffer_depends_on() {
        for (manager, version, protected) in [
            ("mariadb", "10.11", mariadb::config::PROTECTED),
            ("postgresql", "15", postgresql::config::PROTECTED),
            ("redis", "7.0", redis::config::PROTECTED),
        ] {
            for p in parsed(manager, version).parameters() {
                assert!(
                    !crate::overrides::is_protected(&p.name, protected),
                    "{manager} offers {}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn the_required_parameters_are_offered_as_the_servers_treat_them() {
        let expect = |manager: &str, version: &str, dynamic: &[&str], restart: &[&str]| {
            let schema = parsed(manager, version);
            for (names, restart_required) in [(dynamic, false), (restart, true)] {
                for name in names {
                    let p = schema
                        .get(name)
                        .unwrap_or_else(|| panic!("{manager}: no {name}"));
                    assert_eq!(p.restart_required, restart_required, "{manager} {name}");
                }
            }
        };
        expect(
            "mariadb",
            "10.11",
            &[
                "max_connections",
                "wait_timeout",
                "long_query_time",
                "slow_query_log",
                "sql_mode",
                "innodb_buffer_pool_size",
                "max_allowed_packet",
            ],
            &[
                "innodb_log_buffer_size",
                "performance_schema",
                "back_log",
                "innodb_open_files",
            ],
        );
        expect(
            "postgresql",
            "15",
            &[
                "work_mem",
                "statement_timeout",
                "log_min_duration_statement",
                "random_page_cost",
                "log_statement",
                "autovacuum",
                "effective_cache_size",
            ],
            &[
                "shared_buffers",
                "max_connections",
                "wal_buffers",
                "max_locks_per_transaction",
                "max_worker_processes",
            ],
        );
        expect(
            "redis",
            "7.0",
            &[
                "maxmemory-policy",
                "timeout",
                "slowlog-log-slower-than",
                "notify-keyspace-events",
                "hz",
                "maxclients",
                "maxmemory",
                "lazyfree-lazy-eviction",
            ],
            &["databases", "io-threads", "tcp-backlog"],
        );
    }
}
