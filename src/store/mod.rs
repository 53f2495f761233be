//! The state database (SQLite through sqlx). The only module that writes SQL.
//!
//! Migrations in `migrations/` are embedded and applied on open; the journal is WAL, so a run
//! killed at any point leaves a consistent file. Bulk writes go in one transaction per batch:
//! a 100,000-person roster is a handful of commits, not 100,000.

mod records;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

pub use records::{
    AttemptEntry, AttemptKind, AttemptOutcome, AttemptRecord, Compared, DeliveryRecord, IdStatus,
    IdentityRecord, InFlight, PersonRecord, Previous, RunRecord, State, StatusCount,
};

/// Rows written per transaction in bulk operations.
const BATCH: usize = 2000;

/// People sent to SQLite in one JSON array by the plan's comparisons: about 1 MB of text, so
/// the memory they take stays bounded whatever the roster's size.
const JSON_CHUNK: usize = 10_000;

/// Rows read a chunk at a time by [`Store::each_person`] and [`Store::previous_deliveries`].
const READ_CHUNK: i64 = 20_000;

/// The people after rowid ?1, at most ?2 of them: how many, the last rowid, and the people as
/// a JSON array of arrays (the fields of [`StoredPerson`] in order).
const PEOPLE_CHUNK_SQL: &str = "SELECT count(*), max(rowid), json_group_array(json_array(
        person_id, name, roster_row, photo_path, photo_size, photo_mtime_ns, photo_hash))
    FROM (SELECT rowid, * FROM people WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)";

/// The face hashes after rowid ?1, at most ?2: how many, the last rowid, and a JSON array of
/// `[source hash, face hash]`.
const FACE_HASHES_CHUNK_SQL: &str = "SELECT count(*), max(rowid), json_group_array(json_array(
        source_hash, face_hash))
    FROM (SELECT rowid, * FROM face_hashes WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)";

/// The rows of target ?1 after rowid ?3, at most ?4 of them: how many, the last rowid, and a
/// JSON array with `[person]` for each, or `[person, source hash, user id]` for a row that
/// says the target holds that photo for that user under fingerprint ?2. A scan in rowid order:
/// for most of a table, reading it in order beats an index lookup per row.
const HOLDINGS_CHUNK_SQL: &str = "SELECT count(*), max(rowid), json_group_array(
        CASE WHEN state = 'delivered' AND delivered_fingerprint IS ?2
            THEN json_array(person_id, delivered_source_hash, delivered_user_id)
            ELSE json_array(person_id) END)
    FROM (SELECT rowid, person_id, state, delivered_fingerprint, delivered_source_hash,
            delivered_user_id
        FROM deliveries NOT INDEXED WHERE rowid > ?3 AND target = ?1
        ORDER BY rowid LIMIT ?4)";

/// The rows of target ?1 that say delivered, after rowid ?2, at most ?3 of them: how many, the
/// last rowid, and a JSON array of `[person, user id, delivered at, name]` (the name from the
/// people table, when the person is known there). A scan in rowid order, as above.
const DELIVERED_CHUNK_SQL: &str = "SELECT count(*), max(rowid), json_group_array(
        json_array(person_id, delivered_user_id, delivered_at, name))
    FROM (SELECT d.rowid AS rowid, d.person_id AS person_id, d.delivered_user_id AS delivered_user_id,
            d.delivered_at AS delivered_at, p.name AS name
        FROM deliveries d NOT INDEXED LEFT JOIN people p ON p.person_id = d.person_id
        WHERE d.rowid > ?2 AND d.target = ?1 AND d.state = 'delivered'
        ORDER BY d.rowid LIMIT ?3)";

/// The delivery rows at target ?2 of the people in JSON array ?1, each by primary key.
fn rows_of_people_sql() -> String {
    format!(
        "SELECT {} FROM json_each(?1) j
         CROSS JOIN deliveries d ON d.person_id = j.value AND d.target = ?2",
        DeliveryRecord::COLUMNS_OF_D
    )
}

/// A row of [`DELIVERED_CHUNK_SQL`], as [`Store::each_delivered`] gives it: what the state DB
/// says a target holds for one person, its text borrowed from the chunk read.
#[derive(Debug, serde::Deserialize)]
pub struct DeliveredRow<'a> {
    #[serde(borrow)]
    pub person_id: Cow<'a, str>,
    /// The id the target knows the person by (`None` only in a row written by hand).
    #[serde(borrow)]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub delivered_at: Option<Cow<'a, str>>,
    /// The person's name in the people table.
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
}

