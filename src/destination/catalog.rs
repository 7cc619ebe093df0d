//! Opening the SQL (SQLite) and REST catalogs with their storage, and finding or creating
//! namespaces and tables.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iceberg::spec::Schema;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, Runtime, TableCreation, TableIdent};
use iceberg_catalog_rest::{REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalogBuilder};
use iceberg_catalog_sql::{SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle, SqlCatalogBuilder};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;

use super::error::{DestinationError, ErrorContext, FailureKind, Redactor};
use super::{CatalogConfig, S3Config, StorageConfig};

/// Properties every table floe creates carries: readers and other writers should use zstd too.
const TABLE_PROPERTIES: &[(&str, &str)] = &[("write.parquet.compression-codec", "zstd")];

/// A redactor that knows every secret of the configuration.
pub(crate) fn redactor(catalog: &CatalogConfig, storage: &StorageConfig) -> Redactor {
    let mut secrets = Vec::new();
    if let CatalogConfig::Rest { credential, token, .. } = catalog {
        for secret in [credential, token].into_iter().flatten() {
            secrets.push(secret.expose().to_string());
            // The client id alone is not secret, the part after the colon is.
            if let Some((_, s)) = secret.expose().split_once(':') {
                secrets.push(s.to_string());
            }
        }
    }
    if let Some(s3) = &storage.s3 {
        secrets.extend([&s3.access_key_id, &s3.secret_access_key].into_iter().flatten().map(|s| s.expose().to_string()));
    }
    Redactor::new(secrets)
}

/// The catalog in a few words, without secrets.
pub(crate) fn describe(catalog: &CatalogConfig) -> String {
    match catalog {
        CatalogConfig::Sql { name, uri, .. } => format!("SQL catalog `{name}` at {uri}"),
        CatalogConfig::Rest { name, uri, .. } => format!("REST catalog `{name}` at {uri}"),
    }
}

/// Opens the configured catalog.
pub(crate) async fn open(
    catalog: &CatalogConfig,
    storage: &StorageConfig,
    redactor: &Redactor,
) -> Result<Arc<dyn Catalog>, DestinationError> {
    let runtime =
        Runtime::try_current().map_err(|_| DestinationError::Config("the destination must be opened inside a tokio runtime".into()))?;
    match catalog {
        CatalogConfig::Sql { name, uri, warehouse } => open_sql(name, uri, warehouse, storage, runtime, redactor).await,
        CatalogConfig::Rest { name, uri, warehouse, credential, token } => {
            let mut props = s3_props(storage.s3.as_ref());
            props.insert(REST_CATALOG_PROP_URI.into(), uri.clone());
            props.insert(REST_CATALOG_PROP_WAREHOUSE.into(), warehouse.clone());
            if let Some(c) = credential {
                props.insert("credential".into(), c.expose().to_string());
            }
            if let Some(t) = token {
                props.insert("token".into(), t.expose().to_string());
            }
            let catalog = RestCatalogBuilder::default()
                .with_storage_factory(Arc::new(OpenDalResolvingStorageFactory::new()))
                .with_runtime(runtime)
                .load(name.clone(), props)
                .await
                .map_err(|e| catalog_open_error(uri, &e, redactor))?;
            // The REST client is lazy: ask once so that a wrong URI or credential fails here.
            catalog.list_namespaces(None).await.map_err(|e| catalog_open_error(uri, &e, redactor))?;
            Ok(Arc::new(catalog))
        }
    }
}

async fn open_sql(
    name: &str,
    uri: &str,
    warehouse: &str,
    storage: &StorageConfig,
    runtime: Runtime,
    redactor: &Redactor,
) -> Result<Arc<dyn Catalog>, DestinationError> {
    let sqlx_uri = sqlite_uri(uri)?;
    let warehouse = warehouse_location(warehouse, storage)?;
    let mut props = s3_props(storage.s3.as_ref());
    props.insert(SQL_CATALOG_PROP_URI.into(), sqlx_uri);
    props.insert(SQL_CATALOG_PROP_WAREHOUSE.into(), warehouse);
    props.insert(SQL_CATALOG_PROP_BIND_STYLE.into(), SqlBindStyle::QMark.to_string());
    // One connection per process: SQLite has a single writer, and sqlx's default busy timeout
    // (5 s) then covers other processes committing at the same time.
    props.insert("pool.max-connections".into(), "1".into());
    let catalog = SqlCatalogBuilder::default()
        .with_storage_factory(Arc::new(OpenDalResolvingStorageFactory::new()))
        .with_runtime(runtime)
        .load(name.to_string(), props)
        .await
        .map_err(|e| catalog_open_error(uri, &e, redactor))?;
    Ok(Arc::new(catalog))
}

fn catalog_open_error(uri: &str, err: &iceberg::Error, redactor: &Redactor) -> DestinationError {
    ErrorContext::new(uri, redactor).catalog("open", err)
}

