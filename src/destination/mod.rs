//! Placeholder with the destination's public API until the real module lands (being written
//! concurrently). Every operation fails.
#![allow(dead_code, unused_variables)]
use std::sync::{Arc, Mutex};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SecretString(String);
impl SecretString {
    pub fn new(v: impl Into<String>) -> Self { SecretString(v.into()) }
    pub fn expose(&self) -> &str { &self.0 }
}
#[derive(Clone, Debug)]
pub enum CatalogConfig {
    Sql { name: String, uri: String, warehouse: String },
    Rest { name: String, uri: String, warehouse: String, credential: Option<SecretString>, token: Option<SecretString> },
}
#[derive(Clone, Debug, Default)]
pub struct StorageConfig { pub s3: Option<S3Config> }
#[derive(Clone, Debug, Default)]
pub struct S3Config { pub endpoint: Option<String>, pub region: Option<String>, pub path_style_access: bool, pub access_key_id: Option<SecretString>, pub secret_access_key: Option<SecretString> }
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteDisposition { Append, Replace, Merge { primary_key: Vec<String> } }
#[derive(Clone, Debug)]
pub struct LoadRequest { pub table: String, pub disposition: WriteDisposition, pub load_id: String, pub state_key: String, pub state: Arc<Mutex<Option<String>>> }
#[derive(Clone, Debug, Default)]
pub struct LoadOutcome { pub rows_loaded: u64, pub rows_rejected: u64, pub rejected_samples: Vec<String>, pub table_created: bool, pub snapshot_id: Option<i64>, pub schema_changes: Vec<String> }
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("{0}")] Config(String),
    #[error("{0}")] InvalidTable(String),
    #[error("{message}")] Schema { table: String, message: String },
    #[error("{message}")] Unsupported { table: String, message: String },
    #[error(transparent)] Source(BoxError),
}
impl DestinationError { pub fn is_transient(&self) -> bool { false } pub fn is_auth(&self) -> bool { false } }
#[derive(Clone, Debug)]
pub struct Destination;
impl Destination {
    pub async fn open(catalog: &CatalogConfig, storage: &StorageConfig) -> Result<Self, DestinationError> { Err(DestinationError::Config("destination not built yet".into())) }
    pub async fn read_state(&self, table: &str, key: &str) -> Result<Option<String>, DestinationError> { Ok(None) }
    pub async fn load<S>(&self, req: LoadRequest, batches: S) -> Result<LoadOutcome, DestinationError>
    where S: futures::Stream<Item = Result<arrow_array::RecordBatch, BoxError>> + Send + Unpin { Err(DestinationError::Config("not built".into())) }
}
