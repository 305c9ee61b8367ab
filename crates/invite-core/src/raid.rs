//! Raid protection (contract section 11): when a server admits `joins` people within
//! `window_seconds`, its invites pause for `pause_seconds` by themselves.
//!
//! The joins are counted in fixed windows kept on the server's row (when the window started and
//! how many it has admitted), so that counting costs a join nothing but two columns of the row
//! it already updates (its member count). A window opens with the first join after the last one
//! has run out (`window_seconds` after its start), or after a pause ended or was lifted; every
//! join admitted while it is open counts, whichever invite it came through. The join that
//! brings the window's count to `joins` is admitted, pauses the invites and closes the window:
//! the count starts afresh once the pause is over. No window ever admits more than `joins`.
//!
//! [`count_join`] is the rule; the store applies it under the server's row lock (on
//! PostgreSQL, in the accept's own statement), so that racing joins are counted one at a time.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// The fewest joins a window may be set to pause at.
pub const MIN_JOINS: i64 = 2;
/// The most joins a window may be set to pause at.
pub const MAX_JOINS: i64 = 10_000;
/// The shortest window, in seconds.
pub const MIN_WINDOW_SECONDS: i64 = 10;
/// The longest window, in seconds (a day).
pub const MAX_WINDOW_SECONDS: i64 = 86_400;
/// The shortest pause, in seconds.
pub const MIN_PAUSE_SECONDS: i64 = 60;
/// The longest pause, in seconds (a week).
pub const MAX_PAUSE_SECONDS: i64 = 604_800;

/// A server's raid protection: pause invites for `pause_seconds` once `joins` people have
/// joined within `window_seconds`. Only [`RaidProtectionRequest::validate`] and
/// [`RaidProtection::new`] build one, so every value in hand is within its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaidProtection {
    joins: i64,
    window_seconds: i64,
    pause_seconds: i64,
}

impl RaidProtection {
    /// The protection, if every value is within its bounds (else the first one that is not,
    /// as a `VALIDATION_ERROR`).
    pub fn new(joins: i64, window_seconds: i64, pause_seconds: i64) -> Result<Self, Problem> {
        check_bounds("joins", joins, MIN_JOINS, MAX_JOINS)?;
        check_bounds("window_seconds", window_seconds, MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS)?;
        check_bounds("pause_seconds", pause_seconds, MIN_PAUSE_SECONDS, MAX_PAUSE_SECONDS)?;
        Ok(Self { joins, window_seconds, pause_seconds })
    }

    /// How many joins in one window pause the invites.
    pub const fn joins(self) -> i64 {
        self.joins
    }

    /// How long a window lasts, in seconds.
    pub const fn window_seconds(self) -> i64 {
        self.window_seconds
    }

    /// How long the invites pause, in seconds.
    pub const fn pause_seconds(self) -> i64 {
        self.pause_seconds
    }

    /// The protection as stored in its three columns; `None` when any is missing (off).
    pub fn from_columns(
        joins: Option<i64>,
        window_seconds: Option<i64>,
        pause_seconds: Option<i64>,
    ) -> Option<Self> {
        // Stored values were validated on their way in; a value out of bounds (an edit by
        // hand) is taken as written rather than turning the protection off unseen.
        Some(Self { joins: joins?, window_seconds: window_seconds?, pause_seconds: pause_seconds? })
    }
}

fn check_bounds(field: &str, value: i64, min: i64, max: i64) -> Result<(), Problem> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Problem::validation(format!("{field} must be between {min} and {max}")))
    }
}

/// The body of `PUT /servers/{id}/raid-protection`: `{joins, window_seconds, pause_seconds}`,
/// all three required. Each is held as the JSON value sent, so that a wrong type reaches
/// [`RaidProtectionRequest::validate`] (and its `VALIDATION_ERROR`) instead of failing the parse
/// of the whole body (contract section 11: every new field's wrong type is a validation error).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RaidProtectionRequest {
    /// How many joins within the window pause the invites (2-10000).
    #[serde(default, deserialize_with = "sent", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64, required, minimum = 2, maximum = 10_000))]
    pub joins: Option<serde_json::Value>,
    /// The window, in seconds (10-86400).
    #[serde(default, deserialize_with = "sent", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64, required, minimum = 10, maximum = 86_400))]
    pub window_seconds: Option<serde_json::Value>,
    /// How long the invites pause, in seconds (60-604800).
    #[serde(default, deserialize_with = "sent", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64, required, minimum = 60, maximum = 604_800))]
    pub pause_seconds: Option<serde_json::Value>,
}

