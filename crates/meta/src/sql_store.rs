//! The one implementation of [`MetadataStore`](crate::MetadataStore) over SQL,
//! expanded once per backend by [`impl_metadata_store!`].
//!
//! The SQL is written once, in the dialect both SQLite and PostgreSQL accept,
//! with `?` placeholders. The backend type supplies the few things that differ:
//!
//! - `fn sql(&str) -> String`: the statement with the backend's placeholders;
//! - `async fn begin_write(&self)`: a transaction that will write (SQLite
//!   takes the write lock up front);
//! - `const FOR_UPDATE: &str`: the row-lock suffix for a read that decides a
//!   write (`" FOR UPDATE"`, or nothing where the transaction already holds
//!   the database's write lock);
//! - `const SKIP_LOCKED: &str` and `const NOW_MILLIS: &str`: see
//!   `task_lease_sql.rs`;
//! - `const MIGRATIONS: &[(i64, &str)]` and `const MIGRATION_LOCK:
//!   Option<&str>` (a statement that serializes concurrent migrators);
//! - a `pool` field.
//!
//! The migration runner (`migrate.rs`) and the wide row inserts (`writes.rs`)
//! are expanded alongside.

/// Implements `MetadataStore` for `$store`, whose pool is of database `$db`.
macro_rules! impl_metadata_store {
    ($store:ty, $db:ty) => { const _: () = {
        use $crate::rows::{self, millis, Columns};
        use $crate::rows::{FLAVOR_COLUMNS, INSTANCE_COLUMNS, TASK_COLUMNS};
        use $crate::{MetaError, MetadataStore};
        use chrono::{DateTime, Utc};
        use coffer_model::{
            Datastore, Fault, Flavor, FlavorId, Instance, InstanceId, InstanceStatus,
            OperatingStatus, ProjectId, Task, TaskId, TaskState,
        };
        use std::net::Ipv4Addr;

        $crate::migrate::impl_migrations!($store);
        $crate::writes::impl_row_writers!($store, $db);
        $crate::backup_sql::impl_backup_store!($store, $db);
        $crate::configuration_sql::impl_configuration_store!($store, $db);
        $crate::auth_sql::impl_auth_store!($store);
        $crate::quota_sql::impl_quota_store!($store, $db);
        $crate::task_lease_sql::impl_task_lease_store!($store);
        $crate::placement_sql::impl_placement_store!($store);

        #[async_trait::async_trait]
        impl MetadataStore for $store {
            async fn migrate(&self) -> Result<(), MetaError> {
                self.apply_migrations().await
            }

            async fn list_flavors(&self) -> Result<Vec<Flavor>, MetaError> {
                let q = format!("SELECT {FLAVOR_COLUMNS} FROM flavors ORDER BY id");
                let found = sqlx::query(&q).fetch_all(&self.pool).await?;
                found.iter().map(rows::flavor).collect()
            }

            async fn get_flavor(&self, id: FlavorId) -> Result<Flavor, MetaError> {
                let q = Self::sql(&format!("SELECT {FLAVOR_COLUMNS} FROM flavors WHERE id = ?"));
                let found = sqlx::query(&q).bind(id.0).fetch_optional(&self.pool).await?;
                rows::one(found, rows::flavor, "flavor", id)
            }

            async fn upsert_flavor(&self, flavor: &Flavor) -> Result<(), MetaError> {
                let q = Self::sql(
                    "INSERT INTO flavors (id, name, ram_mb, vcpus, disk_gb) \
                     VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     ram_mb = excluded.ram_mb, vcpus = excluded.vcpus, \
                     disk_gb = excluded.disk_gb",
                );
                sqlx::query(&q)
                    .bind(flavor.id.0)
                    .bind(flavor.name.as_str())
                    .bind(flavor.ram_mb)
                    .bind(flavor.vcpus)
                    .bind(flavor.disk_gb)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_flavor(&self, id: FlavorId) -> Result<(), MetaError> {
                let mut tx = self.begin_write().await?;
                let lock = Self::FOR_UPDATE;
                let q = Self::sql(&format!("SELECT id FROM flavors WHERE id = ?{lock}"));
                if sqlx::query(&q).bind(id.0).fetch_optional(&mut *tx).await?.is_none() {
                    return Err(MetaError::not_found("flavor", id));
                }
                let q = Self::sql(
                    "SELECT id FROM instances WHERE flavor_id = ? AND deleted = FALSE LIMIT 1",
                );
                if let Some(user) = sqlx::query(&q).bind(id.0).fetch_optional(&mut *tx).await? {
                    return Err(MetaError::Conflict(format!(
                        "flavor {id} is used by instance {}",
                        user.text("id")?
                    )));
                }
                let q = Self::sql("DELETE FROM flavors WHERE id = ?");
                sqlx::query(&q).bind(id.0).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_datastores(&self) -> Result<Vec<Datastore>, MetaError> {
                // One statement, so both backends read one consistent snapshot.
                let found = sqlx::query(
                    "SELECT d.id, d.name, d.default_version, v.id AS version_id, \
                     v.name AS version_name, v.manager AS version_manager, \
                     v.active AS version_active \
                     FROM datastores d LEFT JOIN datastore_versions v ON v.datastore_id = d.id \
                     ORDER BY d.name, v.name",
                )
                .fetch_all(&self.pool)
                .await?;
                rows::datastores(&found)
            }

            async fn upsert_datastore(&self, datastore: &Datastore) -> Result<(), MetaError> {
                let mut tx = self.begin_write().await?;
                let q = Self::sql(
                    "INSERT INTO datastores (id, name, default_version) VALUES (?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     default_version = excluded.default_version",
                );
                sqlx::query(&q)
                    .bind(datastore.id.to_string())
                    .bind(datastore.name.as_str())
                    .bind(datastore.default_version.map(|v| v.to_string()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        rows::conflict_or_backend(e, || {
                            format!("another datastore is already named {:?}", datastore.name)
                        })
                    })?;
                let q = Self::sql("DELETE FROM datastore_versions WHERE datastore_id = ?");
                sqlx::query(&q).bind(datastore.id.to_string()).execute(&mut *tx).await?;
                let q = Self::sql(
                    "INSERT INTO datastore_versions (id, datastore_id, name, manager, active) \
                     VALUES (?, ?, ?, ?, ?)",
                );
                for version in &datastore.versions {
                    sqlx::query(&q)
                        .bind(version.id.to_string())
                        .bind(datastore.id.to_string())
                        .bind(version.name.as_str())
                        .bind(version.manager.as_str())
                        .bind(version.active)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            rows::conflict_or_backend(e, || {
                                format!(
                                    "datastore version {} ({:?}) clashes with an existing version",
                                    version.id, version.name
                                )
                            })
                        })?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_instance(
                &self,
                instance: &Instance,
                task: &Task,
                quotas: Option<&coffer_model::QuotaSet>,
            ) -> Result<(), MetaError> {
                let mut tx = self.begin_write().await?;
                if let Some(defaults) = quotas {
                    let adding = coffer_model::QuotaSet {
                        instances: 1,
                        volumes: instance.volume_size_gb,
                        backups: 0,
                    };
                    Self::check_quota(&mut tx, &instance.project_id, &adding, defaults).await?;
                }
                Self::put_instance(&mut tx, instance).await?;
                Self::put_task(&mut tx, task).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_instance(&self, id: InstanceId) -> Result<Instance, MetaError> {
                let q = Self::sql(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ? AND deleted = FALSE"
                ));
                let found = sqlx::query(&q).bind(id.to_string()).fetch_optional(&self.pool).await?;
                rows::one(found, rows::instance, "instance", id)
            }

            async fn list_instances(
                &self,
                project: Option<&ProjectId>,
                marker: Option<InstanceId>,
                limit: usize,
            ) -> Result<Vec<Instance>, MetaError> {
                let in_project = if project.is_some() { " AND project_id = ?" } else { "" };
                let mut tx = self.pool.begin().await?;
                let after = match marker {
                    None => None,
                    Some(marker) => {
                        let q = Self::sql(&format!(
                            "SELECT seq FROM instances WHERE id = ? AND deleted = FALSE{in_project}"
                        ));
                        let mut query = sqlx::query(&q).bind(marker.to_string());
                        if let Some(project) = project {
                            query = query.bind(project.0.as_str());
                        }
                        let row = query
                            .fetch_optional(&mut *tx)
                            .await?
                            .ok_or_else(|| MetaError::not_found("instance", marker))?;
                        Some(row.int("seq")?)
                    }
                };
                let q = Self::sql(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM instances WHERE deleted = FALSE{in_project}{} \
                     ORDER BY seq LIMIT ?",
                    if after.is_some() { " AND seq > ?" } else { "" },
                ));
                let mut query = sqlx::query(&q);
                if let Some(project) = project {
                    query = query.bind(project.0.as_str());
                }
                if let Some(after) = after {
                    query = query.bind(after);
                }
                let found = query
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                found.iter().map(rows::instance).collect()
            }

            async fn used_ips(&self) -> Result<Vec<Ipv4Addr>, MetaError> {
                let found = sqlx::query(
                    "SELECT ip FROM instances WHERE deleted = FALSE AND ip IS NOT NULL \
                     ORDER BY seq",
                )
                .fetch_all(&self.pool)
                .await?;
                found.iter().map(rows::ip).collect()
            }

            async fn set_instance_status(
                &self,
                id: InstanceId,
                status: InstanceStatus,
                fault: Option<&Fault>,
            ) -> Result<(), MetaError> {
                let q = Self::sql(
                    "UPDATE instances SET status = ?, fault_message = ?, fault_created = ?, \
                     updated = ? WHERE id = ? AND deleted = FALSE",
                );
                let done = sqlx::query(&q)
                    .bind(status.as_str())
                    .bind(fault.map(|f| f.message.as_str()))
                    .bind(fault.map(|f| millis(f.created)))
                    .bind(millis(Utc::now()))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                rows::changed(done.rows_affected(), "instance", id)
            }

            async fn set_instance_fault(
                &self,
                id: InstanceId,
                fault: &Fault,
            ) -> Result<(), MetaError> {
                let q = Self::sql(
                    "UPDATE instances SET fault_message = ?, fault_created = ?, updated = ? \
                     WHERE id = ? AND deleted = FALSE",
                );
                let done = sqlx::query(&q)
                    .bind(fault.message.as_str())
                    .bind(millis(fault.created))
                    .bind(millis(Utc::now()))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                rows::changed(done.rows_affected(), "instance", id)
            }

            async fn start_instance_task(
                &self,
                id: InstanceId,
                from: &[InstanceStatus],
                to: InstanceStatus,
                task: &Task,
            ) -> Result<(), MetaError> {
                let mut tx = self.begin_write().await?;
                let lock = Self::FOR_UPDATE;
                let q = Self::sql(&format!(
                    "SELECT status FROM instances WHERE id = ? AND deleted = FALSE{lock}"
                ));
                let row = sqlx::query(&q)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| MetaError::not_found("instance", id))?;
                let current = rows::instance_status(&row, "status")?;
                if !from.contains(&current) {
                    let wanted: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
                    return Err(MetaError::Conflict(format!(
                        "instance {id} is {current}; this needs one of {}",
                        wanted.join(", ")
                    )));
                }
                let q = Self::sql("UPDATE instances SET status = ?, updated = ? WHERE id = ?");
                sqlx::query(&q)
                    .bind(to.as_str())
                    .bind(millis(Utc::now()))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                Self::put_task(&mut tx, task).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_heartbeat(
                &self,
                id: InstanceId,
                status: OperatingStatus,
                volume_used_bytes: Option<i64>,
                agent_protocol: Option<u32>,
                at: DateTime<Utc>,
            ) -> Result<(), MetaError> {
                // A heartbeat without a measurement keeps the last one.
                let q = Self::sql(
                    "UPDATE instances SET operating_status = ?, \
                     volume_used_bytes = COALESCE(?, volume_used_bytes), \
                     agent_protocol = COALESCE(?, agent_protocol), last_heartbeat = ? \
                     WHERE id = ? AND deleted = FALSE",
                );
                let done = sqlx::query(&q)
                    .bind(status.as_str())
                    .bind(volume_used_bytes)
                    .bind(agent_protocol.map(i64::from))
                    .bind(millis(at))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                rows::changed(done.rows_affected(), "instance", id)
            }

            async fn mark_instance_deleted(&self, id: InstanceId) -> Result<(), MetaError> {
                let q = Self::sql(
                    "UPDATE instances SET deleted = TRUE, updated = ? \
                     WHERE id = ? AND deleted = FALSE",
                );
                let done = sqlx::query(&q)
                    .bind(millis(Utc::now()))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                rows::changed(done.rows_affected(), "instance", id)
            }

            async fn insert_task(&self, task: &Task) -> Result<(), MetaError> {
                let mut conn = self.pool.acquire().await?;
                Self::put_task(&mut conn, task).await
            }

            async fn get_task(&self, id: TaskId) -> Result<Task, MetaError> {
                let q = Self::sql(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"));
                let found = sqlx::query(&q).bind(id.to_string()).fetch_optional(&self.pool).await?;
                rows::one(found, rows::task, "task", id)
            }

            async fn update_task(
                &self,
                id: TaskId,
                state: TaskState,
                step: &str,
                attempts: i64,
                error: Option<&str>,
            ) -> Result<(), MetaError> {
                let q = Self::sql(
                    "UPDATE tasks SET state = ?, step = ?, attempts = ?, error = ?, updated = ? \
                     WHERE id = ?",
                );
                let done = sqlx::query(&q)
                    .bind(state.as_str())
                    .bind(step)
                    .bind(attempts)
                    .bind(error)
                    .bind(millis(Utc::now()))
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                rows::changed(done.rows_affected(), "task", id)
            }

            async fn unfinished_tasks(&self) -> Result<Vec<Task>, MetaError> {
                let q = Self::sql(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE state IN (?, ?) ORDER BY created, id"
                ));
                let found = sqlx::query(&q)
                    .bind(TaskState::Pending.as_str())
                    .bind(TaskState::Running.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::task).collect()
            }
        }
    }; };
}

pub(crate) use impl_metadata_store;
