//! The SQLite and PostgreSQL migrations declare the same schema: the same tables, columns
//! (compatible types, same nullability), indexes, primary keys, unique constraints, foreign
//! keys and triggers, read from each database's catalogue after a fresh migration.
//!
//! Each backend's schema is flattened into facts, `subject → description` (for example
//! `column cases.title → text not null`); the two sets of facts must be equal, but
//! for the one documented exception, [`SQLITE_NULLABLE_PRIMARY_KEYS`]. Names are compared
//! where both backends keep the author's name (tables, columns, indexes); constraints are compared by their columns, since SQLite names
//! the indexes behind them itself, and triggers by table, timing and event, since an
//! append-only rule is one trigger per event on SQLite and one for both events on PostgreSQL.
//! CHECK constraints and defaults are not compared: SQLite keeps them only as SQL text.

use std::collections::{BTreeMap, BTreeSet};

use accordo_tests::{Backend, TestDb};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// Subject → description, for one backend.
type Facts = BTreeMap<String, String>;

/// The one known difference. SQLite lets a primary-key column that is not an `INTEGER`
/// hold NULL unless it is declared `NOT NULL` (a legacy quirk, see "The PRIMARY KEY" in
/// <https://sqlite.org/lang_createtable.html>); PostgreSQL never does. These tables declare
/// `TEXT PRIMARY KEY` on SQLite; their migrations are applied on deployed databases, and the
/// application always writes the key, so they stay. A new table declares `NOT NULL`.
const SQLITE_NULLABLE_PRIMARY_KEYS: &[&str] = &[
    "case_documents.id",
    "case_ledger.id",
    "case_parties.id",
    "cases.id",
    "mediator_feeds.mediator_id",
    "mediators.id",
    "meeting_places.id",
    "meetings.id",
    "organisms.id",
    "outbox.id",
    "people.id",
    "room_files.id",
    "sessions.token_hash",
    "settings.key",
    "users.id",
];

/// The type families the two backends agree on: a declared type (lower case, SQLite's as
/// written in the migration, PostgreSQL's as `information_schema` names it) → its family.
const TYPE_FAMILIES: &[(&str, &str)] = &[
    ("integer", "integer"),
    ("bigint", "integer"),
    ("smallint", "integer"),
    ("text", "text"),
    ("character varying", "text"),
    ("varchar", "text"),
    ("blob", "bytes"),
    ("bytea", "bytes"),
    ("real", "real"),
    ("double precision", "real"),
    ("boolean", "boolean"),
];

/// The family of a declared type, or the type itself in brackets if [`TYPE_FAMILIES`] lacks it (so
/// that a new type shows up as a difference until it is added).
fn family(declared: &str) -> String {
    let declared = declared.to_lowercase();
    TYPE_FAMILIES
        .iter()
        .find(|(name, _)| *name == declared)
        .map_or_else(
            || format!("[{declared}]"),
            |(_, family)| (*family).to_owned(),
        )
}

fn column_fact(facts: &mut Facts, table: &str, column: &str, declared: &str, not_null: bool) {
    let nullability = if not_null { "not null" } else { "null" };
    facts.insert(
        format!("column {table}.{column}"),
        format!("{} {nullability}", family(declared)),
    );
}

fn index_fact(
    facts: &mut Facts,
    name: &str,
    table: &str,
    columns: &str,
    unique: bool,
    partial: bool,
) {
    let mut description = format!("on {table} ({columns})");
    if unique {
        description.push_str(" unique");
    }
    if partial {
        description.push_str(" partial");
    }
    facts.insert(format!("index {name}"), description);
}

/// `on delete` as SQLite spells it (`NO ACTION`, `CASCADE`, ...).
fn foreign_key_fact(facts: &mut Facts, table: &str, columns: &str, target: &str, on_delete: &str) {
    facts.insert(
        format!("foreign key {table} ({columns})"),
        format!("references {target} on delete {}", on_delete.to_lowercase()),
    );
}

/// The description of a fact that is only there or not (a table, a unique constraint).
const DECLARED: &str = "declared";

/// An index column that is an expression rather than a column.
const EXPRESSION: &str = "<expression>";

async fn sqlite_facts(url: &str) -> Facts {
    let mut connection = SqliteConnection::connect(url).await.expect("open SQLite");
    let mut facts = Facts::new();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("SQLite tables");
    for (table,) in &tables {
        facts.insert(format!("table {table}"), DECLARED.to_owned());
        sqlite_columns(&mut connection, table, &mut facts).await;
        sqlite_indexes(&mut connection, table, &mut facts).await;
        sqlite_foreign_keys(&mut connection, table, &mut facts).await;
    }
    sqlite_triggers(&mut connection, &mut facts).await;
    connection.close().await.expect("close SQLite");
    facts
}

