//! One way to answer a list: the request's page parameters become a
//! read-model [`Window`], the page it answers becomes the API's [`Page`]
//! (its cursor, the next page token).

use iga_http::page::{page_token, Page, PageParams};
use iga_http::Problem;
use projection_service::queries::{Paged, Window};

/// A read model's trouble, as the API answers it.
pub fn internal(e: impl std::fmt::Display) -> Problem {
    Problem::internal(e.to_string())
}

/// Answers the page `query` finds in the window `page` asks for, rendered.
pub fn list<V, T>(
    page: &PageParams,
    query: impl FnOnce(Window<'_>) -> projection_service::Result<Paged<V>>,
    render: impl Fn(V) -> T,
) -> Result<Page<T>, Problem> {
    let size = page.size()?;
    let after = page.after()?;
    let found = query(Window {
        after: after.as_deref(),
        size,
    })
    .map_err(internal)?;
    Ok(Page {
        list: found.items.into_iter().map(render).collect(),
        next_page_token: found.next.as_deref().map(page_token),
    })
}

/// A response body sent chunk by chunk as a producer hands them over; an
/// error ends it cut off, so a client never takes a partial answer for a
/// whole one.
pub fn streamed(
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> axum::body::Body {
    axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}
