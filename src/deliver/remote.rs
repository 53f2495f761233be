//! Reading what a target holds: its whole user list, page by page, each page one request
//! through the target's lane (rate limit, retries). Shared by the pre-flight, `--prune` and
//! `verify`.

use tokio_util::sync::CancellationToken;

use crate::lane::{Lane, Purpose, Retried};
use crate::reason::ReasonCode;
use crate::store::StoreError;
use crate::targets::{Class, Failure, RemoteUser};

/// Pages through the target's user list; the failure that ended it early otherwise.
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
            Retried::Stopped { .. } => {
                return Ok(Err(Failure::new(
                    Class::Transient,
                    ReasonCode::Interrupted,
                    format!(
                        "the run stopped before {}'s user list was read",
                        lane.name()
                    ),
                )));
            }
        };
        users.extend(page.users);
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
