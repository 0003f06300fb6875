//! `qilu changes`: follow a service's change feed the way an integrating system would, printing
//! one proto3 JSON `Change` per line (NDJSON) to stdout and the cursor to resume from to stderr.
//!
//! - `qilu changes head` prints the feed's head cursor ("start now");
//! - `qilu changes follow [--after CURSOR | --from-head] [--filter F]` streams with
//!   `WatchChanges` until interrupted (or, with `--once`, pages with `ListChanges` until caught
//!   up and exits), so `qilu changes follow --once --after "$(cat cursor)"` run from cron is a
//!   complete follower too.

use std::process::ExitCode;

use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;

use crate::client::{Conn, fail};
use crate::output;

fn client(conn: &Conn) -> EnterpriseRegistryServiceClient<tonic::transport::Channel> {
    EnterpriseRegistryServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// `qilu changes head`.
pub async fn head(conn: &Conn) -> Result<ExitCode, String> {
    let head = client(conn)
        .get_change_feed_head(conn.req(pb::GetChangeFeedHeadRequest {}))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    println!("{}", head.cursor);
    Ok(ExitCode::SUCCESS)
}

fn print(change: &pb::Change) -> Result<(), String> {
    let line = output::to_json("qilu.registry.v1.Change", change)?;
    println!("{line}");
    Ok(())
}

/// `qilu changes follow`.
pub async fn follow(
    conn: &Conn,
    after: Option<String>,
    from_head: bool,
    filter: String,
    once: bool,
) -> Result<ExitCode, String> {
    let mut cursor = match (after, from_head) {
        (Some(c), _) => c,
        (None, true) => {
            client(conn)
                .get_change_feed_head(conn.req(pb::GetChangeFeedHeadRequest {}))
                .await
                .map_err(|s| fail(conn, s))?
                .into_inner()
                .cursor
        }
        (None, false) => String::new(),
    };
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
            for change in &page.changes {
                print(change)?;
            }
            cursor = page.next_cursor;
            if page.caught_up {
                eprintln!("cursor {cursor}");
                return Ok(ExitCode::SUCCESS);
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
        for change in &batch.changes {
            print(change)?;
        }
        eprintln!("cursor {}", batch.cursor);
    }
    Ok(ExitCode::SUCCESS)
}
