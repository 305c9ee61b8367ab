//! `schema.rs` against what the migrations make, on each backend: what `diesel print-schema`
//! would catch, without installing it. Each table is written out the way `table!` reads, once
//! as `schema.rs` declares it (its columns' names, order, nullability and SQL types, and its
//! primary key) and once as the migrated database reports it (`information_schema` on
//! PostgreSQL, `pragma_table_info` on SQLite), and the two must be the same text. A migration
//! that adds, drops or retypes a column, or a `schema.rs` that declares a column, a type or a
//! nullability the database does not have, fails here with the difference.
//!
//! The types are compared as each backend stores them: on PostgreSQL as diesel's SQL types
//! (the database's `uuid`, `timestamptz` and `jsonb` are this crate's `DbUuid`, `DbTimestamp`
//! and `DbJson`), on SQLite as its STRICT tables' `TEXT` and `INTEGER`.

use std::fmt::Write as _;

use diesel::expression::Expression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{Column, Table};
use invite_store::DbConnection;
use invite_store::schema;
use invite_store::testing::TestDatabase;

use crate::conformance;

/// A column as `schema.rs` declares it.
struct Declared {
    name: &'static str,
    nullable: bool,
    /// The SQL type's name, without its path: `Text`, `BigInt`, `DbUuid`.
    sql_type: &'static str,
}

/// The columns of a `table!`, from its tuple of all columns.
trait Columns {
    fn declared() -> Vec<Declared>;
}

fn declared<C: Column>() -> Declared {
    let name = std::any::type_name::<<C as Expression>::SqlType>();
    let (nullable, inner) = match name.strip_prefix("diesel::sql_types::Nullable<") {
        Some(inner) => (true, inner.strip_suffix('>').unwrap_or(inner)),
        None => (false, name),
    };
    Declared { name: C::NAME, nullable, sql_type: inner.rsplit("::").next().unwrap_or(inner) }
}

macro_rules! columns {
    ($($column:ident),+) => {
        impl<$($column: Column),+> Columns for ($($column,)+) {
            fn declared() -> Vec<Declared> {
                vec![$(declared::<$column>()),+]
            }
        }
    };
}
columns!(A);
columns!(A, B);
columns!(A, B, C);
columns!(A, B, C, D);
columns!(A, B, C, D, E);
columns!(A, B, C, D, E, F);
columns!(A, B, C, D, E, F, G);
columns!(A, B, C, D, E, F, G, H);
columns!(A, B, C, D, E, F, G, H, I);
columns!(A, B, C, D, E, F, G, H, I, J);
columns!(A, B, C, D, E, F, G, H, I, J, K);
columns!(A, B, C, D, E, F, G, H, I, J, K, L);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R);
columns!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S);

/// A table, as either side describes it.
struct Described {
    name: String,
    primary_key: Vec<String>,
    /// Name, nullability, type (in the backend's terms).
    columns: Vec<(String, bool, String)>,
}