impl RaidProtectionRequest {
    /// A request for this protection.
    pub fn new(joins: i64, window_seconds: i64, pause_seconds: i64) -> Self {
        Self {
            joins: Some(joins.into()),
            window_seconds: Some(window_seconds.into()),
            pause_seconds: Some(pause_seconds.into()),
        }
    }

    /// The protection asked for; a field missing, not an integer, or out of its bounds is a
    /// `VALIDATION_ERROR` naming it (checked in the order `joins`, `window_seconds`,
    /// `pause_seconds`).
    pub fn validate(&self) -> Result<RaidProtection, Problem> {
        let joins = integer("joins", self.joins.as_ref(), MIN_JOINS, MAX_JOINS)?;
        let window = integer(
            "window_seconds",
            self.window_seconds.as_ref(),
            MIN_WINDOW_SECONDS,
            MAX_WINDOW_SECONDS,
        )?;
        let pause = integer(
            "pause_seconds",
            self.pause_seconds.as_ref(),
            MIN_PAUSE_SECONDS,
            MAX_PAUSE_SECONDS,
        )?;
        RaidProtection::new(joins, window, pause)
    }
}

/// A field as sent, `null` included (`Some(Value::Null)`): only a field left out is `None`.
fn sent<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// An integral JSON number (`10` or `10.0`, as JSON Schema reads integers) within its bounds.
fn integer(
    field: &str,
    value: Option<&serde_json::Value>,
    min: i64,
    max: i64,
) -> Result<i64, Problem> {
    let out_of_bounds = || Problem::validation(format!("{field} must be between {min} and {max}"));
    let Some(value) = value else {
        return Err(Problem::validation(format!("{field} is required")));
    };
    let serde_json::Value::Number(number) = value else {
        return Err(Problem::validation(format!("{field} must be an integer")));
    };
    if let Some(value) = number.as_i64() {
        check_bounds(field, value, min, max)?;
        return Ok(value);
    }
    if number.is_u64() {
        return Err(out_of_bounds());
    }
    match number.as_f64() {
        // Beyond what any bound allows, and past where an `f64` holds integers exactly.
        Some(value) if value.fract() == 0.0 && value.abs() > 1e15 => Err(out_of_bounds()),
        Some(value) if value.fract() == 0.0 => {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "integral and well within an i64, checked above"
            )]
            let value = value as i64;
            check_bounds(field, value, min, max)?;
            Ok(value)
        }
        _ => Err(Problem::validation(format!("{field} must be an integer"))),
    }
}

/// Where a server's current window stands: when it opened (`None`: no window is open) and how
/// many joins it has admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RaidWindow {
    /// When the window opened, with its first join; `None` when none is open.
    pub started_at: Option<DateTime<Utc>>,
    /// The joins the window has admitted.
    pub joins: i64,
}

impl RaidWindow {
    /// Whether the window is still open at `now` under `protection`.
    pub fn is_open(self, protection: RaidProtection, now: DateTime<Utc>) -> bool {
        self.started_at
            .is_some_and(|started| now < started + Duration::seconds(protection.window_seconds))
    }
}

/// What counting one more admitted join does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaidCount {
    /// The server is not protected: nothing is counted.
    Unprotected,
    /// The join is counted; the window stands so afterwards.
    Counted(RaidWindow),
    /// The join reaches the threshold: it is admitted, the invites pause until this time, and
    /// the window closes (the count starts afresh after the pause).
    Tripped {
        /// When the invites work again.
        paused_until: DateTime<Utc>,
    },
}

/// Counts a join admitted at `now` (the rules of [`crate::redeem`] having admitted it, the
/// server not paused) into the server's window.
pub fn count_join(
    protection: Option<RaidProtection>,
    window: RaidWindow,
    now: DateTime<Utc>,
) -> RaidCount {
    count_joins(protection, window, 1, now)
}