/// The columns of `table` and its primary key.
async fn sqlite_columns(connection: &mut SqliteConnection, table: &str, facts: &mut Facts) {
    let columns: Vec<(String, String, bool, i64)> = sqlx::query_as(
        "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY pk, cid",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await
    .expect("SQLite columns");
    let key: Vec<&str> = columns
        .iter()
        .filter(|(_, _, _, position)| *position > 0)
        .map(|(column, ..)| column.as_str())
        .collect();
    for (column, declared, not_null, position) in &columns {
        // The one `INTEGER` column of a primary key aliases the rowid: it never holds NULL
        // (inserting NULL picks the next rowid), whether declared `NOT NULL` or not.
        let rowid = *position > 0 && key.len() == 1 && declared.eq_ignore_ascii_case("integer");
        column_fact(facts, table, column, declared, *not_null || rowid);
    }
    if !key.is_empty() {
        facts.insert(format!("primary key {table}"), key.join(", "));
    }
}

/// The indexes of `table`: those of `CREATE INDEX` by name, the autoindexes of UNIQUE
/// constraints as the constraints (those of primary keys are the keys, read with the columns).
async fn sqlite_indexes(connection: &mut SqliteConnection, table: &str, facts: &mut Facts) {
    let indexes: Vec<(String, bool, String, bool, String)> = sqlx::query_as(
        "SELECT l.name, l.\"unique\", l.origin, l.partial, \
         (SELECT group_concat(coalesce(i.name, ?), ', ') \
          FROM (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno) i) \
         FROM pragma_index_list(?) l",
    )
    .bind(EXPRESSION)
    .bind(table)
    .fetch_all(&mut *connection)
    .await
    .expect("SQLite indexes");
    for (index, unique, origin, partial, columns) in indexes {
        match origin.as_str() {
            "c" => index_fact(facts, &index, table, &columns, unique, partial),
            "u" => {
                facts.insert(format!("unique {table} ({columns})"), DECLARED.to_owned());
            }
            _ => {}
        }
    }
}

/// The foreign keys of `table`; a reference without columns names the target's primary key.
async fn sqlite_foreign_keys(connection: &mut SqliteConnection, table: &str, facts: &mut Facts) {
    let references: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT f.\"table\", group_concat(f.\"from\", ', '), \
         group_concat(coalesce(f.\"to\", p.name), ', '), f.on_delete \
         FROM (SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq) f \
         LEFT JOIN pragma_table_info(f.\"table\") p ON f.\"to\" IS NULL AND p.pk = f.seq + 1 \
         GROUP BY f.id",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await
    .expect("SQLite foreign keys");
    for (target, from, to, on_delete) in references {
        foreign_key_fact(facts, table, &from, &format!("{target} ({to})"), &on_delete);
    }
}

/// The triggers, by table, timing and event, read from their SQL.
async fn sqlite_triggers(connection: &mut SqliteConnection, facts: &mut Facts) {
    let triggers: Vec<(String, String)> =
        sqlx::query_as("SELECT tbl_name, upper(sql) FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(&mut *connection)
            .await
            .expect("SQLite triggers");
    for (table, sql) in triggers {
        let mut words = sql
            .split_whitespace()
            .skip_while(|word| !["BEFORE", "AFTER", "INSTEAD"].contains(word));
        let timing = match words.next() {
            Some("INSTEAD") => "INSTEAD OF",
            Some(timing) => timing,
            None => panic!("a trigger without a timing: {sql}"),
        };
        let event = words
            .find(|word| *word != "OF")
            .expect("a trigger has an event");
        trigger_fact(facts, &table, timing, event);
    }
}

fn trigger_fact(facts: &mut Facts, table: &str, timing: &str, event: &str) {
    facts.insert(
        format!(
            "trigger {table} {} {}",
            timing.to_lowercase(),
            event.to_lowercase()
        ),
        DECLARED.to_owned(),
    );
}

/// The columns of an index or constraint, in order, as `a, b`: `keys` is the attribute
/// numbers (`int2[]`) of relation `relation`; 0 is an expression.
fn pg_columns(keys: &str, relation: &str) -> String {
    format!(
        "array_to_string(ARRAY(SELECT coalesce(a.attname::text, '{EXPRESSION}') \
         FROM unnest({keys}) WITH ORDINALITY AS k(attnum, position) \
         LEFT JOIN pg_attribute a ON a.attrelid = {relation} AND a.attnum = k.attnum \
         ORDER BY k.position), ', ')"
    )
}

async fn postgres_facts(url: &str) -> Facts {
    let mut connection = PgConnection::connect(url).await.expect("open PostgreSQL");
    let mut facts = Facts::new();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("PostgreSQL tables");
    for (table,) in tables {
        facts.insert(format!("table {table}"), DECLARED.to_owned());
    }

    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("PostgreSQL columns");
    for (table, column, declared, nullable) in columns {
        column_fact(&mut facts, &table, &column, &declared, nullable == "NO");
    }

    let constraints: Vec<(String, String, String, String, String, String)> =
        sqlx::query_as(&format!(
            "SELECT c.contype::text, t.relname::text, {}, coalesce(r.relname::text, ''), \
             coalesce({}, ''), c.confdeltype::text \
             FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             LEFT JOIN pg_class r ON r.oid = c.confrelid \
             WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations' \
             AND c.contype IN ('p', 'u', 'f')",
            pg_columns("c.conkey", "c.conrelid"),
            pg_columns("c.confkey", "c.confrelid"),
        ))
        .fetch_all(&mut connection)
        .await
        .expect("PostgreSQL constraints");
    for (kind, table, columns, target, target_columns, on_delete) in constraints {
        match kind.as_str() {
            "p" => {
                facts.insert(format!("primary key {table}"), columns);
            }
            "u" => {
                facts.insert(format!("unique {table} ({columns})"), DECLARED.to_owned());
            }
            _ => {
                let on_delete = match on_delete.as_str() {
                    "r" => "RESTRICT",
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    "d" => "SET DEFAULT",
                    _ => "NO ACTION",
                };
                foreign_key_fact(
                    &mut facts,
                    &table,
                    &columns,
                    &format!("{target} ({target_columns})"),
                    on_delete,
                );
            }
        }
    }

    // The indexes created by `CREATE INDEX`, not those behind a constraint.
    let indexes: Vec<(String, String, String, bool, bool)> = sqlx::query_as(&format!(
        "SELECT i.relname::text, t.relname::text, {}, x.indisunique, x.indpred IS NOT NULL \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        pg_columns("x.indkey::int2[]", "x.indrelid"),
    ))
    .fetch_all(&mut connection)
    .await
    .expect("PostgreSQL indexes");
    for (index, table, columns, unique, partial) in indexes {
        index_fact(&mut facts, &index, &table, &columns, unique, partial);
    }

    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event_object_table::text, action_timing::text, event_manipulation::text \
         FROM information_schema.triggers WHERE trigger_schema = 'public'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("PostgreSQL triggers");
    for (table, timing, event) in triggers {
        trigger_fact(&mut facts, &table, &timing, &event);
    }
    connection.close().await.expect("close PostgreSQL");
    facts
}

/// A fact on which the backends disagree (`None`: the backend lacks it).
struct Difference<'a> {
    subject: &'a str,
    sqlite: Option<&'a str>,
    postgres: Option<&'a str>,
}

impl Difference<'_> {
    /// Whether this is a key of [`SQLITE_NULLABLE_PRIMARY_KEYS`] and nothing else differs.
    fn is_known(&self) -> bool {
        let known = self
            .subject
            .strip_prefix("column ")
            .is_some_and(|column| SQLITE_NULLABLE_PRIMARY_KEYS.contains(&column));
        known && self.sqlite == Some("text null") && self.postgres == Some("text not null")
    }
}