/// The sqlx URI for a `sqlite:` catalog URI: absolute path, parent directory created, and
/// `mode=rwc` so the database file is created on first use.
fn sqlite_uri(uri: &str) -> Result<String, DestinationError> {
    let not_absolute =
        || DestinationError::Config(format!("SQL catalog URI `{uri}` must be sqlite:///<absolute path to the database file>"));
    let rest = uri
        .strip_prefix("sqlite:")
        .ok_or_else(|| DestinationError::Config(format!("SQL catalog URI `{uri}` must start with sqlite: (the SQL catalog is SQLite)")))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // sqlite:///abs, sqlite:////abs (SQLAlchemy) and sqlite:/abs all name /abs; sqlite://rel does not.
    let path = path.strip_prefix("//").unwrap_or(path);
    if !path.starts_with('/') {
        return Err(not_absolute());
    }
    let path = format!("/{}", path.trim_start_matches('/'));
    let parent = Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()).ok_or_else(not_absolute)?;
    if path.ends_with('/') {
        return Err(not_absolute());
    }
    std::fs::create_dir_all(parent).map_err(|e| DestinationError::Config(format!("cannot create directory {}: {e}", parent.display())))?;
    let query = if query.split('&').any(|kv| kv.starts_with("mode=")) {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The warehouse as a URL; a local directory is created.
fn warehouse_location(warehouse: &str, storage: &StorageConfig) -> Result<String, DestinationError> {
    let local = warehouse.strip_prefix("file://").or_else(|| warehouse.strip_prefix("file:")).unwrap_or(warehouse);
    if warehouse.contains("://") && !warehouse.starts_with("file:") {
        if warehouse.starts_with("s3") && storage.s3.is_none() {
            return Err(DestinationError::Config(format!("warehouse `{warehouse}` is on S3 but no S3 storage is configured")));
        }
        return Ok(warehouse.trim_end_matches('/').to_string());
    }
    if !local.starts_with('/') {
        return Err(DestinationError::Config(format!("warehouse `{warehouse}` must be an absolute path or a URL")));
    }
    std::fs::create_dir_all(local).map_err(|e| DestinationError::Config(format!("cannot create warehouse directory {local}: {e}")))?;
    Ok(format!("file://{}", local.trim_end_matches('/')))
}

/// FileIO properties for S3 (empty for local storage).
fn s3_props(s3: Option<&S3Config>) -> HashMap<String, String> {
    let mut props = HashMap::new();
    let Some(s3) = s3 else { return props };
    if let Some(endpoint) = &s3.endpoint {
        props.insert(iceberg::io::S3_ENDPOINT.to_string(), endpoint.clone());
    }
    if let Some(region) = &s3.region {
        props.insert(iceberg::io::S3_REGION.to_string(), region.clone());
        props.insert(iceberg::io::CLIENT_REGION.to_string(), region.clone());
    }
    props.insert(iceberg::io::S3_PATH_STYLE_ACCESS.to_string(), s3.path_style_access.to_string());
    if let Some(key) = &s3.access_key_id {
        props.insert(iceberg::io::S3_ACCESS_KEY_ID.to_string(), key.expose().to_string());
    }
    if let Some(secret) = &s3.secret_access_key {
        props.insert(iceberg::io::S3_SECRET_ACCESS_KEY.to_string(), secret.expose().to_string());
    }
    props
}

/// `ns.table` (or `a.b.table`) as an identifier: the last part is the table.
///
/// Each part must be an identifier (a letter or `_`, then letters, digits or `_`). The
/// compiler already demands that of a spec, but an artifact can be edited by hand, and a
/// part becomes a folder of the table's location and a value in catalog requests: a `/`, a
/// `%` or a control character there must never reach a path or a URL.
pub(crate) fn parse_table_name(name: &str) -> Result<TableIdent, DestinationError> {
    let parts: Vec<&str> = name.split('.').collect();
    let ident = |p: &str| {
        let mut chars = p.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if parts.len() < 2 || !parts.iter().all(|p| ident(p)) {
        return Err(DestinationError::InvalidTable(name.to_string()));
    }
    TableIdent::from_strs(parts).map_err(|_| DestinationError::InvalidTable(name.to_string()))
}

/// The table, or None when it (or its namespace) does not exist.
pub(crate) async fn load_table(catalog: &dyn Catalog, ident: &TableIdent, ctx: &ErrorContext) -> Result<Option<Table>, DestinationError> {
    match catalog.load_table(ident).await {
        Ok(table) => Ok(Some(table)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(ctx.catalog("load", &e)),
    }
}

/// The table, which must exist (it was seen before in this load).
pub(crate) async fn reload_table(catalog: &dyn Catalog, ident: &TableIdent, ctx: &ErrorContext) -> Result<Table, DestinationError> {
    load_table(catalog, ident, ctx)
        .await?
        .ok_or_else(|| ctx.catalog_kind("reload", FailureKind::NotFound, "the table was dropped during the load".into()))
}

/// Attempts at finding or creating a table: creation races with other writers, and some
/// servers answer errors while a concurrent creation is half done.
const SETUP_ATTEMPTS: u32 = 5;
const SETUP_BACKOFF: Duration = Duration::from_millis(200);

/// Loads the table, or creates it (and its namespace) with `schema`. Returns whether this call
/// created it. A concurrent creator wins gracefully: its table is loaded instead.
pub(crate) async fn load_or_create_table(
    catalog: &dyn Catalog,
    ident: &TableIdent,
    schema: &(dyn Fn() -> Result<Schema, DestinationError> + Send + Sync),
    ctx: &ErrorContext,
) -> Result<(Table, bool), DestinationError> {
    let mut attempt = 1;
    loop {
        match try_load_or_create_table(catalog, ident, schema, ctx).await {
            Err(e) if attempt < SETUP_ATTEMPTS && matches!(e.failure_kind(), Some(FailureKind::Other | FailureKind::Unavailable)) => {
                tracing::debug!(table = %ctx.table, attempt, error = %e, "finding or creating the table failed, retrying");
                tokio::time::sleep(SETUP_BACKOFF * attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_load_or_create_table(
    catalog: &dyn Catalog,
    ident: &TableIdent,
    schema: &(dyn Fn() -> Result<Schema, DestinationError> + Send + Sync),
    ctx: &ErrorContext,
) -> Result<(Table, bool), DestinationError> {
    if let Some(table) = load_table(catalog, ident, ctx).await? {
        return Ok((table, false));
    }
    ensure_namespace(catalog, ident.namespace(), ctx).await?;
    let creation = TableCreation::builder()
        .name(ident.name().to_string())
        .schema(schema()?)
        .properties(TABLE_PROPERTIES.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .build();
    match catalog.create_table(ident.namespace(), creation).await {
        Ok(table) => Ok((table, true)),
        Err(e) => match load_table(catalog, ident, ctx).await? {
            Some(table) => Ok((table, false)),
            None => Err(ctx.catalog("create table", &e)),
        },
    }
}

/// Creates the namespace and its parents where missing, tolerating concurrent creators.
async fn ensure_namespace(catalog: &dyn Catalog, namespace: &NamespaceIdent, ctx: &ErrorContext) -> Result<(), DestinationError> {
    let parts = namespace.as_ref();
    for depth in 1..=parts.len() {
        let ns = NamespaceIdent::from_strs(&parts[..depth]).map_err(|e| ctx.catalog("create namespace", &e))?;
        let exists = catalog.namespace_exists(&ns).await.map_err(|e| ctx.catalog("check namespace", &e))?;
        if exists {
            continue;
        }
        if let Err(e) = catalog.create_namespace(&ns, HashMap::new()).await {
            let now_exists = catalog.namespace_exists(&ns).await.unwrap_or(false);
            if !now_exists {
                return Err(ctx.catalog("create namespace", &e));
            }
        }
    }
    Ok(())
}

fn is_not_found(err: &iceberg::Error) -> bool {
    matches!(err.kind(), ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_uris() {
        let dir = std::env::temp_dir().join("floe-dest-uri-test");
        let p = dir.join("c.db");
        let p = p.to_str().unwrap_or_default();
        assert_eq!(sqlite_uri(&format!("sqlite://{p}")).ok(), Some(format!("sqlite://{p}?mode=rwc")));
        assert_eq!(sqlite_uri(&format!("sqlite:///{p}")).ok(), Some(format!("sqlite://{p}?mode=rwc")));
        assert_eq!(sqlite_uri(&format!("sqlite://{p}?mode=ro")).ok(), Some(format!("sqlite://{p}?mode=ro")));
        assert_eq!(sqlite_uri(&format!("sqlite:{p}")).ok(), Some(format!("sqlite://{p}?mode=rwc")));
        assert!(sqlite_uri("postgres://x").is_err());
        assert!(sqlite_uri("sqlite://").is_err());
        assert!(sqlite_uri("sqlite://relative.db").is_err());
        assert!(sqlite_uri("sqlite::memory:").is_err());
    }

    #[test]
    fn table_names() {
        assert!(parse_table_name("ns.t").is_ok());
        assert_eq!(parse_table_name("a.b.t").map(|i| i.namespace().as_ref().len()).ok(), Some(2));
        for bad in ["t", "ns.", ".t", "ns..t", "ns. t", "/tmp/evil.t", "ns.a/b", "ns.%2e%2e", "ns.t\n", "1ns.t", "ns.t-x"] {
            assert!(matches!(parse_table_name(bad), Err(DestinationError::InvalidTable(_))), "{bad}");
        }
    }
}