/// A row of [`HOLDINGS_CHUNK_SQL`]: ids are borrowed from the text unless escaped.
#[derive(serde::Deserialize)]
struct Holding<'a>(
    #[serde(borrow)] Cow<'a, str>,
    #[serde(default, borrow)] Option<Cow<'a, str>>,
    #[serde(default, borrow)] Option<Cow<'a, str>>,
);

/// A person as [`Store::each_person`] gives them (the fields of [`PersonRecord`]), their text
/// borrowed from the chunk read.
#[derive(Debug, serde::Deserialize)]
pub struct StoredPerson<'a> {
    #[serde(borrow)]
    pub person_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub roster_row: Option<i64>,
    #[serde(borrow)]
    pub photo_path: Option<Cow<'a, str>>,
    pub photo_size: Option<i64>,
    pub photo_mtime_ns: Option<i64>,
    #[serde(borrow)]
    pub photo_hash: Option<Cow<'a, str>>,
}

impl StoredPerson<'_> {
    pub fn to_record(&self) -> PersonRecord {
        PersonRecord {
            person_id: self.person_id.to_string(),
            name: self.name.to_string(),
            roster_row: self.roster_row,
            photo_path: self.photo_path.as_deref().map(str::to_string),
            photo_size: self.photo_size,
            photo_mtime_ns: self.photo_mtime_ns,
            photo_hash: self.photo_hash.as_deref().map(str::to_string),
        }
    }
}

fn to_json(rows: &[impl serde::Serialize]) -> String {
    serde_json::to_string(rows).expect("plain values serialize")
}

/// Calls `each` with every element of a JSON array built by SQLite's JSON functions, without
/// collecting them (strings borrowed from `text` where they have no escapes).
fn each_element<'a, T: serde::Deserialize<'a>>(
    text: &'a str,
    each: impl FnMut(T),
) -> Result<(), StoreError> {
    struct Each<T, F>(F, std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>, F: FnMut(T)> serde::de::Visitor<'de> for Each<T, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(element) = seq.next_element()? {
                (self.0)(element);
            }
            Ok(())
        }
    }
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(Each(each, std::marker::PhantomData))
        .and_then(|()| de.end())
        .map_err(|e| StoreError::Sql(sqlx::Error::Decode(Box::new(e))))
}

/// The kinds of [`AttemptKind::CHANGES`] as SQL (`kind IN ...`): the attempts that count for a
/// person. Reads are in the audit trail but in no count.
const CHANGES: &str = "('upload', 'remove')";

/// The state DB could not be opened, migrated, read or written.
///
/// Neither variant has a `source`: sqlx's errors repeat their source in their own text, so
/// printing the chain (`{:#}`) would say "file is not a database" three times. Each variant
/// says it once, with the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Open(OpenError),
    #[error("state database error: {}", describe(.0))]
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Sql(e)
    }
}

/// What kept the state DB from opening, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenProblem {
    /// The file is damaged, or is something else than a SQLite database.
    NotADatabase,
    /// The file or its folder cannot be created or written.
    NotWritable,
    /// The file was migrated by a newer (or another) facesync than this one.
    NewerSchema,
    Other,
}

/// The state DB at `path` could not be opened or migrated.
#[derive(Debug)]
pub struct OpenError {
    pub path: PathBuf,
    pub problem: OpenProblem,
    /// What SQLite or the OS said, once.
    pub detail: String,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        let detail = &self.detail;
        match self.problem {
            OpenProblem::NotADatabase => write!(
                f,
                "state database {path} is damaged or is not a facesync database ({detail}): \
                 move it aside (for example `mv {path} {path}.bad`); the next run starts afresh \
                 and sends everyone again"
            ),
            OpenProblem::NotWritable => {
                let dir = self
                    .path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                write!(
                    f,
                    "cannot create or write state database {path} ({detail}): make {} a folder \
                     the user running facesync can write (fix its permissions), or set \
                     state.database to another path",
                    dir.display()
                )
            }
            OpenProblem::NewerSchema => write!(
                f,
                "state database {path} was written by a newer or different facesync ({detail}): \
                 run that version, or move the file aside to start afresh (everyone is sent again)"
            ),
            OpenProblem::Other => write!(f, "cannot open state database {path}: {detail}"),
        }
    }
}

