//! Inserting whole rows, shared by both SQL backends: the wide `INSERT`s
//! that several [`MetadataStore`](crate::MetadataStore) methods need, each
//! mapping a uniqueness violation to the `Conflict` it means.

/// Adds `put_instance` and `put_task` to `$store`, whose database is `$db`.
macro_rules! impl_row_writers {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Insert `instance`; Conflict when its id, or its ip among live
            /// instances, is taken.
            async fn put_instance(
                conn: &mut <$db as sqlx::Database>::Connection,
                instance: &coffer_model::Instance,
            ) -> Result<(), $crate::MetaError> {
                use $crate::rows::{self, millis};
                let q = Self::sql(
                    "INSERT INTO instances (id, project_id, name, status, operating_status, \
                     flavor_id, datastore, datastore_version, volume_size_gb, \
                     volume_used_bytes, ip, fault_message, fault_created, created, updated, \
                     last_heartbeat, configuration_id) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                );
                sqlx::query(&q)
                    .bind(instance.id.to_string())
                    .bind(instance.project_id.0.as_str())
                    .bind(instance.name.as_str())
                    .bind(instance.status.as_str())
                    .bind(instance.operating_status.as_str())
                    .bind(instance.flavor_id.0)
                    .bind(instance.datastore.as_str())
                    .bind(instance.datastore_version.as_str())
                    .bind(instance.volume_size_gb)
                    .bind(instance.volume_used_bytes)
                    .bind(instance.ip.map(|ip| ip.to_string()))
                    .bind(instance.fault.as_ref().map(|f| f.message.as_str()))
                    .bind(instance.fault.as_ref().map(|f| millis(f.created)))
                    .bind(millis(instance.created))
                    .bind(millis(instance.updated))
                    .bind(instance.last_heartbeat.map(millis))
                    .bind(instance.configuration_id.map(|c| c.to_string()))
                    .execute(conn)
                    .await
                    .map_err(|e| {
                        let ip_taken = rows::is_ip_conflict(&e);
                        rows::conflict_or_backend(e, || match instance.ip {
                            Some(ip) if ip_taken => {
                                format!("ip {ip} is already used by a live instance")
                            }
                            _ => format!("instance {} already exists", instance.id),
                        })
                    })?;
                Ok(())
            }

            /// Insert `task`; Conflict when its id is taken.
            async fn put_task(
                conn: &mut <$db as sqlx::Database>::Connection,
                task: &coffer_model::Task,
            ) -> Result<(), $crate::MetaError> {
                use $crate::rows::{self, millis};
                let q = Self::sql(
                    "INSERT INTO tasks (id, kind, instance_id, state, step, attempts, \
                     payload, error, created, updated) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                );
                sqlx::query(&q)
                    .bind(task.id.to_string())
                    .bind(task.kind.as_str())
                    .bind(task.instance_id.to_string())
                    .bind(task.state.as_str())
                    .bind(task.step.as_str())
                    .bind(task.attempts)
                    .bind(rows::payload_text(task)?)
                    .bind(task.error.as_deref())
                    .bind(millis(task.created))
                    .bind(millis(task.updated))
                    .execute(conn)
                    .await
                    .map_err(|e| {
                        rows::conflict_or_backend(e, || format!("task {} already exists", task.id))
                    })?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_row_writers;
