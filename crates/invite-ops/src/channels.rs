//! Channels.

use invite_core::event::EventType;
use invite_core::permissions::Requirement;
use invite_core::server::{ChannelName, CreateChannelRequest};
use invite_store::models::Channel;
use invite_store::repo::{ChannelRepository, NewEvent};
use invite_store::{DbConnection, StoreResult, write_transaction};
use uuid::Uuid;

use crate::{Ctx, Done, member_standing, with_events};

/// Creates a channel (`MANAGE_CHANNELS`).
pub fn create(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    request: &CreateChannelRequest,
) -> StoreResult<Done<Channel>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageChannels)?;
        let name = ChannelName::parse(&request.name)?;
        let channel = conn.create_channel(server_id, &name, ctx.now)?;
        let event = NewEvent {
            server_id,
            kind: EventType::ChannelCreate,
            payload: serde_json::json!({
                "id": channel.id,
                "server_id": server_id,
                "name": channel.name,
            }),
        };
        with_events(conn, ctx, channel, &[event])
    })
}

/// The server's channels, oldest first (any member).
pub fn list(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> StoreResult<Vec<Channel>> {
    member_standing(conn, server_id, ctx.user_id())?;
    conn.list_channels(server_id)
}