impl OpenError {
    fn io(path: &Path, e: &std::io::Error) -> OpenError {
        use std::io::ErrorKind as K;
        let problem = match e.kind() {
            K::PermissionDenied | K::ReadOnlyFilesystem | K::NotADirectory | K::IsADirectory => {
                OpenProblem::NotWritable
            }
            _ => OpenProblem::Other,
        };
        OpenError {
            path: path.to_path_buf(),
            problem,
            detail: e.to_string(),
        }
    }

    fn sql(path: &Path, e: &sqlx::Error) -> OpenError {
        let problem = match e {
            sqlx::Error::Database(db) => {
                // SQLite's primary result code is the low byte of the extended one.
                match db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff)
                {
                    Some(11 | 26) => OpenProblem::NotADatabase, // CORRUPT, NOTADB
                    Some(3 | 8 | 14 | 23) => OpenProblem::NotWritable, // PERM, READONLY, CANTOPEN, AUTH
                    _ => OpenProblem::Other,
                }
            }
            sqlx::Error::Io(io) => return OpenError::io(path, io),
            _ => OpenProblem::Other,
        };
        OpenError {
            path: path.to_path_buf(),
            problem,
            detail: describe(e),
        }
    }

    fn migrate(path: &Path, e: &sqlx::migrate::MigrateError) -> OpenError {
        use sqlx::migrate::MigrateError as M;
        match e {
            M::Execute(inner) | M::ExecuteMigration(inner, _) => OpenError::sql(path, inner),
            M::VersionMissing(_) | M::VersionMismatch(_) => OpenError {
                path: path.to_path_buf(),
                problem: OpenProblem::NewerSchema,
                detail: e.to_string(),
            },
            _ => OpenError {
                path: path.to_path_buf(),
                problem: OpenProblem::Other,
                detail: e.to_string(),
            },
        }
    }
}

/// Creates the folder the state DB at `path` goes in (the run lock goes there too).
pub fn create_folder(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            let mut error = OpenError::io(path, &e);
            // "File exists" alone does not say which file is in the way.
            if let Some(file) = parent.ancestors().find(|a| a.is_file()) {
                error.problem = OpenProblem::NotWritable;
                error.detail = format!("{} is a file, not a folder", file.display());
            }
            StoreError::Open(error)
        })?;
    }
    Ok(())
}

/// One line for a sqlx error: for a database error SQLite's message alone (sqlx's own text
/// adds "error returned from database" and the code, and its source says it all again).
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// What [`Store::probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// There is no database yet; its folder can hold one (the first run creates it).
    Missing,
    /// The database opens; the write lock was taken and let go (when asked for); this many
    /// migrations are still to apply (the next run applies them).
    Ready { pending_migrations: usize },
}

