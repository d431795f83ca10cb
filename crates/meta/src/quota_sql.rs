//! [`QuotaStore`](crate::QuotaStore) over SQL, and the check that
//! `create_instance` and `start_backup` run inside their transactions.

/// Implements `QuotaStore` and `check_quota` for `$store` of database `$db`.
macro_rules! impl_quota_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use $crate::rows::Columns;
            use $crate::{MetaError, QuotaStore};
            use coffer_model::{ProjectId, QuotaSet};

            impl $store {
                /// Usage of `project` as `conn` sees it.
                async fn usage_on(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    project: &ProjectId,
                ) -> Result<QuotaSet, MetaError> {
                    let q = Self::sql(
                        "SELECT COUNT(*) AS n, \
                         CAST(COALESCE(SUM(volume_size_gb), 0) AS BIGINT) AS gb \
                         FROM instances WHERE project_id = ? AND deleted = FALSE",
                    );
                    let row = sqlx::query(&q).bind(project.0.as_str()).fetch_one(&mut *conn).await?;
                    let (instances, volumes) = (row.int("n")?, row.int("gb")?);
                    let q = Self::sql(
                        "SELECT COUNT(*) AS n FROM backups WHERE project_id = ? AND deleted = FALSE",
                    );
                    let row = sqlx::query(&q).bind(project.0.as_str()).fetch_one(&mut *conn).await?;
                    Ok(QuotaSet { instances, volumes, backups: row.int("n")? })
                }

                async fn quotas_on(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    project: &ProjectId,
                    defaults: &QuotaSet,
                ) -> Result<QuotaSet, MetaError> {
                    let q = Self::sql("SELECT resource, hard_limit FROM quotas WHERE project_id = ?");
                    let rows = sqlx::query(&q).bind(project.0.as_str()).fetch_all(&mut *conn).await?;
                    let mut limits = *defaults;
                    for row in &rows {
                        limits.set(&row.text("resource")?, row.int("hard_limit")?);
                    }
                    Ok(limits)
                }

                /// Inside a write transaction: Quota exceeded if adding
                /// `adding` to the project's usage breaks its limits.
                pub(crate) async fn check_quota(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    project: &ProjectId,
                    adding: &QuotaSet,
                    defaults: &QuotaSet,
                ) -> Result<(), MetaError> {
                    if let Some(lock) = Self::PROJECT_LOCK {
                        let q = Self::sql(lock);
                        sqlx::query(&q).bind(project.0.as_str()).execute(&mut *conn).await?;
                    }
                    let limits = Self::quotas_on(&mut *conn, project, defaults).await?;
                    let usage = Self::usage_on(&mut *conn, project).await?;
                    let over = limits.exceeded_by(&usage, adding);
                    if over.is_empty() {
                        Ok(())
                    } else {
                        Err(MetaError::QuotaExceeded(over.into_iter().map(String::from).collect()))
                    }
                }
            }

            #[async_trait::async_trait]
            impl QuotaStore for $store {
                async fn project_quotas(
                    &self,
                    project: &ProjectId,
                    defaults: &QuotaSet,
                ) -> Result<QuotaSet, MetaError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::quotas_on(&mut conn, project, defaults).await
                }

                async fn set_project_quota(
                    &self,
                    project: &ProjectId,
                    resource: &str,
                    limit: i64,
                ) -> Result<(), MetaError> {
                    let q = Self::sql(
                        "INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?, ?, ?) \
                         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
                    );
                    sqlx::query(&q)
                        .bind(project.0.as_str())
                        .bind(resource)
                        .bind(limit)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn quota_usage(&self, project: &ProjectId) -> Result<QuotaSet, MetaError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::usage_on(&mut conn, project).await
                }
            }
        };
    };
}

pub(crate) use impl_quota_store;
