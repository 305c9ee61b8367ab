//! The SQL types whose storage differs between the backends, so that one `schema.rs` and one set
//! of queries serve both.
//!
//! | type | PostgreSQL | SQLite | Rust |
//! |---|---|---|---|
//! | [`DbUuid`] | `uuid` | `TEXT`, hyphenated lower case | [`uuid::Uuid`] |
//! | [`DbTimestamp`] | `timestamptz` | `TEXT`, `YYYY-MM-DDTHH:MM:SS.ffffffZ` | `DateTime<Utc>` |
//! | [`DbJson`] | `jsonb` | `TEXT` | [`serde_json::Value`] |
//!
//! SQLite timestamps are fixed-width (always six fractional digits, always `Z`) so that text
//! comparison is time comparison: `expires_at > ?` means the same on both backends.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{self, HasSqlType};
use diesel::sqlite::Sqlite;
use diesel::{AsExpression, FromSqlRow, QueryId, SqlType};
use uuid::Uuid;

use crate::connection::MultiBackend;

/// A UUID: `uuid` on PostgreSQL, text on SQLite.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbUuid;

/// A point in time: `timestamptz` on PostgreSQL, fixed-width RFC 3339 text on SQLite.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbTimestamp;

/// A JSON document: `jsonb` on PostgreSQL, text on SQLite.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbJson;

/// Formats a time the way SQLite stores it.
pub(crate) fn sqlite_timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

// PostgreSQL: the native types, through diesel's own conversions.

impl ToSql<DbUuid, Pg> for Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(self, out)
    }
}

impl FromSql<DbUuid, Pg> for Uuid {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes)
    }
}

impl ToSql<DbTimestamp, Pg> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<sql_types::Timestamptz, Pg>>::to_sql(self, out)
    }
}

impl FromSql<DbTimestamp, Pg> for DateTime<Utc> {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<sql_types::Timestamptz, Pg>>::from_sql(bytes)
    }
}

impl ToSql<DbJson, Pg> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<sql_types::Jsonb, Pg>>::to_sql(self, out)
    }
}

impl FromSql<DbJson, Pg> for serde_json::Value {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<sql_types::Jsonb, Pg>>::from_sql(bytes)
    }
}

// SQLite: text.

impl ToSql<DbUuid, Sqlite> for Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Uuid {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(Uuid::parse_str(&text)?)
    }
}

impl ToSql<DbTimestamp, Sqlite> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(sqlite_timestamp(self));
        Ok(IsNull::No)
    }
}

impl FromSql<DbTimestamp, Sqlite> for DateTime<Utc> {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc))
    }
}

impl ToSql<DbJson, Sqlite> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbJson, Sqlite> for serde_json::Value {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Lets the multi-backend dispatch each custom type to the impls above.
macro_rules! multi_backend_type {
    ($sql:ty, $rust:ty) => {
        impl HasSqlType<$sql> for MultiBackend {
            fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
                MultiBackend::lookup_sql_type::<$sql>(lookup)
            }
        }

        impl ToSql<$sql, MultiBackend> for $rust {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value((<$sql>::default(), self));
                Ok(IsNull::No)
            }
        }

        impl FromSql<$sql, MultiBackend> for $rust {
            fn from_sql(
                bytes: <MultiBackend as Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                bytes.from_sql::<$rust, $sql>()
            }
        }
    };
}

multi_backend_type!(DbUuid, Uuid);
multi_backend_type!(DbTimestamp, DateTime<Utc>);
multi_backend_type!(DbJson, serde_json::Value);

/// A value to bind as a [`DbUuid`]: `invites::id.eq(Id(invite_id))`.
///
/// Reading needs no wrapper (a `Uuid` field loads from a `DbUuid` column), but writing does: the
/// orphan rule lets diesel's `AsExpression` be implemented for this local type and not for
/// `uuid::Uuid` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = DbUuid)]
pub struct Id(pub Uuid);

/// A value to bind as a [`DbTimestamp`]: `invites::expires_at.gt(Ts(now))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = DbTimestamp)]
pub struct Ts(pub DateTime<Utc>);

/// A value to bind as a [`DbJson`].
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = DbJson)]
pub struct Json(pub serde_json::Value);

/// The wrappers convert through the impls of the types they wrap, on every backend.
macro_rules! wrapper_type {
    ($wrapper:ident, $sql:ty, $inner:ty) => {
        impl<DB> ToSql<$sql, DB> for $wrapper
        where
            DB: Backend,
            $inner: ToSql<$sql, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB> FromSql<$sql, DB> for $wrapper
        where
            DB: Backend,
            $inner: FromSql<$sql, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                <$inner>::from_sql(bytes).map(Self)
            }
        }

        impl From<$inner> for $wrapper {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }

        impl From<$wrapper> for $inner {
            fn from(value: $wrapper) -> Self {
                value.0
            }
        }
    };
}

wrapper_type!(Id, DbUuid, Uuid);
wrapper_type!(Ts, DbTimestamp, DateTime<Utc>);
wrapper_type!(Json, DbJson, serde_json::Value);

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn sqlite_timestamps_are_fixed_width_so_text_order_is_time_order() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 22, 9, 5, 0).unwrap();
        let later = whole + chrono::Duration::microseconds(1);
        assert_eq!(sqlite_timestamp(&whole), "2026-11-22T09:05:00.000000Z");
        assert_eq!(sqlite_timestamp(&later), "2026-11-22T09:05:00.000001Z");
        assert!(sqlite_timestamp(&whole) < sqlite_timestamp(&later));
    }
}
