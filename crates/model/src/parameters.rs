//! Configuration parameters: the schema of what a tenant may set on one
//! datastore version (shipped as data files, Trove's
//! `{"configuration-parameters": [...]}` layout), the checked values of a
//! configuration group, and the settings an agent applies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The type of a parameter's value, as Trove names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    Integer,
    Float,
    Boolean,
    String,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::Integer => "integer",
            ParameterType::Float => "float",
            ParameterType::Boolean => "boolean",
            ParameterType::String => "string",
        }
    }
}

/// One parameter a configuration group may set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Number>,
    /// For strings: the only values accepted (case-sensitive); empty = any
    /// value of the safe character set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
    /// False: applied to the running server at once. True: takes effect at
    /// the next restart (the instance shows RESTART_REQUIRED until then).
    pub restart_required: bool,
    /// The unit of a number, as the datastore counts it ("bytes", "kB",
    /// "8kB", "ms", "s"...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A checked value of a parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    String(String),
}

impl ConfigValue {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Boolean(b) => write!(f, "{b}"),
            ConfigValue::Integer(i) => write!(f, "{i}"),
            ConfigValue::Float(x) => write!(f, "{x}"),
            ConfigValue::String(s) => f.write_str(s),
        }
    }
}

/// What an agent is told to apply for one parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub value: ConfigValue,
    pub restart_required: bool,
}

/// The overrides an instance runs with, by parameter name.
pub type Overrides = BTreeMap<String, Setting>;

/// A value that failed the schema; the message names the parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidParameter {
    pub name: String,
    pub message: String,
}

/// Characters a string value may hold: enough for modes, lists, sizes and
/// paths of known shape, never quotes, newlines or comment characters, so a
/// value cannot break out of any configuration file or SQL literal.
fn safe_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " _.,:/+-@%".contains(c)
}

/// The longest string value accepted.
pub const MAX_STRING_VALUE: usize = 1024;

/// The parameters of one datastore version.
#[derive(Clone, Debug, PartialEq)]
pub struct ParameterSchema {
    parameters: BTreeMap<String, Parameter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    #[serde(rename = "configuration-parameters")]
    parameters: Vec<Parameter>,
}

impl ParameterSchema {
    /// Parse a schema file; names must be unique and well formed, ranges
    /// consistent and typed like their parameter.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: SchemaFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut parameters = BTreeMap::new();
        for p in file.parameters {
            check_definition(&p)?;
            let name = p.name.clone();
            if parameters.insert(name.clone(), p).is_some() {
                return Err(format!("parameter {name} is defined twice"));
            }
        }
        Ok(Self { parameters })
    }

    pub fn get(&self, name: &str) -> Option<&Parameter> {
        self.parameters.get(name)
    }

    /// Every parameter, by name.
    pub fn parameters(&self) -> impl Iterator<Item = &Parameter> {
        self.parameters.values()
    }

    /// Check a group's `values` object: every name known, every value of
    /// the parameter's type and within its range. Returns them normalised
    /// (booleans given as 0/1 or "on"/"off" become booleans, integers given
    /// as strings become integers).
    pub fn validate(
        &self,
        values: &Map<String, Value>,
    ) -> Result<BTreeMap<String, ConfigValue>, InvalidParameter> {
        let mut out = BTreeMap::new();
        for (name, raw) in values {
            let p = self.get(name).ok_or_else(|| InvalidParameter {
                name: name.clone(),
                message: format!(
                    "The configuration parameter {name} is not supported for this datastore version."
                ),
            })?;
            out.insert(name.clone(), p.check(raw)?);
        }
        Ok(out)
    }

    /// The settings an agent applies for checked `values`.
    pub fn settings(&self, values: &BTreeMap<String, ConfigValue>) -> Overrides {
        values
            .iter()
            .map(|(name, value)| {
                let restart_required = self.get(name).is_none_or(|p| p.restart_required);
                let setting = Setting {
                    value: value.clone(),
                    restart_required,
                };
                (name.clone(), setting)
            })
            .collect()
    }
}

/// The schemas of the offered datastore versions, by datastore and
/// version name. A version without one takes no configuration groups.
#[derive(Clone, Debug, Default)]
pub struct ParameterCatalog {
    schemas: BTreeMap<(String, String), std::sync::Arc<ParameterSchema>>,
}

