//! Paging of lists the API builds itself (users, databases): sorted by
//! name, `marker` is the last name of the previous page.

use crate::ApiError;
use serde_json::{json, Value};
use std::collections::HashMap;

/// `limit` from the query: a positive integer, `default` when absent,
/// never more than `max`.
pub fn limit(
    query: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|&l| l > 0)
            .map(|l| l.min(max))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be a positive integer, not {l:?}"))
            }),
    }
}

/// `marker` from the query as an id (`what` names it in the error).
pub fn marker<T: std::str::FromStr>(
    query: &HashMap<String, String>,
    what: &str,
) -> Result<Option<T>, ApiError> {
    query
        .get("marker")
        .map(|m| {
            m.parse::<T>()
                .map_err(|_| ApiError::BadRequest(format!("marker {m:?} is not {what}")))
        })
        .transpose()
}

/// A page the store read with `limit + 1` rows, cut to `limit`; the
/// `links` value naming the next page (`next_href` of the last row kept)
/// when there was one more row.
pub fn cut<T>(rows: &mut Vec<T>, limit: usize, next_href: impl Fn(&T) -> String) -> Option<Value> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    match (more, rows.last()) {
        (true, Some(last)) => Some(json!([{"href": next_href(last), "rel": "next"}])),
        _ => None,
    }
}

/// The store's NotFound for a listing's marker is the caller's mistake: a
/// 400 saying `message`.
pub fn bad_marker(e: coffer_meta::MetaError, message: impl FnOnce() -> String) -> ApiError {
    match e {
        coffer_meta::MetaError::NotFound { .. } => ApiError::BadRequest(message()),
        other => other.into(),
    }
}

/// The page of `items` (sorted by `key`) that `limit` and `marker` in the
/// query select, and the `links` value when more follow.
pub fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &HashMap<String, String>,
    default_limit: usize,
    next_href: impl Fn(usize, &str) -> String,
) -> Result<(Vec<T>, Option<Value>), ApiError> {
    items.sort_by_key(&key);
    let limit = limit(query, default_limit, usize::MAX)?;
    if let Some(m) = query.get("marker") {
        items.retain(|i| key(i).as_str() > m.as_str());
    }
    let more = items.len() > limit;
    items.truncate(limit);
    let links = match (more, items.last()) {
        (true, Some(last)) => Some(json!([{"rel": "next", "href": next_href(limit, &key(last))}])),
        _ => None,
    };
    Ok((items, links))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let q = |l: &str, m: Option<&str>| {
            let mut h = HashMap::from([("limit".to_string(), l.to_string())]);
            if let Some(m) = m {
                h.insert("marker".into(), m.into());
            }
            h
        };
        let items = vec!["c", "a", "b"];
        let href = |l: usize, m: &str| format!("?limit={l}&marker={m}");
        let (p, links) = page(items.clone(), |s| s.to_string(), &q("2", None), 20, href).unwrap();
        assert_eq!(p, ["a", "b"]);
        assert_eq!(links.unwrap()[0]["href"], "?limit=2&marker=b");
        let (p, links) = page(
            items.clone(),
            |s| s.to_string(),
            &q("2", Some("b")),
            20,
            href,
        )
        .unwrap();
        assert_eq!((p, links), (vec!["c"], None));
        assert!(page(items, |s| s.to_string(), &q("0", None), 20, href).is_err());
    }
}