/// A handle on the state database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database, in WAL mode, and applies migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        create_folder(path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| StoreError::Open(OpenError::sql(path, &e)))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open(OpenError::sql(path, &e)))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Open(OpenError::migrate(path, &e)))?;
        Ok(Store { pool })
    }

    /// Checks, without changing anything, that the database at `path` can be used by a run:
    /// it opens, its schema is not newer than this build's, and (with `try_write`) its write
    /// lock can be taken (then let go, nothing written). A database not there yet is
    /// [`Health::Missing`] when its folder (or the nearest one that exists) is a folder that
    /// takes a file: a temporary file is made there and removed at once.
    pub async fn probe(path: &Path, try_write: bool) -> Result<Health, StoreError> {
        if !path.exists() {
            let folder = path
                .ancestors()
                .skip(1)
                .find(|a| a.as_os_str().is_empty() || a.exists())
                .map(|a| {
                    if a.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        a
                    }
                })
                .unwrap_or(Path::new("."));
            let not_writable = |detail: String| {
                StoreError::Open(OpenError {
                    path: path.to_path_buf(),
                    problem: OpenProblem::NotWritable,
                    detail,
                })
            };
            if !folder.is_dir() {
                return Err(not_writable(format!(
                    "{} is a file, not a folder",
                    folder.display()
                )));
            }
            tempfile::Builder::new()
                .prefix(".facesync-probe")
                .tempfile_in(folder)
                .map_err(|e| not_writable(format!("{}: {e}", folder.display())))?;
            return Ok(Health::Missing);
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| StoreError::Open(OpenError::sql(path, &e)))?
            .filename(path)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open(OpenError::sql(path, &e)))?;
        let result = async {
            let has_table: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(&pool)
            .await?;
            let applied: Vec<i64> = if has_table > 0 {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                    .fetch_all(&pool)
                    .await?
            } else {
                Vec::new()
            };
            let migrator = sqlx::migrate!("./migrations");
            let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
            if let Some(v) = applied.iter().find(|v| !known.contains(v)) {
                return Ok(Err(OpenError {
                    path: path.to_path_buf(),
                    problem: OpenProblem::NewerSchema,
                    detail: format!("migration {v} is not one this version knows"),
                }));
            }
            if try_write {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            }
            let pending = known.iter().filter(|v| !applied.contains(v)).count();
            Ok::<_, sqlx::Error>(Ok(Health::Ready {
                pending_migrations: pending,
            }))
        }
        .await;
        pool.close().await;
        match result {
            Ok(Ok(health)) => Ok(health),
            Ok(Err(open)) => Err(StoreError::Open(open)),
            Err(e) => Err(StoreError::Open(OpenError::sql(path, &e))),
        }
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }

    // ---- runs ----

    pub async fn begin_run(&self, kind: &str) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO runs (kind, started_at, status) VALUES (?, ?, 'running') RETURNING id",
        )
        .bind(kind)
        .bind(now())
        .fetch_one(&self.pool)
        .await?
        .get::<i64, _>(0);
        Ok(id)
    }

    pub async fn finish_run(
        &self,
        run_id: i64,
        status: &str,
        exit_code: i32,
        summary: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, summary = ? WHERE id = ?",
        )
        .bind(now())
        .bind(status)
        .bind(exit_code)
        .bind(summary.to_string())
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs that were still `running` when their process died are marked `interrupted`.
    pub async fn close_abandoned_runs(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE status = 'running'",
        )
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The last `n` runs of one `kind` (`sync`, `plan`, `verify`, `fetch`), newest first.
    pub async fn last_runs_of(&self, kind: &str, n: i64) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, started_at, finished_at, status, exit_code, summary
             FROM runs WHERE kind = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(kind)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(RunRecord::from_row).collect())
    }

    pub async fn last_runs(&self, n: i64) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, started_at, finished_at, status, exit_code, summary
             FROM runs ORDER BY id DESC LIMIT ?",
        )
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(RunRecord::from_row).collect())
    }

    // ---- people ----

    /// Runs a chunk query ([`PEOPLE_CHUNK_SQL`] and its like) until the table is read: `params`
    /// are bound first, then the last rowid read and [`READ_CHUNK`]; `each` gets each chunk's
    /// JSON array.
    async fn each_chunk(
        &self,
        sql: &str,
        params: &[&str],
        mut each: impl FnMut(&str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut after = 0;
        loop {
            let mut query = sqlx::query_as(sql);
            for param in params {
                query = query.bind(*param);
            }
            let (n, last, text): (i64, Option<i64>, String) = query
                .bind(after)
                .bind(READ_CHUNK)
                .fetch_one(&self.pool)
                .await?;
            each(&text)?;
            match last {
                Some(last) if n == READ_CHUNK => after = last,
                _ => return Ok(()),
            }
        }
    }

    /// Every known person, by id.
    pub async fn people(&self) -> Result<HashMap<String, PersonRecord>, StoreError> {
        let mut people = HashMap::new();
        self.each_person(|p| {
            people.insert(p.person_id.to_string(), p.to_record());
        })
        .await?;
        Ok(people)
    }

    /// Calls `each` with every stored person, read a chunk at a time: one message of JSON
    /// text a chunk, its strings borrowed, so neither time nor memory goes into a copy of the
    /// whole table. (sqlx sends each row from SQLite's worker thread on its own, which cost
    /// about a second for 100,000 people.)
    pub async fn each_person(
        &self,
        mut each: impl FnMut(StoredPerson<'_>),
    ) -> Result<(), StoreError> {
        self.each_chunk(PEOPLE_CHUNK_SQL, &[], |text| each_element(text, &mut each))
            .await
    }

    /// Inserts or refreshes people, in batches.
    pub async fn save_people(
        &self,
        people: &[PersonRecord],
        run_id: i64,
    ) -> Result<(), StoreError> {
        let now = now();
        for chunk in people.chunks(BATCH) {
            let mut tx = self.pool.begin().await?;
            for p in chunk {
                sqlx::query(
                    "INSERT INTO people (person_id, name, roster_row, photo_path, photo_size,
                         photo_mtime_ns, photo_hash, last_seen_run, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (person_id) DO UPDATE SET
                         name = excluded.name, roster_row = excluded.roster_row,
                         photo_path = excluded.photo_path, photo_size = excluded.photo_size,
                         photo_mtime_ns = excluded.photo_mtime_ns, photo_hash = excluded.photo_hash,
                         last_seen_run = excluded.last_seen_run, updated_at = excluded.updated_at",
                )
                .bind(&p.person_id)
                .bind(&p.name)
                .bind(p.roster_row)
                .bind(&p.photo_path)
                .bind(p.photo_size)
                .bind(p.photo_mtime_ns)
                .bind(&p.photo_hash)
                .bind(run_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Marks every known person as seen in `run_id` but those in `not_seen` (people who left
    /// the roster): one pass over the table, cheaper than looking up every roster id.
    pub async fn mark_seen_except(&self, not_seen: &[&str], run_id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE people SET last_seen_run = ?
             WHERE person_id NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(run_id)
        .bind(to_json(not_seen))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- deliveries ----

    /// Every delivery row, keyed by (person id, target).
    pub async fn deliveries(
        &self,
    ) -> Result<HashMap<(String, String), DeliveryRecord>, StoreError> {
        let sql = format!("SELECT {} FROM deliveries", DeliveryRecord::COLUMNS);
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        let mut deliveries = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            let d = DeliveryRecord::from_row(&row);
            deliveries.insert((d.person_id.clone(), d.target.clone()), d);
        }
        Ok(deliveries)
    }

    /// The delivery rows of these targets, by target and then person: what a plan compares
    /// with. One scan of the table (an index lookup per row would be slower), each row of
    /// these targets inserted once; other targets' rows are skipped before they are decoded.
    pub async fn deliveries_by_target(
        &self,
        targets: &[String],
    ) -> Result<HashMap<String, HashMap<String, DeliveryRecord>>, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM people")
            .fetch_one(&self.pool)
            .await?;
        let mut by_target: HashMap<String, HashMap<String, DeliveryRecord>> = targets
            .iter()
            .map(|t| (t.clone(), HashMap::with_capacity(n as usize)))
            .collect();
        let sql = format!("SELECT {} FROM deliveries", DeliveryRecord::COLUMNS);
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let target: &str = row.get("target");
            let Some(people) = by_target.get_mut(target) else {
                continue;
            };
            let d = DeliveryRecord::from_row(&row);
            people.insert(d.person_id.clone(), d);
        }
        Ok(by_target)
    }

    /// Calls `each` with every row of `target` that says delivered, a chunk at a time (as
    /// [`Store::each_person`] reads people): what `verify` compares with a target's list.
    pub async fn each_delivered(
        &self,
        target: &str,
        mut each: impl FnMut(DeliveredRow<'_>),
    ) -> Result<(), StoreError> {
        self.each_chunk(DELIVERED_CHUNK_SQL, &[target], |text| {
            each_element(text, &mut each)
        })
        .await
    }

    /// The delivery rows at `target` of these people (those that have one), each read by
    /// primary key, 10,000 people a query.
    pub async fn deliveries_at(
        &self,
        target: &str,
        people: &[&str],
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = rows_of_people_sql();
        let mut found = Vec::new();
        for chunk in people.chunks(JSON_CHUNK) {
            let mut rows = sqlx::query(&sql)
                .bind(to_json(chunk))
                .bind(target)
                .fetch(&self.pool);
            while let Some(row) = rows.try_next().await? {
                found.push(DeliveryRecord::from_row(&row));
            }
        }
        Ok(found)
    }

    /// One delivery row.
    pub async fn delivery(
        &self,
        person_id: &str,
        target: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM deliveries WHERE person_id = ? AND target = ?",
            DeliveryRecord::COLUMNS
        ))
        .bind(person_id)
        .bind(target)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(DeliveryRecord::from_row))
    }

    /// The delivery rows of one person, at every target.
    pub async fn deliveries_of(&self, person_id: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM deliveries WHERE person_id = ?",
            DeliveryRecord::COLUMNS
        ))
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(DeliveryRecord::from_row).collect())
    }

    /// Writes delivery rows whole (insert or replace), in batches.
    pub async fn save_deliveries(&self, rows: &[DeliveryRecord]) -> Result<(), StoreError> {
        for chunk in rows.chunks(BATCH) {
            let mut tx = self.pool.begin().await?;
            for d in chunk {
                upsert_delivery(d).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    // ---- face hashes (the duplicate check) ----

    /// Every stored face hash, streamed a chunk at a time: (photo source hash, face hash or
    /// `None` for a photo without a face). The face hash is `photo::FaceHash`'s bits as an i64.
    pub async fn each_face_hash(
        &self,
        mut each: impl FnMut(&str, Option<i64>),
    ) -> Result<(), StoreError> {
        self.each_chunk(FACE_HASHES_CHUNK_SQL, &[], |text| {
            each_element(text, |(source, face): (Cow<'_, str>, Option<i64>)| {
                each(&source, face)
            })
        })
        .await
    }

    /// Records the face hash (or that there is no face) of each photo by its source hash.
    pub async fn save_face_hashes(
        &self,
        hashes: &[(String, Option<i64>)],
    ) -> Result<(), StoreError> {
        for chunk in hashes.chunks(BATCH) {
            let mut tx = self.pool.begin().await?;
            for (source, face) in chunk {
                sqlx::query(
                    "INSERT OR REPLACE INTO face_hashes (source_hash, face_hash) VALUES (?, ?)",
                )
                .bind(source)
                .bind(face)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Forgets the face hashes of photos no one has any more.
    pub async fn forget_face_hashes(&self, sources: &[String]) -> Result<(), StoreError> {
        for chunk in sources.chunks(BATCH) {
            let mut tx = self.pool.begin().await?;
            for source in chunk {
                sqlx::query("DELETE FROM face_hashes WHERE source_hash = ?")
                    .bind(source)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    // ---- the nightly comparison ----
    //
    // A plan over a large roster compares every person with their stored row. Reading every
    // row whole (sqlx sends each one from SQLite's worker thread, decoded into owned strings)
    // cost seconds and hundreds of MB at 100,000 people; instead, what the comparison needs
    // comes in one JSON message per target, and only the rows that may change are read whole.
    // `CROSS JOIN` keeps a JSON array of ids as the outer loop (one primary-key lookup per
    // person); left to itself, SQLite's planner scans the table and the array inside it.

    /// What a plan compares with at one target: for each of `people`, whether their row is
    /// settled (the target holds exactly this photo, under `fingerprint`, for this user id, and
    /// the row says delivered), and the whole row of those that are not. With `settle` false,
    /// no row counts as settled and every existing row is read (`--force` resends them).
    ///
    /// What the target holds is read in one message for the whole target (person, photo, user
    /// id of each delivered row under these settings) and compared here; only the rows that
    /// are not settled are then read whole, by primary key.
    pub async fn previous_deliveries(
        &self,
        target: &str,
        fingerprint: &str,
        people: &[Compared<'_>],
        settle: bool,
    ) -> Result<Previous, StoreError> {
        // Each id once: a later copy of a duplicated id is invalid and never compared.
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(people.len());
        for (k, person) in people.iter().enumerate() {
            index.entry(person.person_id).or_insert(k);
        }
        let mut previous = Previous {
            settled: vec![false; people.len()],
            rows: HashMap::new(),
        };
        // The people whose rows are read whole.
        let mut wanted: Vec<usize> = Vec::new();
        self.each_chunk(HOLDINGS_CHUNK_SQL, &[target, fingerprint], |text| {
            each_element(text, |held: Holding<'_>| {
                let Some(&k) = index.get(&*held.0) else {
                    return;
                };
                let person = &people[k];
                let settled = settle
                    && person.source_hash.is_some()
                    && person.user_id.is_some()
                    && held.1.as_deref() == person.source_hash
                    && held.2.as_deref() == person.user_id;
                if settled {
                    previous.settled[k] = true;
                } else {
                    wanted.push(k);
                }
            })
        })
        .await?;
        let ids: Vec<&str> = wanted.iter().map(|&k| people[k].person_id).collect();
        for d in self.deliveries_at(target, &ids).await? {
            if let Some(&k) = index.get(d.person_id.as_str()) {
                previous.rows.insert(k, d);
            }
        }
        Ok(previous)
    }

    // ---- attempts ----

    /// Records that a request of `kind` about a person is about to go out. Written before the
    /// request, so a crash mid-request leaves a trace that the next run finds.
    pub async fn begin_attempt(
        &self,
        run_id: i64,
        person_id: &str,
        target: &str,
        kind: AttemptKind,
        sent_hash: Option<&str>,
    ) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO attempts (run_id, person_id, target, kind, sent_hash, started_at, outcome)
             VALUES (?, ?, ?, ?, ?, ?, 'in_flight') RETURNING id",
        )
        .bind(run_id)
        .bind(person_id)
        .bind(target)
        .bind(kind.as_str())
        .bind(sent_hash)
        .bind(now())
        .fetch_one(&self.pool)
        .await?
        .get::<i64, _>(0);
        Ok(id)
    }

    /// Completes an attempt and, in the same transaction, writes the delivery row it led to:
    /// a change's row, or none for a read (which leaves the row to its caller).
    pub async fn finish_attempt(
        &self,
        attempt: &AttemptRecord,
        delivery: Option<&DeliveryRecord>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE attempts SET finished_at = ?, outcome = ?, http_status = ?, code = ?,
                 message = ?, request_id = ?, remote_id = ?, duration_ms = ?
             WHERE id = ?",
        )
        .bind(now())
        .bind(attempt.outcome.as_str())
        .bind(attempt.http_status)
        .bind(&attempt.code)
        .bind(&attempt.message)
        .bind(&attempt.request_id)
        .bind(&attempt.remote_id)
        .bind(attempt.duration_ms)
        .bind(attempt.id)
        .execute(&mut *tx)
        .await?;
        if let Some(delivery) = delivery {
            upsert_delivery(delivery).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Attempts of every kind a killed run left in flight: marked `interrupted`, and returned
    /// so the caller can decide what each person's state should be (a read changes nothing).
    pub async fn recover_in_flight(&self) -> Result<Vec<InFlight>, StoreError> {
        let rows = sqlx::query(
            "UPDATE attempts SET outcome = 'interrupted', finished_at = ?,
                 message = 'the run stopped before the answer was recorded'
             WHERE outcome = 'in_flight' RETURNING person_id, target, kind",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| InFlight {
                person_id: r.get(0),
                target: r.get(1),
                kind: AttemptKind::parse(&r.get::<String, _>(2)).unwrap_or(AttemptKind::Upload),
            })
            .collect())
    }

    /// The uploads and removals of one person at one target, oldest first: the attempts that
    /// count for a person. Reads (checks, downloads) are in [`Store::audit_trail`].
    pub async fn attempts(
        &self,
        person_id: &str,
        target: &str,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM attempts
             WHERE person_id = ? AND target = ? AND kind IN {CHANGES} ORDER BY id",
            AttemptRecord::COLUMNS
        ))
        .bind(person_id)
        .bind(target)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(AttemptRecord::from_row).collect())
    }

    /// Every attempt about one person, of every kind and at every target, oldest first.
    pub async fn audit_trail(&self, person_id: &str) -> Result<Vec<AttemptEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {}, target, kind, run_id, started_at, finished_at FROM attempts
             WHERE person_id = ? ORDER BY id",
            AttemptRecord::COLUMNS
        ))
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(AttemptEntry::from_row).collect())
    }

    // ---- identities looked up by e-mail or mobile ----

    /// The cached lookups of one target, by contact key.
    pub async fn identities(
        &self,
        target: &str,
    ) -> Result<HashMap<String, IdentityRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, contact, namespace, status, user_id, resolved_at
             FROM identities WHERE target = ?",
        )
        .bind(target)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(IdentityRecord::from_row)
            .map(|r| (r.contact.clone(), r))
            .collect())
    }

    /// Inserts or replaces cached lookups, in batches.
    pub async fn save_identities(&self, records: &[IdentityRecord]) -> Result<(), StoreError> {
        for chunk in records.chunks(BATCH) {
            let mut tx = self.pool.begin().await?;
            for r in chunk {
                sqlx::query(
                    "INSERT INTO identities (target, contact, namespace, status, user_id, resolved_at)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT (target, contact) DO UPDATE SET
                         namespace = excluded.namespace, status = excluded.status,
                         user_id = excluded.user_id, resolved_at = excluded.resolved_at",
                )
                .bind(&r.target)
                .bind(&r.contact)
                .bind(&r.namespace)
                .bind(r.status.as_str())
                .bind(&r.user_id)
                .bind(&r.resolved_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    // ---- reading for status and reports ----

    /// Counts of delivery rows per target and state.
    pub async fn status_counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, state, COUNT(*) FROM deliveries GROUP BY target, state
             ORDER BY target, state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StatusCount {
                target: r.get(0),
                state: State::parse(&r.get::<String, _>(1)).unwrap_or(State::Pending),
                count: r.get(2),
            })
            .collect())
    }

    /// The rows that need an admin's attention (neither delivered nor removed), each with the
    /// person's name and photo and their count of uploads and removals, by id and target: what
    /// the HTML report lists. One query that reads only those rows, however large the roster.
    pub async fn needing_attention(&self) -> Result<Vec<AttentionRow>, StoreError> {
        let columns: Vec<String> = DeliveryRecord::COLUMNS
            .split(',')
            .map(|c| format!("d.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT {}, p.name AS person_name, p.photo_path AS person_photo,
                 (SELECT COUNT(*) FROM attempts a WHERE a.person_id = d.person_id
                      AND a.target = d.target AND a.kind IN {CHANGES}) AS changes
             FROM deliveries d LEFT JOIN people p ON p.person_id = d.person_id
             WHERE d.state NOT IN ('delivered', 'removed')
             ORDER BY d.person_id, d.target",
            columns.join(", ")
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| AttentionRow {
                delivery: DeliveryRecord::from_row(r),
                name: r.get("person_name"),
                photo: r.get("person_photo"),
                attempts: r.get("changes"),
            })
            .collect())
    }

    /// Counts of uploads and removals per (person, target), for reports; reads do not count.
    pub async fn attempt_counts(&self) -> Result<HashMap<(String, String), i64>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT person_id, target, COUNT(*) FROM attempts
             WHERE kind IN {CHANGES} GROUP BY 1, 2"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect())
    }
}

