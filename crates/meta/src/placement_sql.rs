//! [`PlacementStore`](crate::PlacementStore) over SQL, for both backends.

/// Implements `PlacementStore` for `$store`.
macro_rules! impl_placement_store {
    ($store:ty) => {
        const _: () = {
            use coffer_model::InstanceId;
            use sqlx::Row;
            use $crate::{MetaError, PlacementStore};

            #[async_trait::async_trait]
            impl PlacementStore for $store {
                async fn instance_host(&self, id: InstanceId) -> Result<Option<String>, MetaError> {
                    let q = Self::sql("SELECT compute_host FROM instances WHERE id = ?");
                    let found = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                    match found {
                        None => Err(MetaError::NotFound {
                            what: "instance",
                            id: id.to_string(),
                        }),
                        Some(row) => Ok(row.try_get::<Option<String>, _>(0)?),
                    }
                }

                async fn place_instance(
                    &self,
                    id: InstanceId,
                    host: &str,
                ) -> Result<String, MetaError> {
                    let mut tx = self.begin_write().await?;
                    let q = Self::sql(
                        "UPDATE instances SET compute_host = ? \
                         WHERE id = ? AND compute_host IS NULL",
                    );
                    sqlx::query(&q)
                        .bind(host)
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    let q = Self::sql("SELECT compute_host FROM instances WHERE id = ?");
                    let found = sqlx::query(&q)
                        .bind(id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    match found.map(|row| row.try_get::<Option<String>, _>(0)) {
                        Some(Ok(Some(recorded))) => Ok(recorded),
                        Some(Err(e)) => Err(e.into()),
                        _ => Err(MetaError::NotFound {
                            what: "instance",
                            id: id.to_string(),
                        }),
                    }
                }
            }
        };
    };
}

pub(crate) use impl_placement_store;
