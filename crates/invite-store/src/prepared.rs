//! Hand-written statements that stay prepared.
//!
//! Diesel keeps a statement prepared per connection, keyed by its query type, but never one
//! whose SQL could change with its values: an `UPDATE` built with its DSL (a changeset may skip
//! `None` fields), an upsert's `DO UPDATE`, or `sql_query`. Each of those is parsed and planned
//! again every time it runs. For the few such statements that run on every join (the
//! `UPDATE`s of the invite's use and of the member count), that planning is a noticeable share
//! of the SQLite writer's time, the one resource every join queues for. [`prepared_statement!`]
//! declares one as a query type of its own, with fixed SQL, so that both backends keep it
//! prepared.
//!
//! Related: a query ending in `.first()` binds its `LIMIT`, and SQLite plans with the value of a
//! bound `LIMIT`, so it prepares such a statement again at every execution
//! (`SQLITE_STMTSTATUS_REPREPARE`); `clippy.toml` forbids `first` for that reason, and a look-up
//! by a unique key uses `get_result`, which needs no `LIMIT`.

/// Declares a statement with fixed SQL as a query type that diesel keeps prepared, on
/// PostgreSQL and on SQLite.
///
/// ```ignore
/// prepared_statement! {
///     /// Documentation.
///     struct AddMembers -> BigInt {
///         server_id: Uuid,
///         delta: i64,
///     }
///     sql = ["UPDATE servers SET member_count = member_count + " (delta: BigInt)
///            " WHERE id = " (server_id: DbUuid) " RETURNING member_count"];
/// }
/// ```
///
/// The SQL is a list of literal pieces, each optionally followed by a bound field and its SQL
/// type; the placeholders (`$1` or `?`) are the backend's own. `-> SqlType` (what the statement
/// returns, for `get_result`) may be left out for a statement that is only executed.
macro_rules! prepared_statement {
    (
        $(#[$meta:meta])*
        struct $name:ident $(-> $sql_type:ty)? {
            $($field:ident: $rust:ty),* $(,)?
        }
        sql = [$($piece:literal $(($bind:ident: $st:ty))?)*];
    ) => {
        $(#[$meta])*
        pub(crate) struct $name {
            $(pub(crate) $field: $rust,)*
        }

        impl diesel::query_builder::QueryId for $name {
            type QueryId = Self;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        $(
            impl diesel::query_builder::Query for $name {
                type SqlType = $sql_type;
            }
        )?

        $crate::prepared::prepared_statement!(
            @backend $name, diesel::pg::Pg, diesel::PgConnection,
            [$($piece $(($bind: $st))?)*]
        );
        $crate::prepared::prepared_statement!(
            @backend $name, diesel::sqlite::Sqlite, diesel::SqliteConnection,
            [$($piece $(($bind: $st))?)*]
        );
    };
    (@backend $name:ident, $db:ty, $conn:ty, [$($piece:literal $(($bind:ident: $st:ty))?)*]) => {
        impl diesel::query_builder::QueryFragment<$db> for $name {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, $db>,
            ) -> diesel::QueryResult<()> {
                $(
                    out.push_sql($piece);
                    $(out.push_bind_param::<$st, _>(&self.$bind)?;)?
                )*
                Ok(())
            }
        }

        impl diesel::RunQueryDsl<$conn> for $name {}
    };
}
pub(crate) use prepared_statement;

/// Binds `value`, read as `ST`, into a hand-written PostgreSQL statement, followed by `sql`: a
/// column of the `params` CTE that the set-based statements start with comes as its value, its
/// cast and its name (`$1::uuid AS id, `), a bare parameter in a select list having no type.
pub(crate) fn bind_then<'b, ST, U>(
    out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    value: &'b U,
    sql: &str,
) -> diesel::QueryResult<()>
where
    diesel::pg::Pg: diesel::sql_types::HasSqlType<ST>,
    U: diesel::serialize::ToSql<ST, diesel::pg::Pg> + ?Sized,
{
    out.push_bind_param::<ST, U>(value)?;
    out.push_sql(sql);
    Ok(())
}