/// A delivery row that needs attention, with what the report shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionRow {
    pub delivery: DeliveryRecord,
    pub name: Option<String>,
    pub photo: Option<String>,
    /// Uploads and removals (reads do not count).
    pub attempts: i64,
}

fn upsert_delivery(
    d: &DeliveryRecord,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    sqlx::query(
        "INSERT INTO deliveries (person_id, target, state, source_hash, fingerprint,
             target_user_id, delivered_source_hash, delivered_hash, delivered_fingerprint,
             delivered_user_id, delivered_at, reason_code, reason, remote_id, request_id,
             attempts, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (person_id, target) DO UPDATE SET
             state = excluded.state, source_hash = excluded.source_hash,
             fingerprint = excluded.fingerprint, target_user_id = excluded.target_user_id,
             delivered_source_hash = excluded.delivered_source_hash,
             delivered_hash = excluded.delivered_hash,
             delivered_fingerprint = excluded.delivered_fingerprint,
             delivered_user_id = excluded.delivered_user_id,
             delivered_at = excluded.delivered_at, reason_code = excluded.reason_code,
             reason = excluded.reason, remote_id = excluded.remote_id,
             request_id = excluded.request_id, attempts = excluded.attempts,
             updated_at = excluded.updated_at",
    )
    .bind(&d.person_id)
    .bind(&d.target)
    .bind(d.state.as_str())
    .bind(&d.source_hash)
    .bind(&d.fingerprint)
    .bind(&d.target_user_id)
    .bind(&d.delivered_source_hash)
    .bind(&d.delivered_hash)
    .bind(&d.delivered_fingerprint)
    .bind(&d.delivered_user_id)
    .bind(&d.delivered_at)
    .bind(d.reason_code.map(|c| c.as_str()))
    .bind(&d.reason)
    .bind(&d.remote_id)
    .bind(&d.request_id)
    .bind(d.attempts)
    .bind(now())
}

#[cfg(test)]
mod tests;