impl ParameterCatalog {
    pub fn insert(&mut self, datastore: &str, version: &str, schema: ParameterSchema) {
        let key = (datastore.to_string(), version.to_string());
        self.schemas.insert(key, std::sync::Arc::new(schema));
    }

    pub fn get(&self, datastore: &str, version: &str) -> Option<&ParameterSchema> {
        let key = (datastore.to_string(), version.to_string());
        self.schemas.get(&key).map(|s| s.as_ref())
    }
}

fn check_definition(p: &Parameter) -> Result<(), String> {
    let ok_name = !p.name.is_empty()
        && p.name.len() <= 64
        && p.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c));
    if !ok_name {
        return Err(format!("parameter name {:?} is not well formed", p.name));
    }
    let numeric = matches!(p.kind, ParameterType::Integer | ParameterType::Float);
    if !numeric && (p.min.is_some() || p.max.is_some()) {
        return Err(format!("{}: only numbers have min/max", p.name));
    }
    if p.kind == ParameterType::Integer
        && [&p.min, &p.max]
            .into_iter()
            .flatten()
            .any(|n| n.as_i64().is_none())
    {
        return Err(format!("{}: integer bounds must be integers", p.name));
    }
    if let (Some(lo), Some(hi)) = (&p.min, &p.max) {
        if lo.as_f64() > hi.as_f64() {
            return Err(format!("{}: min is above max", p.name));
        }
    }
    if !p.allowed_values.is_empty() && p.kind != ParameterType::String {
        return Err(format!("{}: only strings have allowed_values", p.name));
    }
    if let Some(bad) = p
        .allowed_values
        .iter()
        .find(|v| v.is_empty() || !v.chars().all(safe_string_char))
    {
        return Err(format!("{}: allowed value {bad:?} is not safe", p.name));
    }
    Ok(())
}

impl Parameter {
    /// Check one value against this parameter.
    pub fn check(&self, raw: &Value) -> Result<ConfigValue, InvalidParameter> {
        let fail = |why: String| InvalidParameter {
            name: self.name.clone(),
            message: format!(
                "The value {raw} for the configuration parameter {} is invalid: {why}",
                self.name
            ),
        };
        match self.kind {
            ParameterType::Integer => {
                let n = match raw {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| fail("it must be an integer".into()))?;
                self.check_range(n as f64).map_err(fail)?;
                Ok(ConfigValue::Integer(n))
            }
            ParameterType::Float => {
                let x = match raw {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|x| x.is_finite())
                .ok_or_else(|| fail("it must be a number".into()))?;
                self.check_range(x).map_err(fail)?;
                Ok(ConfigValue::Float(x))
            }
            ParameterType::Boolean => {
                let b = match raw {
                    Value::Bool(b) => Some(*b),
                    Value::Number(n) => match n.as_i64() {
                        Some(0) => Some(false),
                        Some(1) => Some(true),
                        _ => None,
                    },
                    Value::String(s) => match s.to_ascii_lowercase().as_str() {
                        "true" | "on" | "yes" | "1" => Some(true),
                        "false" | "off" | "no" | "0" => Some(false),
                        _ => None,
                    },
                    _ => None,
                }
                .ok_or_else(|| fail("it must be true or false".into()))?;
                Ok(ConfigValue::Boolean(b))
            }
            ParameterType::String => {
                let s = match raw {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(fail("it must be a string".into())),
                };
                if !self.allowed_values.is_empty() {
                    if !self.allowed_values.contains(&s) {
                        return Err(fail(format!(
                            "allowed values are {}",
                            self.allowed_values.join(", ")
                        )));
                    }
                } else if s.len() > MAX_STRING_VALUE || !s.chars().all(safe_string_char) {
                    return Err(fail(format!(
                        "it may hold at most {MAX_STRING_VALUE} letters, digits, spaces and _ . , : / + - @ %"
                    )));
                }
                Ok(ConfigValue::String(s))
            }
        }
    }

