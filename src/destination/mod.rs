//! The Iceberg destination: owns everything between Arrow record batches and a committed
//! Iceberg snapshot.
//!
//! It opens the catalog (embedded SQLite SQL catalog or a REST catalog) and its storage (local
//! files or S3), creates namespaces and tables from the first batch's Arrow schema, conforms
//! every batch to the table schema (evolving it, casting, rejecting rows that cannot be
//! stored), writes zstd Parquet files as batches arrive, and commits exactly one snapshot per
//! load with the chosen disposition (append, replace, merge) together with the load's
//! incremental state. It depends on external crates only, never on other floe modules.
//!
//! Type policy: integers of every width are stored as Iceberg `long` and floats as `double`,
//! so a later load that widens int→long or float→double never needs a type change.
//! Timestamps with a time zone become `timestamptz`, without one `timestamp` (both in
//! microseconds); strings, booleans, dates, times, binary, fixed and decimals keep their type;
//! Arrow structs, lists and maps become Iceberg structs, lists and maps. Every row gets the
//! string column `_floe_load_id`.
//!
//! Files: `catalog` (catalogs, storage, namespaces, tables), `schema` (types, evolution,
//! conforming batches), `writer` (Parquet files), `session` (one load's stream), `merge`
//! (keys, deduplication, copy-on-write rewrites), `commit` (the snapshot: append, replace and
//! merge via the staged base, retries on conflict), `state` (incremental state), `error`.

mod catalog;
mod commit;
mod error;
mod maintenance;
mod merge;
mod schema;
mod session;
mod state;
mod writer;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use iceberg::Catalog;

pub use error::{BoxError, DestinationError, FailureKind};
pub use maintenance::OrphanReport;
pub use schema::LOAD_ID_COLUMN;

use error::{ErrorContext, Redactor};
use session::Session;

/// A secret value (key, credential, token) that never shows in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        SecretString(value.to_string())
    }
}

/// Which Iceberg catalog to use.
#[derive(Clone, Debug)]
pub enum CatalogConfig {
    /// Embedded default: a SQLite SQL catalog. The database file and the warehouse directory
    /// are created on first use. PyIceberg opens the same catalog with
    /// `SqlCatalog(name, uri="sqlite:////abs/catalog.db", warehouse="file:///abs/warehouse")`.
    Sql {
        /// Catalog name; tables are keyed by it (floe uses `floe`).
        name: String,
        /// `sqlite:///abs/path/catalog.db` (SQLAlchemy's four-slash form is accepted too).
        uri: String,
        /// Absolute path, `file://` URL, or `s3://bucket/prefix` (with [`StorageConfig::s3`]).
        warehouse: String,
    },
    /// An Iceberg REST catalog.
    Rest {
        name: String,
        /// `http(s)://host:port[/path]`.
        uri: String,
        /// Warehouse name or location, as the server expects it.
        warehouse: String,
        /// OAuth2 client credentials `id:secret`.
        credential: Option<SecretString>,
        /// A bearer token.
        token: Option<SecretString>,
    },
}

/// Where data files live. `s3: None` means the local filesystem.
#[derive(Clone, Debug, Default)]
pub struct StorageConfig {
    pub s3: Option<S3Config>,
}

/// S3 (or S3-compatible) storage settings. Unset keys fall back to the AWS environment.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style_access: bool,
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
}

/// How a load changes the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteDisposition {
    /// Add the rows.
    Append,
    /// The table afterwards holds exactly this load's rows; earlier snapshots stay readable.
    Replace,
    /// Upsert by primary key (copy-on-write): the last row of a key in the load wins; rows of
    /// other keys are untouched. Rows with a null key are rejected.
    Merge { primary_key: Vec<String> },
}

/// One load into one table.
#[derive(Clone, Debug)]
pub struct LoadRequest {
    /// `namespace.table` (the namespace may itself be dotted: the last part is the table).
    pub table: String,
    pub disposition: WriteDisposition,
    /// Written to every row as column `_floe_load_id` and to the snapshot summary as `floe.load-id`.
    pub load_id: String,
    /// Key of the incremental state (e.g. the entry name).
    pub state_key: String,
    /// State (JSON text) committed atomically with the data. Read once the stream has ended,
    /// just before the commit, so a caller that learns the state while streaming (the highest
    /// cursor value, say) fills it in at the end of its stream. `None` commits no state.
    pub state: StateCell,
}

