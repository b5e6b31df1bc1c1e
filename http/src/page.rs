//! Lists: `?pageSize=` (default 25, at most 1000) and `?pageToken=`, answered
//! as `{list, nextPageToken}` (plus `totalCount` where the API says so).

use serde::{Deserialize, Serialize};

use crate::Problem;

pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 1000;
/// Longest page token: the hex of a read model key of up to 512 bytes.
pub const MAX_PAGE_TOKEN: usize = 1024;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 1000; 25 when absent.
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<usize>,
    /// The `nextPageToken` of the previous page.
    #[param(pattern = "^([0-9a-f]{2}){0,512}$")]
    pub page_token: Option<String>,
}

impl PageParams {
    pub fn size(&self) -> Result<usize, Problem> {
        match self.page_size {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(_) => Err(Problem::bad_request(format!(
                "pageSize must be between 1 and {MAX_PAGE_SIZE}"
            ))
            .with_field("pageSize", "out of range")),
        }
    }

    /// The decoded page token: the key after which the page starts. Only
    /// what [`page_token`] writes (lower-case hex, up to
    /// [`MAX_PAGE_TOKEN`] characters: the OpenAPI's pattern) is taken.
    pub fn after(&self) -> Result<Option<Vec<u8>>, Problem> {
        let issued = |t: &str| {
            t.len() <= MAX_PAGE_TOKEN && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        match self.page_token.as_deref() {
            None | Some("") => Ok(None),
            // The form first: a token it rules out is not decoded at all.
            Some(t) => Some(t)
                .filter(|t| issued(t))
                .and_then(|t| hex::decode(t).ok())
                .map(Some)
                .ok_or_else(|| {
                    Problem::bad_request("pageToken is not one this service issued")
                        .with_field("pageToken", "invalid")
                }),
        }
    }
}

/// Encodes the key a next page starts after.
pub fn page_token(last_key: &[u8]) -> String {
    hex::encode(last_key)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub list: Vec<T>,
    pub next_page_token: Option<String>,
}

/// `?includeDeleted=`: whether a read shows deleted objects (soft-deleted,
/// kept for history). Without it, a deleted object answers 404.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ShowDeleted {
    /// Show it even if deleted (default false: a deleted object is 404).
    #[serde(default)]
    pub include_deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(token: &str) -> Result<Option<Vec<u8>>, Problem> {
        PageParams {
            page_size: None,
            page_token: Some(token.to_string()),
        }
        .after()
    }

    /// Only tokens the OpenAPI's pattern admits are taken: what
    /// `page_token` writes, and nothing a hex decoder would also read.
    #[test]
    fn a_page_token_is_taken_only_as_issued() {
        let key = b"grant\0user-1\xff".to_vec();
        assert_eq!(after(&page_token(&key)).unwrap(), Some(key));
        assert_eq!(after("").unwrap(), None);
        assert_eq!(
            after(&"ab".repeat(512)).unwrap().map(|k| k.len()),
            Some(512)
        );
        for bad in ["AB", "aB", "abc", "zz", "ab ", &"ab".repeat(513)] {
            assert!(after(bad).is_err(), "{bad:?} was taken");
        }
    }
}
