//! `qilu changes`: follow a service's change feed the way an integrating system would, printing
//! one proto3 JSON `Change` per line (NDJSON) to stdout and the cursor to resume from to stderr.
//!
//! - `qilu changes head --service S` prints the feed's head cursor ("start now");
//! - `qilu changes follow --service S [--after CURSOR | --from-head] [--filter F]` streams with
//!   `WatchChanges` until interrupted (or, with `--once`, pages with `ListChanges` until caught
//!   up and exits), so `qilu changes follow --once --after "$(cat cursor)"` run from cron is a
//!   complete follower too.
//!
//! The three services' feeds have the same shape in their own packages; `feed!` writes the two
//! commands once per package.

use std::process::ExitCode;

use crate::client::{Conn, fail};
use crate::output;
use crate::resources::Service;

/// Where a follower starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// After this cursor (empty: from the first change).
    After(String),
    /// At the head: only changes committed from now on.
    Head,
}

/// `head` and `follow` for one service's generated feed types.
macro_rules! feed {
    ($module:ident, $pb:path, $client:path, $change:literal) => {
        mod $module {
            use super::*;
            use $pb as pb;

            fn client(conn: &Conn) -> $client {
                <$client>::new(conn.channel.clone()).max_decoding_message_size(64 * 1024 * 1024)
            }

            pub async fn head(conn: &Conn) -> Result<String, String> {
                Ok(client(conn)
                    .get_change_feed_head(conn.req(pb::GetChangeFeedHeadRequest {}))
                    .await
                    .map_err(|s| fail(conn, s))?
                    .into_inner()
                    .cursor)
            }

            fn print(changes: &[pb::Change]) -> Result<(), String> {
                for change in changes {
                    println!("{}", output::to_json($change, change)?);
                }
                Ok(())
            }

            pub async fn follow(
                conn: &Conn,
                mut cursor: String,
                filter: String,
                once: bool,
            ) -> Result<(), String> {
                if once {
                    loop {
                        let page = client(conn)
                            .list_changes(conn.req(pb::ListChangesRequest {
                                after_cursor: cursor,
                                page_size: 1000,
                                filter: filter.clone(),
                            }))
                            .await
                            .map_err(|s| fail(conn, s))?
                            .into_inner();
                        print(&page.changes)?;
                        cursor = page.next_cursor;
                        if page.caught_up {
                            eprintln!("cursor {cursor}");
                            return Ok(());
                        }
                    }
                }
                let mut stream = client(conn)
                    .watch_changes(conn.req(pb::WatchChangesRequest {
                        after_cursor: cursor,
                        filter,
                    }))
                    .await
                    .map_err(|s| fail(conn, s))?
                    .into_inner();
                while let Some(batch) = stream.message().await.map_err(|s| fail(conn, s))? {
                    print(&batch.changes)?;
                    eprintln!("cursor {}", batch.cursor);
                }
                Ok(())
            }
        }
    };
}

feed!(
    registry,
    qilu_proto::registry,
    qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient<
        tonic::transport::Channel,
    >,
    "qilu.registry.v1.Change"
);
feed!(
    review,
    qilu_proto::review,
    qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient<
        tonic::transport::Channel,
    >,
    "qilu.review.v1.Change"
);
feed!(
    awards,
    qilu_proto::awards,
    qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient<
        tonic::transport::Channel,
    >,
    "qilu.awards.v1.Change"
);

async fn head_of(conn: &Conn, service: Service) -> Result<String, String> {
    match service {
        Service::Registry => registry::head(conn).await,
        Service::Review => review::head(conn).await,
        Service::Awards => awards::head(conn).await,
    }
}

/// `qilu changes head`.
pub async fn head(conn: &Conn, service: Service) -> Result<ExitCode, String> {
    println!("{}", head_of(conn, service).await?);
    Ok(ExitCode::SUCCESS)
}

/// `qilu changes follow`.
pub async fn follow(
    conn: &Conn,
    service: Service,
    start: Start,
    filter: String,
    once: bool,
) -> Result<ExitCode, String> {
    let cursor = match start {
        Start::After(cursor) => cursor,
        Start::Head => head_of(conn, service).await?,
    };
    match service {
        Service::Registry => registry::follow(conn, cursor, filter, once).await?,
        Service::Review => review::follow(conn, cursor, filter, once).await?,
        Service::Awards => awards::follow(conn, cursor, filter, once).await?,
    }
    Ok(ExitCode::SUCCESS)
}
