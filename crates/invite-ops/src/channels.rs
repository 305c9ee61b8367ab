//! Channels.

use invite_core::event::{ChannelData, Event};
use invite_core::permissions::Requirement;
use invite_core::server::{ChannelName, CreateChannelRequest};
use invite_store::models::Channel;
use invite_store::{DbConnection, write_transaction};
use uuid::Uuid;

use crate::{Ctx, OpResult, Outcome, member_standing, with_events};

/// Creates a channel (`MANAGE_CHANNELS`).
pub fn create(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    request: &CreateChannelRequest,
) -> OpResult<Outcome<Channel>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageChannels)?;
        let name = ChannelName::parse(&request.name)?;
        let channel = conn.create_channel(server_id, &name, ctx.now)?;
        let event = Event::ChannelCreate(ChannelData {
            id: channel.id,
            server_id,
            name: channel.name.clone(),
        });
        with_events(conn, ctx.now, channel, &[event])
    })
}

/// The server's channels, oldest first (any member).
pub fn list(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<Vec<Channel>> {
    member_standing(conn, server_id, ctx.user_id())?;
    Ok(conn.list_channels(server_id)?)
}
