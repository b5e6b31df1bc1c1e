//! One paging loop for every list over a read model's key prefix.

use iga_http::page::{page_token, Page, PageParams};
use iga_http::Problem;
use serde::de::DeserializeOwned;

/// The page of values under `prefix` that pass `keep`, in key order, after
/// the request's page token.
pub fn page_over<V: DeserializeOwned, T>(
    tree: &sled::Tree,
    prefix: &[u8],
    page: &PageParams,
    keep: impl Fn(&V) -> bool,
    render: impl Fn(V) -> T,
) -> Result<Page<T>, Problem> {
    let size = page.size()?;
    let mut end = prefix.to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    // A token is a key to start after; one from another list starts this
    // one at its beginning (before it) or answers an empty page (after it).
    let start = match page.after()? {
        Some(after) if after.as_slice() >= end.as_slice() => {
            return Ok(Page {
                list: Vec::new(),
                next_page_token: None,
            })
        }
        Some(after) if after.as_slice() >= prefix => std::ops::Bound::Excluded(after),
        _ => std::ops::Bound::Included(prefix.to_vec()),
    };
    let mut list = Vec::with_capacity(size);
    let mut last_key = None;
    let mut more = false;
    for kv in tree.range((start, std::ops::Bound::Excluded(end))) {
        let (k, v) = kv.map_err(|e| Problem::internal(e.to_string()))?;
        let value: V = projection_service::staged::decode_value(&v)
            .map_err(|e| Problem::internal(e.to_string()))?;
        if !keep(&value) {
            continue;
        }
        if list.len() == size {
            more = true;
            break;
        }
        last_key = Some(k.to_vec());
        list.push(render(value));
    }
    let next_page_token = if more {
        last_key.as_deref().map(page_token)
    } else {
        None
    };
    Ok(Page {
        list,
        next_page_token,
    })
}
