//! [`ConfigurationStore`](crate::ConfigurationStore) over SQL, expanded once
//! per backend beside the rest of the store (see `sql_store.rs` for the
//! conventions: `Self::sql`, `begin_write`, `FOR_UPDATE`).

/// Implements `ConfigurationStore` for `$store`, whose pool is of database `$db`.
macro_rules! impl_configuration_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use chrono::Utc;
            use coffer_model::{
                ConfigurationGroup, ConfigurationId, FlavorId, Instance, InstanceId,
                InstanceStatus, ProjectId, Task, TaskId, TaskKind,
            };
            use $crate::rows::{self, millis, Columns, CONFIGURATION_COLUMNS, INSTANCE_COLUMNS};
            use $crate::{ConfigurationStore, MetaError};

            /// `?, ?, ?` for `n` placeholders.
            fn placeholders(n: usize) -> String {
                vec!["?"; n].join(", ")
            }

            impl $store {
                /// The status of live instance `id`, its row locked for the
                /// rest of the transaction.
                async fn locked_status(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    id: InstanceId,
                ) -> Result<InstanceStatus, MetaError> {
                    let lock = Self::FOR_UPDATE;
                    let q = Self::sql(&format!(
                        "SELECT status FROM instances WHERE id = ? AND deleted = FALSE{lock}"
                    ));
                    let row = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(conn)
                        .await?
                        .ok_or_else(|| MetaError::not_found("instance", id))?;
                    rows::instance_status(&row, "status")
                }

                /// NotFound unless group `id` is live; locks its row.
                async fn lock_configuration(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    id: ConfigurationId,
                ) -> Result<(), MetaError> {
                    let lock = Self::FOR_UPDATE;
                    let q = Self::sql(&format!(
                        "SELECT id FROM configurations WHERE id = ? AND deleted = FALSE{lock}"
                    ));
                    sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(conn)
                        .await?
                        .ok_or_else(|| MetaError::not_found("configuration", id))?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl ConfigurationStore for $store {
                async fn insert_configuration(
                    &self,
                    g: &ConfigurationGroup,
                ) -> Result<(), MetaError> {
                    let q = Self::sql(&format!(
                        "INSERT INTO configurations ({CONFIGURATION_COLUMNS}) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ));
                    sqlx::query(&q)
                        .bind(g.id.to_string())
                        .bind(g.project_id.0.as_str())
                        .bind(g.name.as_str())
                        .bind(g.description.as_deref())
                        .bind(g.datastore.as_str())
                        .bind(g.datastore_version.as_str())
                        .bind(rows::values_text(g)?)
                        .bind(millis(g.created))
                        .bind(millis(g.updated))
                        .execute(&self.pool)
                        .await
                        .map_err(|e| {
                            rows::conflict_or_backend(e, || {
                                format!("configuration {} already exists", g.id)
                            })
                        })?;
                    Ok(())
                }

                async fn get_configuration(
                    &self,
                    id: ConfigurationId,
                ) -> Result<ConfigurationGroup, MetaError> {
                    let q = Self::sql(&format!(
                        "SELECT {CONFIGURATION_COLUMNS} FROM configurations \
                         WHERE id = ? AND deleted = FALSE"
                    ));
                    let found = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                    rows::one(found, rows::configuration, "configuration", id)
                }

                async fn list_configurations(
                    &self,
                    project: Option<&ProjectId>,
                    marker: Option<ConfigurationId>,
                    limit: usize,
                ) -> Result<Vec<ConfigurationGroup>, MetaError> {
                    let filter = if project.is_some() {
                        "deleted = FALSE AND project_id = ?"
                    } else {
                        "deleted = FALSE"
                    };
                    let mut tx = self.pool.begin().await?;
                    let after = match marker {
                        None => None,
                        Some(marker) => {
                            let q = Self::sql(&format!(
                                "SELECT seq FROM configurations WHERE {filter} AND id = ?"
                            ));
                            let mut query = sqlx::query(&q);
                            if let Some(p) = project {
                                query = query.bind(p.0.as_str());
                            }
                            let row = query
                                .bind(marker.to_string())
                                .fetch_optional(&mut *tx)
                                .await?
                                .ok_or_else(|| MetaError::not_found("configuration", marker))?;
                            Some(row.int("seq")?)
                        }
                    };
                    let q = Self::sql(&format!(
                        "SELECT {CONFIGURATION_COLUMNS} FROM configurations WHERE {filter}{} \
                         ORDER BY seq LIMIT ?",
                        if after.is_some() { " AND seq > ?" } else { "" },
                    ));
                    let mut query = sqlx::query(&q);
                    if let Some(p) = project {
                        query = query.bind(p.0.as_str());
                    }
                    if let Some(after) = after {
                        query = query.bind(after);
                    }
                    let found = query
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    found.iter().map(rows::configuration).collect()
                }

                async fn update_configuration(
                    &self,
                    g: &ConfigurationGroup,
                ) -> Result<Vec<TaskId>, MetaError> {
                    let mut tx = self.begin_write().await?;
                    Self::lock_configuration(&mut tx, g.id).await?;
                    let q = Self::sql(
                        "UPDATE configurations SET name = ?, description = ?, vals = ?, \
                         updated = ? WHERE id = ?",
                    );
                    sqlx::query(&q)
                        .bind(g.name.as_str())
                        .bind(g.description.as_deref())
                        .bind(rows::values_text(g)?)
                        .bind(millis(Utc::now()))
                        .bind(g.id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    let q = Self::sql(
                        "SELECT id FROM instances WHERE configuration_id = ? \
                         AND deleted = FALSE ORDER BY seq",
                    );
                    let attached = sqlx::query(&q)
                        .bind(g.id.to_string())
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut ids = Vec::new();
                    for row in &attached {
                        let instance: InstanceId = row
                            .text("id")?
                            .parse()
                            .map_err(|_| MetaError::Backend(anyhow::anyhow!("bad instance id")))?;
                        let task = Task::pending(
                            TaskKind::ApplyConfiguration,
                            instance,
                            serde_json::Value::Null,
                        );
                        Self::put_task(&mut tx, &task).await?;
                        ids.push(task.id);
                    }
                    tx.commit().await?;
                    Ok(ids)
                }

                async fn delete_configuration(&self, id: ConfigurationId) -> Result<(), MetaError> {
                    let mut tx = self.begin_write().await?;
                    Self::lock_configuration(&mut tx, id).await?;
                    let q = Self::sql(
                        "SELECT id FROM instances WHERE configuration_id = ? \
                         AND deleted = FALSE ORDER BY seq LIMIT 1",
                    );
                    if let Some(row) = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?
                    {
                        return Err(MetaError::Conflict(format!(
                            "configuration {id} is attached to instance {}; detach it first",
                            row.text("id")?
                        )));
                    }
                    let q = Self::sql(
                        "UPDATE configurations SET deleted = TRUE, updated = ? WHERE id = ?",
                    );
                    sqlx::query(&q)
                        .bind(millis(Utc::now()))
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn configuration_instances(
                    &self,
                    id: ConfigurationId,
                ) -> Result<Vec<Instance>, MetaError> {
                    let q = Self::sql(&format!(
                        "SELECT {INSTANCE_COLUMNS} FROM instances \
                         WHERE configuration_id = ? AND deleted = FALSE ORDER BY seq"
                    ));
                    let found = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_all(&self.pool)
                        .await?;
                    found.iter().map(rows::instance).collect()
                }

                async fn set_instance_configuration(
                    &self,
                    id: InstanceId,
                    configuration: Option<ConfigurationId>,
                    from: &[InstanceStatus],
                    task: &Task,
                ) -> Result<(), MetaError> {
                    let mut tx = self.begin_write().await?;
                    if let Some(c) = configuration {
                        Self::lock_configuration(&mut tx, c).await?;
                    }
                    let current = Self::locked_status(&mut tx, id).await?;
                    if !from.contains(&current) {
                        let wanted: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
                        return Err(MetaError::Conflict(format!(
                            "instance {id} is {current}; this needs one of {}",
                            wanted.join(", ")
                        )));
                    }
                    let q = Self::sql(
                        "UPDATE instances SET configuration_id = ?, updated = ? WHERE id = ?",
                    );
                    sqlx::query(&q)
                        .bind(configuration.map(|c| c.to_string()))
                        .bind(millis(Utc::now()))
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    Self::put_task(&mut tx, task).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn transition_instance(
                    &self,
                    id: InstanceId,
                    from: &[InstanceStatus],
                    to: InstanceStatus,
                ) -> Result<bool, MetaError> {
                    let q = Self::sql(&format!(
                        "UPDATE instances SET status = ?, updated = ? \
                         WHERE id = ? AND deleted = FALSE AND status IN ({})",
                        placeholders(from.len().max(1))
                    ));
                    let mut query = sqlx::query(&q)
                        .bind(to.as_str())
                        .bind(millis(Utc::now()))
                        .bind(id.to_string());
                    if from.is_empty() {
                        query = query.bind("");
                    }
                    for status in from {
                        query = query.bind(status.as_str());
                    }
                    let done = query.execute(&self.pool).await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_instance_resources(
                    &self,
                    id: InstanceId,
                    flavor_id: FlavorId,
                    volume_size_gb: i64,
                ) -> Result<(), MetaError> {
                    let q = Self::sql(
                        "UPDATE instances SET flavor_id = ?, volume_size_gb = ?, updated = ? \
                         WHERE id = ? AND deleted = FALSE",
                    );
                    let done = sqlx::query(&q)
                        .bind(flavor_id.0)
                        .bind(volume_size_gb)
                        .bind(millis(Utc::now()))
                        .bind(id.to_string())
                        .execute(&self.pool)
                        .await?;
                    rows::changed(done.rows_affected(), "instance", id)
                }
            }
        };
    };
}

pub(crate) use impl_configuration_store;