    fn check_range(&self, x: f64) -> Result<(), String> {
        if let Some(lo) = self.min.as_ref().and_then(Number::as_f64) {
            if x < lo {
                return Err(format!("the minimum is {}", self.min.as_ref().unwrap()));
            }
        }
        if let Some(hi) = self.max.as_ref().and_then(Number::as_f64) {
            if x > hi {
                return Err(format!("the maximum is {}", self.max.as_ref().unwrap()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{"configuration-parameters": [
        {"name": "max_connections", "type": "integer", "min": 1, "max": 1000, "restart_required": false},
        {"name": "ratio", "type": "float", "min": 0.5, "max": 2, "restart_required": false},
        {"name": "slow_log", "type": "boolean", "restart_required": false},
        {"name": "mode", "type": "string", "allowed_values": ["fast", "safe"], "restart_required": true},
        {"name": "sql_mode", "type": "string", "restart_required": false}
    ]}"#;

    fn schema() -> ParameterSchema {
        ParameterSchema::parse(SCHEMA).unwrap()
    }

    fn check(values: Value) -> Result<BTreeMap<String, ConfigValue>, InvalidParameter> {
        schema().validate(values.as_object().unwrap())
    }

    #[test]
    fn good_values_are_normalised() {
        let v = check(
            json!({"max_connections": "200", "ratio": 1, "slow_log": "ON",
            "mode": "safe", "sql_mode": "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION"}),
        )
        .unwrap();
        assert_eq!(v["max_connections"], ConfigValue::Integer(200));
        assert_eq!(v["ratio"], ConfigValue::Float(1.0));
        assert_eq!(v["slow_log"], ConfigValue::Boolean(true));
        assert_eq!(v["mode"], ConfigValue::String("safe".into()));
        let settings = schema().settings(&v);
        assert!(settings["mode"].restart_required);
        assert!(!settings["max_connections"].restart_required);
        // Settings travel as JSON and come back the same.
        let back: Overrides =
            serde_json::from_value(serde_json::to_value(&settings).unwrap()).unwrap();
        assert_eq!(back, settings);
    }

    #[test]
    fn every_bad_value_names_its_parameter() {
        for (values, name, words) in [
            (json!({"no_such": 1}), "no_such", "not supported"),
            (
                json!({"max_connections": 0}),
                "max_connections",
                "minimum is 1",
            ),
            (
                json!({"max_connections": 1001}),
                "max_connections",
                "maximum is 1000",
            ),
            (
                json!({"max_connections": 1.5}),
                "max_connections",
                "integer",
            ),
            (
                json!({"max_connections": "lots"}),
                "max_connections",
                "integer",
            ),
            (json!({"ratio": 3}), "ratio", "maximum is 2"),
            (json!({"slow_log": 2}), "slow_log", "true or false"),
            (json!({"mode": "turbo"}), "mode", "fast, safe"),
            (json!({"sql_mode": "a'; DROP"}), "sql_mode", "letters"),
            (json!({"sql_mode": "a\nb"}), "sql_mode", "letters"),
            (json!({"sql_mode": ["x"]}), "sql_mode", "string"),
        ] {
            let e = check(values.clone()).unwrap_err();
            assert_eq!(e.name, name, "{values}");
            assert!(e.message.contains(name), "{e}");
            assert!(e.message.contains(words), "{values}: {e}");
        }
    }

    #[test]
    fn broken_schemas_are_refused() {
        for bad in [
            r#"{"configuration-parameters": [{"name": "a", "type": "integer", "restart_required": false},
                {"name": "a", "type": "integer", "restart_required": false}]}"#,
            r#"{"configuration-parameters": [{"name": "A b", "type": "integer", "restart_required": false}]}"#,
            r#"{"configuration-parameters": [{"name": "a", "type": "integer", "min": 5, "max": 1, "restart_required": false}]}"#,
            r#"{"configuration-parameters": [{"name": "a", "type": "boolean", "min": 0, "restart_required": false}]}"#,
            r#"{"configuration-parameters": [{"name": "a", "type": "integer", "min": 0.5, "restart_required": false}]}"#,
            r#"{"configuration-parameters": [{"name": "a", "type": "string", "allowed_values": ["x'y"], "restart_required": false}]}"#,
            r#"{"configuration-parameters": [{"name": "a", "type": "integer"}]}"#,
            r#"{"parameters": []}"#,
        ] {
            assert!(ParameterSchema::parse(bad).is_err(), "{bad}");
        }
    }
}
