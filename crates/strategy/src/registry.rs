use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;

/// A name that no registered implementation answers to.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown {kind} strategy {name:?}; known: {}", known.join(", "))]
pub struct UnknownStrategy {
    pub kind: &'static str,
    pub name: String,
    pub known: Vec<String>,
}

/// Implementations of one strategy kind, by name.
pub struct Registry<T: ?Sized> {
    kind: &'static str,
    entries: BTreeMap<String, Arc<T>>,
}

impl<T: ?Sized> Registry<T> {
    /// An empty registry for strategies of `kind` (used in error messages).
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            entries: BTreeMap::new(),
        }
    }

    /// Register `imp` under `name`, replacing any earlier one.
    pub fn register(&mut self, name: &str, imp: Arc<T>) {
        self.entries.insert(name.to_string(), imp);
    }

    /// The implementation registered as `name`.
    pub fn get(&self, name: &str) -> Result<Arc<T>, UnknownStrategy> {
        self.entries
            .get(name)
            .cloned()
            .ok_or_else(|| UnknownStrategy {
                kind: self.kind,
                name: name.to_string(),
                known: self.names(),
            })
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_lists_known_ones() {
        let mut r: Registry<str> = Registry::new("datastore manager");
        r.register("mariadb", Arc::from("m"));
        r.register("redis", Arc::from("r"));
        assert_eq!(&*r.get("mariadb").unwrap(), "m");
        let e = r.get("oracle").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown datastore manager strategy \"oracle\"; known: mariadb, redis"
        );
    }
}
