//! [`AuthStore`](crate::AuthStore) over SQL, expanded once per backend.

/// Implements `AuthStore` for `$store`.
macro_rules! impl_auth_store {
    ($store:ty) => {
        const _: () = {
            use chrono::Utc;
            use coffer_model::{ApiToken, ProjectId};
            use $crate::rows::{self, millis, Columns};
            use $crate::{AuthStore, MetaError};

            const TOKEN_COLUMNS: &str =
                "id, token_hash, project_id, is_admin, description, created";

            #[async_trait::async_trait]
            impl AuthStore for $store {
                async fn create_project(&self, id: &ProjectId) -> Result<(), MetaError> {
                    let q = Self::sql("INSERT INTO projects (id, created) VALUES (?, ?)");
                    sqlx::query(&q)
                        .bind(id.0.as_str())
                        .bind(millis(Utc::now()))
                        .execute(&self.pool)
                        .await
                        .map_err(|e| {
                            rows::conflict_or_backend(e, || format!("project {} exists", id.0))
                        })?;
                    Ok(())
                }

                async fn list_projects(&self) -> Result<Vec<ProjectId>, MetaError> {
                    let found = sqlx::query("SELECT id FROM projects ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                    found.iter().map(|r| Ok(ProjectId(r.text("id")?))).collect()
                }

                async fn insert_token(&self, t: &ApiToken) -> Result<(), MetaError> {
                    let mut tx = self.begin_write().await?;
                    if let Some(p) = &t.project_id {
                        let q = Self::sql("SELECT id FROM projects WHERE id = ?");
                        sqlx::query(&q)
                            .bind(p.0.as_str())
                            .fetch_optional(&mut *tx)
                            .await?
                            .ok_or_else(|| MetaError::not_found("project", &p.0))?;
                    }
                    let q = Self::sql(&format!(
                        "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                    ));
                    sqlx::query(&q)
                        .bind(t.id.as_str())
                        .bind(t.token_hash.as_str())
                        .bind(t.project_id.as_ref().map(|p| p.0.as_str()))
                        .bind(t.is_admin)
                        .bind(t.description.as_deref())
                        .bind(millis(t.created))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            rows::conflict_or_backend(e, || format!("token {} exists", t.id))
                        })?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn find_token(&self, hash: &str) -> Result<Option<ApiToken>, MetaError> {
                    let q = Self::sql(&format!(
                        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?"
                    ));
                    let found = sqlx::query(&q)
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await?;
                    found.as_ref().map(rows::api_token).transpose()
                }

                async fn list_tokens(&self) -> Result<Vec<ApiToken>, MetaError> {
                    let q = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created, id");
                    let found = sqlx::query(&q).fetch_all(&self.pool).await?;
                    found.iter().map(rows::api_token).collect()
                }

                async fn delete_token(&self, id: &str) -> Result<(), MetaError> {
                    let q = Self::sql("DELETE FROM api_tokens WHERE id = ?");
                    let done = sqlx::query(&q).bind(id).execute(&self.pool).await?;
                    rows::changed(done.rows_affected(), "token", id)
                }
            }
        };
    };
}

pub(crate) use impl_auth_store;
