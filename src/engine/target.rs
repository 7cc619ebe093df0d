//! From the artifact's catalog and storage settings to an opened destination: relative paths
//! resolved against the manifest's folder, secret references resolved to values.

use std::path::Path;

use crate::commands::Loaded;
use crate::config::manifest::CatalogType;
use crate::destination::{CatalogConfig, S3Config, SecretString, StorageConfig};
use crate::error::{code, IngestionError};
use crate::secrets::{Redactor, SecretStore};
use crate::sources::S3Access;

/// The destination settings of the artifact, resolved.
pub fn destination_config(loaded: &Loaded, secrets: &SecretStore, redactor: &mut Redactor) -> Result<(CatalogConfig, StorageConfig), IngestionError> {
    let c = &loaded.artifact.plugins.catalog;
    let catalog = match c.kind {
        CatalogType::Sql => {
            let uri = if c.uri.starts_with("sqlite:") {
                c.uri.clone()
            } else {
                format!("sqlite://{}", absolute(&loaded.manifest_path(&c.uri)))
            };
            let warehouse = if c.warehouse.contains("://") { c.warehouse.clone() } else { absolute(&loaded.manifest_path(&c.warehouse)) };
            CatalogConfig::Sql { name: c.name.clone(), uri, warehouse }
        }
        CatalogType::Rest => CatalogConfig::Rest {
            name: c.name.clone(),
            uri: c.uri.clone(),
            warehouse: c.warehouse.clone(),
            credential: resolve(c.credential_secret_ref.as_deref(), secrets, redactor)?,
            token: resolve(c.token_secret_ref.as_deref(), secrets, redactor)?,
        },
    };
    let storage = StorageConfig { s3: s3_config(loaded, secrets, redactor)? };
    Ok((catalog, storage))
}

fn s3_config(loaded: &Loaded, secrets: &SecretStore, redactor: &mut Redactor) -> Result<Option<S3Config>, IngestionError> {
    let Some(s) = &loaded.artifact.plugins.storage else { return Ok(None) };
    let keys = resolve(s.connection_secret_ref.as_deref(), secrets, redactor)?;
    let (access, secret) = match keys {
        Some(k) => {
            let (a, b) = k.expose().split_once(':').ok_or_else(|| {
                IngestionError::configuration(code::INVALID_CONFIG, "floe", format!("secret `{}` must hold ACCESS_KEY:SECRET_KEY", s.connection_secret_ref.as_deref().unwrap_or("")))
            })?;
            (Some(SecretString::new(a)), Some(SecretString::new(b)))
        }
        None => (None, None),
    };
    Ok(Some(S3Config {
        endpoint: s.endpoint.clone(),
        region: s.region.clone(),
        path_style_access: s.path_style_access,
        access_key_id: access,
        secret_access_key: secret,
    }))
}

/// S3 access for sources that read `s3://` URLs, from the same storage settings.
pub fn s3_access(loaded: &Loaded, secrets: &SecretStore, redactor: &mut Redactor) -> Result<Option<S3Access>, IngestionError> {
    Ok(s3_config(loaded, secrets, redactor)?.map(|c| S3Access {
        endpoint: c.endpoint,
        region: c.region,
        path_style_access: c.path_style_access,
        access_key_id: c.access_key_id.map(|k| k.expose().to_string()),
        secret_access_key: c.secret_access_key.map(|k| k.expose().to_string()),
    }))
}

fn resolve(reference: Option<&str>, secrets: &SecretStore, redactor: &mut Redactor) -> Result<Option<SecretString>, IngestionError> {
    let Some(r) = reference else { return Ok(None) };
    let s = secrets.resolve(r).map_err(|e| super::missing_secret(&e))?;
    redactor.add(&s);
    Ok(Some(SecretString::new(s.expose())))
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}
