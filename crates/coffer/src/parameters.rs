//! The parameter schemas of the offered datastore versions, loaded at
//! start from the data files shipped with the datastore managers.

use crate::config::Config;
use coffer_model::{ParameterCatalog, ParameterSchema};

/// Every configured datastore version's schema. A broken file stops
/// start-up; a version without one is offered without configuration groups.
pub fn catalog(config: &Config) -> anyhow::Result<ParameterCatalog> {
    let mut catalog = ParameterCatalog::default();
    for (name, ds) in &config.datastores {
        for version in &ds.versions {
            let Some(text) = coffer_datastores::parameters::builtin_schema(&ds.manager, version)
            else {
                tracing::warn!(
                    datastore = %name,
                    version = %version,
                    "no configuration parameters are shipped for this version; configuration groups are refused for it"
                );
                continue;
            };
            let schema = ParameterSchema::parse(text).map_err(|e| {
                anyhow::anyhow!("the parameter schema of {} {version}: {e}", ds.manager)
            })?;
            catalog.insert(name, version, schema);
        }
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_datastore_version_has_parameters() {
        let config = Config::default();
        let catalog = catalog(&config).unwrap();
        for (name, ds) in &config.datastores {
            for v in &ds.versions {
                let schema = catalog.get(name, v).unwrap_or_else(|| panic!("{name} {v}"));
                assert!(schema.parameters().any(|p| p.restart_required), "{name}");
                assert!(schema.parameters().any(|p| !p.restart_required), "{name}");
            }
        }
    }
}
