//! [`BackupStore`](crate::BackupStore) over SQL, expanded once per backend
//! beside the rest of the store (see `sql_store.rs` for the conventions:
//! `Self::sql`, `begin_write`, `FOR_UPDATE`).

/// Implements `BackupStore` for `$store`, whose pool is of database `$db`.
macro_rules! impl_backup_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::rows::{self, count, millis, Columns, BACKUP_COLUMNS};
            use $crate::{BackupStore, MetaError};
            use chrono::Utc;
            use coffer_model::{
                Backup, BackupId, InstanceId, InstanceStatus, Progress, ProjectId, Task,
            };

            impl $store {
                async fn put_backup(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    b: &Backup,
                ) -> Result<(), MetaError> {
                    let q = Self::sql(&format!(
                        "INSERT INTO backups ({BACKUP_COLUMNS}) VALUES \
                         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ));
                    sqlx::query(&q)
                        .bind(b.id.to_string())
                        .bind(b.project_id.0.as_str())
                        .bind(b.name.as_str())
                        .bind(b.description.as_deref())
                        .bind(b.instance_id.to_string())
                        .bind(b.parent_id.map(|p| p.to_string()))
                        .bind(b.status.as_str())
                        .bind(b.datastore.as_str())
                        .bind(b.datastore_version.as_str())
                        .bind(b.strategy.as_str())
                        .bind(b.location.as_deref())
                        .bind(b.object_key.as_str())
                        .bind(b.plain_bytes)
                        .bind(b.stored_bytes)
                        .bind(b.checksum.as_deref())
                        .bind(b.wrapped_key.as_str())
                        .bind(b.key_id.as_str())
                        .bind(b.codec.as_str())
                        .bind(b.info.to_string())
                        .bind(b.fault.as_deref())
                        .bind(millis(b.created))
                        .bind(millis(b.updated))
                        .execute(conn)
                        .await
                        .map_err(|e| {
                            rows::conflict_or_backend(e, || {
                                format!("backup {} already exists", b.id)
                            })
                        })?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl BackupStore for $store {
                async fn start_backup(
                    &self,
                    backup: &Backup,
                    task: &Task,
                    quotas: Option<&coffer_model::QuotaSet>,
                ) -> Result<(), MetaError> {
                    let mut tx = self.begin_write().await?;
                    if let Some(defaults) = quotas {
                        let adding = coffer_model::QuotaSet { instances: 0, volumes: 0, backups: 1 };
                        Self::check_quota(&mut tx, &backup.project_id, &adding, defaults).await?;
                    }
                    let lock = Self::FOR_UPDATE;
                    let q = Self::sql(&format!(
                        "SELECT status FROM instances WHERE id = ? AND deleted = FALSE{lock}"
                    ));
                    let id = backup.instance_id;
                    let row = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| MetaError::not_found("instance", id))?;
                    let current = rows::instance_status(&row, "status")?;
                    if current != InstanceStatus::Active {
                        return Err(MetaError::Conflict(format!(
                            "instance {id} is {current}; a backup needs it ACTIVE"
                        )));
                    }
                    let q = Self::sql("UPDATE instances SET status = ?, updated = ? WHERE id = ?");
                    sqlx::query(&q)
                        .bind(InstanceStatus::Backup.as_str())
                        .bind(millis(Utc::now()))
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    Self::put_backup(&mut tx, backup).await?;
                    Self::put_task(&mut tx, task).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn insert_backup(&self, backup: &Backup) -> Result<(), MetaError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::put_backup(&mut conn, backup).await
                }

                async fn get_backup(&self, id: BackupId) -> Result<Backup, MetaError> {
                    let q = Self::sql(&format!(
                        "SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ? AND deleted = FALSE"
                    ));
                    let found = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                    rows::one(found, rows::backup, "backup", id)
                }

                async fn list_backups(
                    &self,
                    project: Option<&ProjectId>,
                    instance: Option<InstanceId>,
                    marker: Option<BackupId>,
                    limit: usize,
                ) -> Result<Vec<Backup>, MetaError> {
                    let mut filter = String::from("deleted = FALSE");
                    if project.is_some() {
                        filter.push_str(" AND project_id = ?");
                    }
                    if instance.is_some() {
                        filter.push_str(" AND instance_id = ?");
                    }
                    let mut tx = self.pool.begin().await?;
                    let after = match marker {
                        None => None,
                        Some(marker) => {
                            let q = Self::sql(&format!(
                                "SELECT seq FROM backups WHERE {filter} AND id = ?"
                            ));
                            let mut query = sqlx::query(&q);
                            if let Some(p) = project {
                                query = query.bind(p.0.as_str());
                            }
                            if let Some(i) = instance {
                                query = query.bind(i.to_string());
                            }
                            let row = query
                                .bind(marker.to_string())
                                .fetch_optional(&mut *tx)
                                .await?
                                .ok_or_else(|| MetaError::not_found("backup", marker))?;
                            Some(row.int("seq")?)
                        }
                    };
                    let q = Self::sql(&format!(
                        "SELECT {BACKUP_COLUMNS} FROM backups WHERE {filter}{} ORDER BY seq LIMIT ?",
                        if after.is_some() { " AND seq > ?" } else { "" },
                    ));
                    let mut query = sqlx::query(&q);
                    if let Some(p) = project {
                        query = query.bind(p.0.as_str());
                    }
                    if let Some(i) = instance {
                        query = query.bind(i.to_string());
                    }
                    if let Some(after) = after {
                        query = query.bind(after);
                    }
                    let found = query
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    found.iter().map(rows::backup).collect()
                }

                async fn update_backup(&self, b: &Backup) -> Result<(), MetaError> {
                    let q = Self::sql(
                        "UPDATE backups SET status = ?, location = ?, plain_bytes = ?, \
                         stored_bytes = ?, checksum = ?, info = ?, fault = ?, wrapped_key = ?, \
                         key_id = ?, codec = ?, updated = ? WHERE id = ? AND deleted = FALSE",
                    );
                    let done = sqlx::query(&q)
                        .bind(b.status.as_str())
                        .bind(b.location.as_deref())
                        .bind(b.plain_bytes)
                        .bind(b.stored_bytes)
                        .bind(b.checksum.as_deref())
                        .bind(b.info.to_string())
                        .bind(b.fault.as_deref())
                        .bind(b.wrapped_key.as_str())
                        .bind(b.key_id.as_str())
                        .bind(b.codec.as_str())
                        .bind(millis(Utc::now()))
                        .bind(b.id.to_string())
                        .execute(&self.pool)
                        .await?;
                    rows::changed(done.rows_affected(), "backup", b.id)
                }

                async fn child_backups(&self, id: BackupId) -> Result<Vec<Backup>, MetaError> {
                    let q = Self::sql(&format!(
                        "SELECT {BACKUP_COLUMNS} FROM backups \
                         WHERE parent_id = ? AND deleted = FALSE ORDER BY seq"
                    ));
                    let found = sqlx::query(&q).bind(id.to_string()).fetch_all(&self.pool).await?;
                    found.iter().map(rows::backup).collect()
                }

                async fn mark_backup_deleted(&self, id: BackupId) -> Result<(), MetaError> {
                    let q = Self::sql(
                        "UPDATE backups SET deleted = TRUE, updated = ? \
                         WHERE id = ? AND deleted = FALSE",
                    );
                    let done = sqlx::query(&q)
                        .bind(millis(Utc::now()))
                        .bind(id.to_string())
                        .execute(&self.pool)
                        .await?;
                    rows::changed(done.rows_affected(), "backup", id)
                }

                async fn set_progress(
                    &self,
                    subject: &str,
                    p: &Progress,
                ) -> Result<(), MetaError> {
                    let q = Self::sql(
                        "INSERT INTO progress (subject, phase, bytes_done, bytes_total, \
                         bytes_per_second, stored_bytes, updated) VALUES (?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (subject) DO UPDATE SET phase = excluded.phase, \
                         bytes_done = excluded.bytes_done, bytes_total = excluded.bytes_total, \
                         bytes_per_second = excluded.bytes_per_second, \
                         stored_bytes = excluded.stored_bytes, updated = excluded.updated",
                    );
                    sqlx::query(&q)
                        .bind(subject)
                        .bind(p.phase.as_str())
                        .bind(count(p.bytes_done))
                        .bind(p.bytes_total.map(count))
                        .bind(count(p.bytes_per_second))
                        .bind(count(p.stored_bytes))
                        .bind(millis(Utc::now()))
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn get_progress(&self, subject: &str) -> Result<Option<Progress>, MetaError> {
                    let q = Self::sql(
                        "SELECT phase, bytes_done, bytes_total, bytes_per_second, stored_bytes \
                         FROM progress WHERE subject = ?",
                    );
                    let found = sqlx::query(&q).bind(subject).fetch_optional(&self.pool).await?;
                    found.as_ref().map(rows::progress).transpose()
                }

                async fn clear_progress(&self, subject: &str) -> Result<(), MetaError> {
                    let q = Self::sql("DELETE FROM progress WHERE subject = ?");
                    sqlx::query(&q).bind(subject).execute(&self.pool).await?;
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use impl_backup_store;