impl std::fmt::Display for Difference<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |description: Option<&str>| {
            description.map_or("missing".to_owned(), |d| format!("`{d}`"))
        };
        write!(
            f,
            "{}: SQLite {}, PostgreSQL {}",
            self.subject,
            side(self.sqlite),
            side(self.postgres)
        )
    }
}

/// Every fact on which the backends disagree.
fn differences<'a>(sqlite: &'a Facts, postgres: &'a Facts) -> Vec<Difference<'a>> {
    let subjects: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    subjects
        .into_iter()
        .map(|subject| Difference {
            subject,
            sqlite: sqlite.get(subject).map(String::as_str),
            postgres: postgres.get(subject).map(String::as_str),
        })
        .filter(|difference| difference.sqlite != difference.postgres)
        .collect()
}

/// The kinds of fact, as their subjects start: each must be found on both backends, or a
/// catalogue query has gone blind.
const KINDS: [&str; 7] = [
    "table ",
    "column ",
    "index ",
    "primary key ",
    "unique ",
    "foreign key ",
    "trigger ",
];

#[tokio::test]
async fn sqlite_and_postgres_migrations_declare_the_same_schema() {
    let sqlite = TestDb::fresh(Backend::Sqlite).await;
    let postgres = TestDb::fresh(Backend::Postgres).await;
    let sqlite = sqlite_facts(&sqlite.url).await;
    let postgres = postgres_facts(&postgres.url).await;
    for (backend, facts) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
        for kind in KINDS {
            assert!(
                facts.keys().any(|subject| subject.starts_with(kind)),
                "no `{kind}` read on {backend}: {facts:#?}"
            );
        }
    }

    let found = differences(&sqlite, &postgres);
    let unexplained: Vec<String> = found
        .iter()
        .filter(|difference| !difference.is_known())
        .map(ToString::to_string)
        .collect();
    assert!(
        unexplained.is_empty(),
        "the SQLite and PostgreSQL schemas differ:\n  {}",
        unexplained.join("\n  ")
    );
    let stale: Vec<&&str> = SQLITE_NULLABLE_PRIMARY_KEYS
        .iter()
        .filter(|key| {
            !found
                .iter()
                .any(|difference| difference.subject == format!("column {key}"))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "these keys no longer differ: remove them from SQLITE_NULLABLE_PRIMARY_KEYS: {stale:?}"
    );
}