/// Counts `joins` joins admitted together at `now` (a set-based batch's joins to one server,
/// all counted at its latest request time). The caller admits no more than
/// [`admissible_joins`] allows, so the last of them trips the pause at most.
pub fn count_joins(
    protection: Option<RaidProtection>,
    window: RaidWindow,
    joins: i64,
    now: DateTime<Utc>,
) -> RaidCount {
    let Some(protection) = protection else {
        return RaidCount::Unprotected;
    };
    let (started_at, before) = if window.is_open(protection, now) {
        (window.started_at, window.joins)
    } else {
        (Some(now), 0)
    };
    let counted = before + joins;
    if counted >= protection.joins {
        RaidCount::Tripped { paused_until: now + Duration::seconds(protection.pause_seconds) }
    } else {
        RaidCount::Counted(RaidWindow { started_at, joins: counted })
    }
}

/// How many more joins the server's window admits at `now` (`None`: no limit, unprotected).
/// A window that has reached its count has paused the invites, so this is at least one for a
/// server that is not paused.
pub fn admissible_joins(
    protection: Option<RaidProtection>,
    window: RaidWindow,
    now: DateTime<Utc>,
) -> Option<i64> {
    let protection = protection?;
    let before = if window.is_open(protection, now) { window.joins } else { 0 };
    Some((protection.joins - before).max(0))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn protection(joins: i64, window: i64, pause: i64) -> RaidProtection {
        RaidProtection::new(joins, window, pause).unwrap()
    }

    fn parse(json: &str) -> Result<RaidProtection, Problem> {
        serde_json::from_str::<RaidProtectionRequest>(json).unwrap().validate()
    }

    #[test]
    fn requests_within_bounds_are_taken() {
        assert_eq!(
            parse(r#"{"joins": 2, "window_seconds": 10, "pause_seconds": 60}"#),
            Ok(protection(2, 10, 60))
        );
        assert_eq!(
            parse(r#"{"joins": 10000, "window_seconds": 86400, "pause_seconds": 604800}"#),
            Ok(protection(10_000, 86_400, 604_800))
        );
        // JSON Schema's integers: 10.0 is 10.
        assert_eq!(
            parse(r#"{"joins": 5.0, "window_seconds": 30, "pause_seconds": 600}"#),
            Ok(protection(5, 30, 600))
        );
        assert_eq!(RaidProtectionRequest::new(5, 30, 600).validate(), Ok(protection(5, 30, 600)));
    }

    #[test]
    fn each_field_out_of_bounds_or_of_the_wrong_type_is_a_validation_error() {
        // The valid body with one field's JSON replaced by the raw text given, or left out.
        let cases = [
            ("joins", Some("1"), "joins must be between 2 and 10000"),
            ("joins", Some("10001"), "joins must be between 2 and 10000"),
            ("joins", Some("1e30"), "joins must be between 2 and 10000"),
            ("joins", Some("18446744073709551615"), "joins must be between 2 and 10000"),
            ("joins", Some("-3"), "joins must be between 2 and 10000"),
            ("joins", Some(r#""5""#), "joins must be an integer"),
            ("joins", Some("2.5"), "joins must be an integer"),
            ("joins", Some("null"), "joins must be an integer"),
            ("joins", None, "joins is required"),
            ("window_seconds", Some("9"), "window_seconds must be between 10 and 86400"),
            ("window_seconds", Some("86401"), "window_seconds must be between 10 and 86400"),
            ("window_seconds", Some("true"), "window_seconds must be an integer"),
            ("window_seconds", None, "window_seconds is required"),
            ("pause_seconds", Some("59"), "pause_seconds must be between 60 and 604800"),
            ("pause_seconds", Some("604801"), "pause_seconds must be between 60 and 604800"),
            ("pause_seconds", Some("[60]"), "pause_seconds must be an integer"),
            ("pause_seconds", None, "pause_seconds is required"),
        ];
        for (field, value, message) in cases {
            let fields = [("joins", "2"), ("window_seconds", "10"), ("pause_seconds", "60")];
            let json = fields
                .iter()
                .filter_map(|&(name, valid)| {
                    let raw = if name == field { value? } else { valid };
                    Some(format!(r#""{name}": {raw}"#))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let json = format!("{{{json}}}");
            let problem = parse(&json).unwrap_err();
            assert_eq!(problem.code.as_str(), "VALIDATION_ERROR", "{json}");
            assert_eq!(problem.message, message, "{json}");
        }
        assert!(
            serde_json::from_str::<RaidProtectionRequest>(r#"{"joins": 2, "other": 1}"#).is_err()
        );
    }

    #[test]
    fn an_unprotected_server_counts_nothing() {
        assert_eq!(count_join(None, RaidWindow::default(), t(0)), RaidCount::Unprotected);
        assert_eq!(admissible_joins(None, RaidWindow::default(), t(0)), None);
    }

    #[test]
    fn the_first_join_opens_a_window() {
        let shield = Some(protection(3, 60, 600));
        assert_eq!(
            count_join(shield, RaidWindow::default(), t(5)),
            RaidCount::Counted(RaidWindow { started_at: Some(t(5)), joins: 1 })
        );
    }

    #[test]
    fn the_join_that_reaches_the_threshold_pauses_and_closes_the_window() {
        let shield = Some(protection(3, 60, 600));
        let mut window = RaidWindow::default();
        for (second, expected) in [(0, 1), (30, 2)] {
            match count_join(shield, window, t(second)) {
                RaidCount::Counted(next) => {
                    assert_eq!(next, RaidWindow { started_at: Some(t(0)), joins: expected });
                    window = next;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(admissible_joins(shield, window, t(59)), Some(1));
        assert_eq!(count_join(shield, window, t(59)), RaidCount::Tripped { paused_until: t(659) });
    }

    #[test]
    fn a_window_that_ran_out_starts_again() {
        let shield = Some(protection(3, 60, 600));
        let window = RaidWindow { started_at: Some(t(0)), joins: 2 };
        // At exactly `window_seconds` after its start the window is over.
        assert!(!window.is_open(protection(3, 60, 600), t(60)));
        assert_eq!(
            count_join(shield, window, t(60)),
            RaidCount::Counted(RaidWindow { started_at: Some(t(60)), joins: 1 })
        );
        assert_eq!(admissible_joins(shield, window, t(60)), Some(3));
    }

    #[test]
    fn a_batch_is_counted_at_once_and_never_past_the_threshold() {
        let shield = Some(protection(5, 60, 600));
        let window = RaidWindow { started_at: Some(t(0)), joins: 2 };
        assert_eq!(admissible_joins(shield, window, t(1)), Some(3));
        assert_eq!(
            count_joins(shield, window, 2, t(1)),
            RaidCount::Counted(RaidWindow { started_at: Some(t(0)), joins: 4 })
        );
        assert_eq!(
            count_joins(shield, window, 3, t(1)),
            RaidCount::Tripped { paused_until: t(601) }
        );
    }

    #[test]
    fn no_window_admits_more_than_its_joins() {
        // Joins one a second for three windows' worth, each admitted while the invites are not
        // paused: every window holds at most `joins`, and the pause follows the threshold.
        let shield = protection(4, 10, 60);
        let mut window = RaidWindow::default();
        let mut paused_until: Option<DateTime<Utc>> = None;
        let mut admitted: Vec<DateTime<Utc>> = Vec::new();
        for second in 0..300 {
            let now = t(second);
            if paused_until.is_some_and(|until| now < until) {
                continue;
            }
            admitted.push(now);
            match count_join(Some(shield), window, now) {
                RaidCount::Counted(next) => window = next,
                RaidCount::Tripped { paused_until: until } => {
                    paused_until = Some(until);
                    window = RaidWindow::default();
                }
                RaidCount::Unprotected => unreachable!(),
            }
        }
        for start in &admitted {
            let within =
                admitted.iter().filter(|at| *at >= start && **at < *start + Duration::seconds(10));
            assert!(within.count() <= 4);
        }
        assert!(paused_until.is_some());
    }
}