/// The state a load commits, settable until its stream ends. See [`LoadRequest::state`].
pub type StateCell = Arc<Mutex<Option<String>>>;

/// A state cell holding `state` from the start.
pub fn state_cell(state: Option<String>) -> StateCell {
    Arc::new(Mutex::new(state))
}

impl LoadRequest {
    /// The state as it is now.
    pub(crate) fn current_state(&self) -> Option<String> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// A few human-readable reasons for rejected rows (no data values).
    pub rejected_samples: Vec<String>,
    pub table_created: bool,
    /// The committed snapshot, if the load committed one.
    pub snapshot_id: Option<i64>,
    /// Columns added to the table by this load, e.g. "added column `email` (string)".
    pub schema_changes: Vec<String>,
}

/// An opened catalog and its storage, ready to load tables.
#[derive(Clone)]
pub struct Destination {
    catalog: Arc<dyn Catalog>,
    /// What `Debug` shows: the catalogs' own `Debug` output includes their properties (secrets).
    description: String,
    redactor: Redactor,
    /// Storage settings, for listing files (orphan removal: `maintenance`).
    storage: StorageConfig,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination").field("catalog", &self.description).finish_non_exhaustive()
    }
}

impl Destination {
    /// Opens the catalog; for REST this checks that the server answers and accepts the credentials.
    pub async fn open(catalog: &CatalogConfig, storage: &StorageConfig) -> Result<Self, DestinationError> {
        let redactor = catalog::redactor(catalog, storage);
        let description = catalog::describe(catalog);
        let catalog = catalog::open(catalog, storage, &redactor).await?;
        Ok(Destination { catalog, description, redactor, storage: storage.clone() })
    }

    /// The state committed by the last successful load for `state_key` into `table`
    /// (None if the table or the state is absent).
    pub async fn read_state(&self, table: &str, state_key: &str) -> Result<Option<String>, DestinationError> {
        let ident = catalog::parse_table_name(table)?;
        let ctx = ErrorContext::new(table, &self.redactor);
        let Some(table) = catalog::load_table(self.catalog.as_ref(), &ident, &ctx).await? else {
            return Ok(None);
        };
        Ok(state::read(table.metadata(), state_key))
    }

    /// Consumes the batches (each is written to Parquet as it arrives; merge keeps only the
    /// keys in memory) and commits one snapshot.
    ///
    /// A stream error aborts the load: nothing is committed, the data files already written
    /// are deleted (best effort) and the error comes back as [`DestinationError::Source`].
    /// With no rows: `Replace` commits an empty snapshot that empties the table if the table
    /// exists (a missing table is not created); `Append`/`Merge` commit only the state, if
    /// `state` is set and the table exists, and otherwise do nothing.
    ///
    /// The table (and namespace) is created when the first batch with rows arrives, in its own
    /// catalog commit: a load that fails later leaves that table in place, empty (no snapshot).
    /// `rows_loaded` counts the rows committed (for merge: after deduplication by key).
    pub async fn load<S>(&self, req: LoadRequest, mut batches: S) -> Result<LoadOutcome, DestinationError>
    where
        S: Stream<Item = Result<arrow_array::RecordBatch, BoxError>> + Send + Unpin,
    {
        let ident = catalog::parse_table_name(&req.table)?;
        if let WriteDisposition::Merge { primary_key } = &req.disposition
            && primary_key.is_empty()
        {
            return Err(DestinationError::Config(format!("merge into `{}` needs a primary key", req.table)));
        }
        let ctx = ErrorContext::new(&req.table, &self.redactor);
        let mut session = Session::new(self.catalog.clone(), ident, req, ctx);
        while let Some(item) = batches.next().await {
            let result = match item {
                Ok(batch) => session.write(batch).await,
                Err(source) => Err(DestinationError::Source(source)),
            };
            if let Err(err) = result {
                session.abort().await;
                return Err(err);
            }
        }
        session.finish().await
    }
}
