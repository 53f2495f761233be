//! Reading what a target holds: its whole user list, page by page, each page one request
//! through the target's lane (rate limit, retries). Shared by the pre-flight, `--prune` and
//! `verify`.

use tokio_util::sync::CancellationToken;

use crate::lane::{Lane, Purpose, Retried};
use crate::reason::ReasonCode;
use crate::store::StoreError;
use crate::targets::{Class, Failure, RemoteUser};

/// Pages through the target's user list; the failure that ended it early otherwise. When the
/// first page places every later one ([`crate::targets::RemotePage::later`]), those are read
/// concurrently, up to the target's `concurrency` (a list of 100,000 users is 1,000 pages).
pub(crate) async fn list_all(
    lane: &Lane,
    stop: &CancellationToken,
) -> Result<Result<Vec<RemoteUser>, Failure>, StoreError> {
    let mut users = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = lane
            .with_retries_for(Purpose::Check, stop, || async {
                Ok(lane.target.list_users(cursor.as_deref()).await)
            })
            .await?;
        let page = match page {
            Retried::Done(page) => page,
            Retried::Failed(f) => return Ok(Err(f)),
            Retried::Stopped { .. } => return Ok(Err(stopped(lane))),
        };
        users.extend(page.users);
        if !page.later.is_empty() {
            return read_later(lane, stop, page.later, users).await;
        }
        match page.next {
            // A cursor that does not move would page forever.
            Some(next) if Some(&next) == cursor.as_ref() => {
                return Ok(Err(Failure::new(
                    Class::Transient,
                    ReasonCode::ServerError,
                    format!("{} repeated a page of its user list", lane.name()),
                )));
            }
            Some(next) => cursor = Some(next),
            None => return Ok(Ok(users)),
        }
    }
}

/// Reads the pages at `cursors` concurrently (each through the lane: rate limit, retries) and
/// adds their users to `users` in page order.
async fn read_later(
    lane: &Lane,
    stop: &CancellationToken,
    cursors: Vec<String>,
    mut users: Vec<RemoteUser>,
) -> Result<Result<Vec<RemoteUser>, Failure>, StoreError> {
    use futures::StreamExt as _;
    let pages = cursors.into_iter().map(|cursor| async move {
        lane.with_retries_for(Purpose::Check, stop, || async {
            Ok(lane.target.list_users(Some(&cursor)).await)
        })
        .await
    });
    let mut pages = futures::stream::iter(pages).buffered(lane.concurrency.max(1));
    while let Some(page) = pages.next().await {
        match page? {
            Retried::Done(page) => users.extend(page.users),
            Retried::Failed(f) => return Ok(Err(f)),
            Retried::Stopped { .. } => return Ok(Err(stopped(lane))),
        }
    }
    Ok(Ok(users))
}

fn stopped(lane: &Lane) -> Failure {
    Failure::new(
        Class::Transient,
        ReasonCode::Interrupted,
        format!(
            "the run stopped before {}'s user list was read",
            lane.name()
        ),
    )
}
