//! Per-invite analytics (contract section 11): `GET /servers/{id}/invites/{invite_id}/stats`
//! and `GET /servers/{id}/invite-stats`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The joins of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinsOnDay {
    /// The day, `YYYY-MM-DD` (UTC).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date, example = "2026-12-08"))]
    pub date: NaiveDate,
    /// Joins that day.
    pub joins: i64,
}

/// An invite's analytics (`GET /servers/{id}/invites/{invite_id}/stats`). Joins are folded in
/// from the outbox and previews and refusals written from each instance's memory, every
/// `INVITE_ANALYTICS_FLUSH_INTERVAL` and before each read by the instance answering it: only
/// what other instances counted lags, by up to that interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteStats {
    /// Times its preview was shown (the API's `GET /invites/{code}` and the invite page).
    pub previews: i64,
    /// Joins through it.
    pub accepts: i64,
    /// Accepts through it refused, by the contract's error code (`INVITE_MAXED_OUT`, ...).
    pub refusals: BTreeMap<String, i64>,
    /// Joins per UTC day over the last 30 days, oldest first; days without joins left out.
    pub joins_per_day: Vec<JoinsOnDay>,
    /// How many who joined through it are still members.
    pub retained: i64,
}

/// One invite among a server's top 100 by accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteStatsSummary {
    /// The invite.
    pub invite_id: Uuid,
    /// Its code.
    pub code: Option<String>,
    /// Times its preview was shown.
    pub previews: i64,
    /// Joins through it.
    pub accepts: i64,
    /// How many who joined through it are still members.
    pub retained: i64,
}

/// A server's analytics (`GET /servers/{id}/invite-stats`): the totals over its invites, in
/// the fields of [`InviteStats`], and its top 100 invites by accepts, most first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerInviteStats {
    /// Previews of all its invites.
    pub previews: i64,
    /// Joins through all its invites.
    pub accepts: i64,
    /// Refused accepts, by error code.
    pub refusals: BTreeMap<String, i64>,
    /// Joins per UTC day over the last 30 days, oldest first; days without joins left out.
    pub joins_per_day: Vec<JoinsOnDay>,
    /// How many who joined through any of its invites are still members.
    pub retained: i64,
    /// The top 100 invites by accepts, most first (ties by id).
    pub invites: Vec<InviteStatsSummary>,
}

impl From<invite_core::stats::InviteStats> for InviteStats {
    fn from(stats: invite_core::stats::InviteStats) -> Self {
        Self {
            previews: stats.previews,
            accepts: stats.accepts,
            refusals: stats.refusals,
            joins_per_day: days(stats.joins_per_day),
            retained: stats.retained,
        }
    }
}

impl From<invite_core::stats::ServerStats> for ServerInviteStats {
    fn from(stats: invite_core::stats::ServerStats) -> Self {
        let totals = stats.totals;
        Self {
            previews: totals.previews,
            accepts: totals.accepts,
            refusals: totals.refusals,
            joins_per_day: days(totals.joins_per_day),
            retained: totals.retained,
            invites: stats
                .invites
                .into_iter()
                .map(|invite| InviteStatsSummary {
                    invite_id: invite.invite_id,
                    code: invite.code,
                    previews: invite.previews,
                    accepts: invite.accepts,
                    retained: invite.retained,
                })
                .collect(),
        }
    }
}

fn days(days: Vec<(NaiveDate, i64)>) -> Vec<JoinsOnDay> {
    days.into_iter().map(|(date, joins)| JoinsOnDay { date, joins }).collect()
}
