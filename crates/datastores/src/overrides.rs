//! Checks every manager makes on a configuration group's overrides before
//! writing them into a server's configuration file. The API has checked
//! them against the version's schema already; these keep a configuration
//! file intact, and Coffer's own settings in place, whatever arrives.

use coffer_model::{ConfigValue, Overrides, MAX_STRING_VALUE};
use coffer_strategy::DatastoreError;

/// Whether `name` is one of `protected`. `-` and `_` count as the same
/// character (MariaDB reads option names either way).
pub fn is_protected(name: &str, protected: &[&str]) -> bool {
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let name = normal(name);
    protected.iter().any(|p| normal(p) == name)
}

/// Check every override: a well-formed name (lower-case letters, digits,
/// `_ - .`) that is not `protected`, and a value that fits on one line of
/// any configuration file (a finite number; a string of letters, digits,
/// spaces and `_ . , : / + - @ %`, as the schema allows).
pub fn check(overrides: &Overrides, protected: &[&str]) -> Result<(), DatastoreError> {
    for (name, setting) in overrides {
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c));
        if !well_formed {
            return Err(invalid(format!(
                "configuration parameter name {name:?} is not well formed"
            )));
        }
        if is_protected(name, protected) {
            return Err(invalid(format!(
                "configuration parameter {name} is managed by Coffer and cannot be overridden"
            )));
        }
        let value_ok = match &setting.value {
            ConfigValue::Boolean(_) | ConfigValue::Integer(_) => true,
            ConfigValue::Float(x) => x.is_finite(),
            ConfigValue::String(s) => {
                s.len() <= MAX_STRING_VALUE
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || " _.,:/+-@%".contains(c))
            }
        };
        if !value_ok {
            return Err(invalid(format!(
                "the value of configuration parameter {name} cannot be written into a configuration file"
            )));
        }
    }
    Ok(())
}

fn invalid(message: String) -> DatastoreError {
    DatastoreError::InvalidInput(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_model::Setting;

    fn one(name: &str, value: ConfigValue) -> Overrides {
        let setting = Setting {
            value,
            restart_required: false,
        };
        [(name.to_string(), setting)].into_iter().collect()
    }

    #[test]
    fn good_overrides_pass() {
        check(&one("max_connections", ConfigValue::Integer(5)), &["port"]).unwrap();
        check(
            &one(
                "maxmemory-policy",
                ConfigValue::String("allkeys-lru".into()),
            ),
            &[],
        )
        .unwrap();
        let modes = ConfigValue::String("STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION".into());
        check(&one("sql_mode", modes), &[]).unwrap();
        check(&one("x", ConfigValue::String(String::new())), &[]).unwrap();
    }

    #[test]
    fn what_could_break_a_file_or_coffer_is_refused() {
        let bad = [
            one("port", ConfigValue::Integer(1)),
            one("bind-address", ConfigValue::String("0.0.0.0".into())),
            one("a\nport", ConfigValue::Integer(1)),
            one("Max", ConfigValue::Integer(1)),
            one("x y", ConfigValue::Integer(1)),
            one("x", ConfigValue::Float(f64::NAN)),
            one("x", ConfigValue::Float(f64::INFINITY)),
            one("x", ConfigValue::String("a\"\nport 1".into())),
            one("x", ConfigValue::String("it's".into())),
            one("x", ConfigValue::String("a#b".into())),
            one("x", ConfigValue::String("a".repeat(MAX_STRING_VALUE + 1))),
        ];
        for overrides in bad {
            let e = check(&overrides, &["port", "bind_address"]).unwrap_err();
            assert!(matches!(e, DatastoreError::InvalidInput(_)), "{e}");
        }
        assert!(is_protected("bind-address", &["bind_address"]));
        assert!(is_protected("LOG_ERROR", &["log-error"]));
        assert!(!is_protected("max_connections", &["port"]));
    }
}
