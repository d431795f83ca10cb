//! Tables for people, JSON for programs.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Render a JSON value as a cell: strings bare, lists joined, null empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Look up a dotted path (`flavor.id`) in a JSON object.
pub fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// Print `rows` as a table with `columns` (header, dotted path), or as JSON.
pub fn print_list(format: Format, rows: &[Value], columns: &[(&str, &str)]) {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(columns.iter().map(|(h, _)| *h));
    for r in rows {
        t.add_row(columns.iter().map(|(_, p)| cell(field(r, p))));
    }
    println!("{t}");
}

/// Print one object as a two-column table of `fields`, or as JSON.
pub fn print_one(format: Format, v: &Value, fields: &[(&str, &str)]) {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["Field", "Value"]);
    for (h, p) in fields {
        let value = field(v, p);
        if !value.is_null() {
            t.add_row([h.to_string(), cell(value)]);
        }
    }
    println!("{t}");
}