impl Described {
    /// The text `table!` would have, in the backend's terms.
    fn text(&self) -> String {
        let mut text = format!("{} ({}) {{\n", self.name, self.primary_key.join(", "));
        for (name, nullable, sql_type) in &self.columns {
            let sql_type =
                if *nullable { format!("Nullable<{sql_type}>") } else { sql_type.clone() };
            let _ = writeln!(text, "    {name} -> {sql_type},");
        }
        text + "}\n"
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Postgres,
    Sqlite,
}

/// A type of `schema.rs` as the backend stores it.
fn stored_as(side: Side, sql_type: &str) -> String {
    match (side, sql_type) {
        (Side::Postgres, _) => sql_type.to_owned(),
        (Side::Sqlite, "Text" | "DbUuid" | "DbTimestamp" | "DbJson") => "TEXT".to_owned(),
        (Side::Sqlite, "BigInt" | "Integer" | "SmallInt" | "Bool") => "INTEGER".to_owned(),
        (Side::Sqlite, other) => format!("{other} (no SQLite storage known)"),
    }
}

/// The names a `SELECT` writes, in order: `SELECT "users"."id", "users"."name" FROM ...`
/// selects `id` and `name`.
fn selected_names(sql: &str) -> Vec<String> {
    let selected = sql.split(" FROM ").next().unwrap_or_default();
    selected.split(", ").filter_map(|item| item.rsplit('"').nth(1)).map(str::to_owned).collect()
}

/// The tables of `schema.rs`, as it declares them, in the backend's terms.
macro_rules! declared_tables {
    ($side:expr, $($table:ident),+ $(,)?) => {
        vec![$(
            Described {
                name: stringify!($table).to_owned(),
                primary_key: selected_names(
                    &diesel::debug_query::<diesel::pg::Pg, _>(
                        &schema::$table::table.select(schema::$table::table.primary_key()),
                    )
                    .to_string(),
                ),
                columns: <<schema::$table::table as Table>::AllColumns as Columns>::declared()
                    .into_iter()
                    .map(|column| {
                        (column.name.to_owned(), column.nullable, stored_as($side, column.sql_type))
                    })
                    .collect(),
            },
        )+]
    };
}

fn declared_by_schema_rs(side: Side) -> Vec<Described> {
    let tables = invite_store::with_every_table!(declared_tables!(side,));
    // A table added to `schema.rs` but not to `with_every_table!` would go unchecked.
    let in_schema_rs = include_str!("../../src/schema.rs").matches("diesel::table!").count();
    assert_eq!(tables.len(), in_schema_rs, "list every table of schema.rs in with_every_table!");
    tables
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared_type: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
    /// The column's place in the primary key, from 1; 0 when it is not in it.
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

/// A PostgreSQL type as diesel's SQL type (`diesel print-schema`'s mapping, with this crate's
/// own types for the three whose storage differs between the backends).
fn pg_type(udt_name: &str) -> String {
    match udt_name {
        "uuid" => "DbUuid",
        "timestamptz" => "DbTimestamp",
        "jsonb" => "DbJson",
        "text" | "varchar" => "Text",
        "int8" => "BigInt",
        "int4" => "Integer",
        "int2" => "SmallInt",
        "bool" => "Bool",
        other => return format!("{other} (no diesel type known)"),
    }
    .to_owned()
}

/// The tables that `list` (a query of their names) finds, each as `describe` reads it.
fn described<C>(
    conn: &mut C,
    list: &str,
    mut describe: impl FnMut(&mut C, String) -> Described,
) -> Vec<Described>
where
    C: Connection,
    diesel::query_builder::SqlQuery: for<'a> diesel::query_dsl::LoadQuery<'a, C, TableName>,
{
    let tables = diesel::sql_query(list).load::<TableName>(conn).unwrap();
    tables.into_iter().map(|TableName { name }| describe(conn, name)).collect()
}

fn described_by_postgres(conn: &mut PgConnection) -> Vec<Described> {
    described(
        conn,
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         AND table_name <> '__diesel_schema_migrations' ORDER BY table_name",
        |conn, name| {
            let columns = diesel::sql_query(
                "SELECT column_name::text AS name, is_nullable::text AS is_nullable, \
                 udt_name::text AS udt_name FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind::<Text, _>(&name)
            .load::<PgColumn>(conn)
            .unwrap();
            let primary_key = diesel::sql_query(
                "SELECT k.column_name::text AS name FROM information_schema.table_constraints c \
                 JOIN information_schema.key_column_usage k ON k.constraint_name = \
                 c.constraint_name AND k.table_schema = c.table_schema AND k.table_name = \
                 c.table_name WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = \
                 current_schema() AND c.table_name = $1 ORDER BY k.ordinal_position",
            )
            .bind::<Text, _>(&name)
            .load::<TableName>(conn)
            .unwrap();
            Described {
                name,
                primary_key: primary_key.into_iter().map(|column| column.name).collect(),
                columns: columns
                    .into_iter()
                    .map(|column| {
                        (column.name, column.is_nullable == "YES", pg_type(&column.udt_name))
                    })
                    .collect(),
            }
        },
    )
}

fn described_by_sqlite(conn: &mut SqliteConnection) -> Vec<Described> {
    described(
        conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '__diesel_schema_migrations' ORDER BY name",
        |conn, name| {
            let columns = diesel::sql_query(
                "SELECT name, type AS declared_type, \"notnull\" AS not_null, pk \
                 FROM pragma_table_info(?) ORDER BY cid",
            )
            .bind::<Text, _>(&name)
            .load::<SqliteColumn>(conn)
            .unwrap();
            let mut primary_key: Vec<_> = columns.iter().filter(|column| column.pk > 0).collect();
            primary_key.sort_by_key(|column| column.pk);
            Described {
                name,
                primary_key: primary_key.iter().map(|column| column.name.clone()).collect(),
                columns: columns
                    .iter()
                    .map(|column| {
                        let declared = column.declared_type.to_ascii_uppercase();
                        let stored =
                            if declared == "INT" { "INTEGER".to_owned() } else { declared };
                        // A primary key column of a STRICT table is NOT NULL whether it says so
                        // or not (and diesel reads it so).
                        (column.name.clone(), column.not_null == 0 && column.pk == 0, stored)
                    })
                    .collect(),
            }
        },
    )
}

/// Each table's text, by name.
fn texts(tables: Vec<Described>) -> std::collections::BTreeMap<String, String> {
    tables.into_iter().map(|table| (table.name.clone(), table.text())).collect()
}

conformance! {
    fn schema_rs_declares_what_the_migrations_make(db: &TestDatabase) {
        let (side, database) = match &mut db.connect() {
            DbConnection::Postgres(conn) => (Side::Postgres, described_by_postgres(conn)),
            DbConnection::Sqlite(conn) => (Side::Sqlite, described_by_sqlite(conn)),
        };
        let (declared, database) = (texts(declared_by_schema_rs(side)), texts(database));
        let mut differences = String::new();
        for name in declared.keys().chain(database.keys().filter(|name| !declared.contains_key(*name))) {
            let (in_schema_rs, in_database) = (declared.get(name), database.get(name));
            if in_schema_rs != in_database {
                let none = "(no such table)\n".to_owned();
                let _ = write!(
                    differences,
                    "\nschema.rs declares:\n{}the migrations make:\n{}",
                    in_schema_rs.unwrap_or(&none),
                    in_database.unwrap_or(&none),
                );
            }
        }
        assert!(differences.is_empty(), "schema.rs is not what the migrations make:\n{differences}");
    }
}
