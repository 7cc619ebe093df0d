//! Where the filesystem source's files live: a local folder or an S3 prefix. Lists files with
//! their modification time and size, and opens one as a blocking byte reader (decoders run on
//! a blocking thread, so S3 streams are bridged rather than downloaded whole).

use std::io::Read;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use globset::{Glob, GlobMatcher};
use opendal::Operator;

use crate::error::{code, IngestionError};
use crate::sources::S3Access;

/// One file found under `bucket_url`.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// Path relative to `bucket_url`, with `/` separators.
    pub path: String,
    /// Milliseconds since the Unix epoch.
    pub mtime_ms: i64,
    pub size: u64,
}

/// A folder or S3 prefix.
pub enum Store {
    Local(PathBuf),
    S3 { op: Operator, url: String },
}

const SOURCE: &str = "filesystem";

impl Store {
    /// Open `bucket_url`: `s3://bucket/prefix`, `file:///abs`, an absolute path, or a path
    /// relative to `base`.
    pub fn open(bucket_url: &str, base: &Path, s3: Option<&S3Access>) -> Result<Store, IngestionError> {
        if let Some(rest) = bucket_url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(IngestionError::configuration(code::INVALID_CONFIG, SOURCE, format!("bucket_url \"{bucket_url}\" names no bucket")));
            }
            let mut b = opendal::services::S3::default().bucket(bucket).root(&format!("/{}", prefix.trim_matches('/')));
            if let Some(s3) = s3 {
                if let Some(e) = &s3.endpoint {
                    b = b.endpoint(e);
                }
                b = b.region(s3.region.as_deref().unwrap_or("us-east-1"));
                if let (Some(k), Some(s)) = (&s3.access_key_id, &s3.secret_access_key) {
                    b = b.access_key_id(k).secret_access_key(s);
                }
                if !s3.path_style_access {
                    b = b.enable_virtual_host_style();
                }
            }
            let op = Operator::new(b).map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, SOURCE, format!("cannot use {bucket_url}: {e}")))?.finish();
            return Ok(Store::S3 { op, url: bucket_url.to_string() });
        }
        let path = bucket_url.strip_prefix("file://").unwrap_or(bucket_url);
        let path = Path::new(path);
        Ok(Store::Local(if path.is_absolute() { path.to_path_buf() } else { base.join(path) }))
    }

    /// Every file matching `glob`, sorted by modification time then name.
    pub async fn list(&self, glob: &str) -> Result<Vec<FileInfo>, IngestionError> {
        if let Some(why) = glob_outside(glob) {
            return Err(IngestionError::configuration(
                code::INVALID_CONFIG,
                SOURCE,
                format!("file_glob \"{glob}\" reaches outside bucket_url ({why}); to read another folder, point bucket_url at it"),
            ));
        }
        let matcher = Glob::new(glob)
            .map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, SOURCE, format!("file_glob \"{glob}\" is not a valid glob: {e}")))?
            .compile_matcher();
        let mut files = match self {
            Store::Local(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || list_local(&root, &matcher))
                    .await
                    .map_err(|e| IngestionError::permanent(code::SOURCE_ERROR, SOURCE, format!("listing failed: {e}")))??
            }
            Store::S3 { op, url } => list_s3(op, url, &matcher).await?,
        };
        files.sort_by(|a, b| a.mtime_ms.cmp(&b.mtime_ms).then_with(|| a.path.cmp(&b.path)));
        Ok(files)
    }

    /// A blocking reader over one file. Call from a blocking thread.
    pub fn reader(&self, path: &str, handle: &tokio::runtime::Handle) -> Result<Box<dyn Read + Send>, std::io::Error> {
        match self {
            Store::Local(root) => Ok(Box::new(open_inside(root, path)?)),
            Store::S3 { op, .. } => {
                let stream = handle
                    .block_on(async { op.reader(path).await?.into_bytes_stream(..).await })
                    .map_err(std::io::Error::other)?;
                let async_read = tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other));
                Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(async_read, handle.clone())))
            }
        }
    }

    /// The whole file (Parquet needs random access). Call from a blocking thread.
    pub fn read_all(&self, path: &str, handle: &tokio::runtime::Handle) -> Result<bytes::Bytes, std::io::Error> {
        match self {
            Store::Local(root) => {
                let mut bytes = Vec::new();
                open_inside(root, path)?.read_to_end(&mut bytes)?;
                Ok(bytes::Bytes::from(bytes))
            }
            Store::S3 { op, .. } => handle.block_on(op.read(path)).map(|b| b.to_bytes()).map_err(std::io::Error::other),
        }
    }

    /// The opened file, when the store is local (Parquet reads it in place).
    pub fn local_file(&self, path: &str) -> Option<std::io::Result<std::fs::File>> {
        match self {
            Store::Local(root) => Some(open_inside(root, path)),
            Store::S3 { .. } => None,
        }
    }
}

/// Why `glob` would reach outside `bucket_url`, if it would: an absolute pattern or a `..`
/// component. Globs are only matched against paths found under `bucket_url`, so such a glob
/// could never select a file outside it; it is refused so that the mistake is named rather
/// than loading nothing.
pub fn glob_outside(glob: &str) -> Option<&'static str> {
    if glob.starts_with('/') {
        Some("it is an absolute path")
    } else if glob.split('/').any(|part| part == "..") {
        Some("it has a `..` component")
    } else {
        None
    }
}

/// Open `root/path`, refusing a file that resolves (through links) outside `root`. Listing
/// already skips such links; checking again at open time closes the window in which a file
/// could be swapped for a link between listing and reading.
fn open_inside(root: &Path, path: &str) -> std::io::Result<std::fs::File> {
    let root = std::fs::canonicalize(root)?;
    match resolved_inside(&root, &root.join(path))? {
        Some(target) => std::fs::File::open(target),
        None => Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("{path} resolves to a file outside bucket_url; not read"))),
    }
}

/// `path` with every link resolved, when that stays under `canonical_root`.
fn resolved_inside(canonical_root: &Path, path: &Path) -> std::io::Result<Option<PathBuf>> {
    let target = std::fs::canonicalize(path)?;
    Ok(target.starts_with(canonical_root).then_some(target))
}

fn list_local(root: &Path, matcher: &GlobMatcher) -> Result<Vec<FileInfo>, IngestionError> {
    let meta = std::fs::metadata(root).map_err(|e| {
        IngestionError::permanent(code::SOURCE_NOT_FOUND, SOURCE, format!("folder {} cannot be read: {e}", root.display()))
    })?;
    if !meta.is_dir() {
        return Err(IngestionError::permanent(code::SOURCE_NOT_FOUND, SOURCE, format!("{} is not a folder", root.display())));
    }
    let canonical_root = std::fs::canonicalize(root)
        .map_err(|e| IngestionError::permanent(code::SOURCE_NOT_FOUND, SOURCE, format!("folder {} cannot be read: {e}", root.display())))?;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| IngestionError::permanent(code::SOURCE_ERROR, SOURCE, format!("cannot list {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // The entry itself, not what a link points to (`DirEntry::metadata` does not follow).
            let Ok(mut meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !matcher.is_match(&rel) {
                continue;
            }
            if meta.file_type().is_symlink() {
                // A link is read only when it resolves inside bucket_url: a glob must not be
                // a way out of the folder the configuration names. Links to folders are not
                // followed (their targets inside bucket_url are listed anyway; no cycles).
                match resolved_inside(&canonical_root, &path) {
                    Ok(Some(target)) => match std::fs::metadata(&target) {
                        Ok(m) if m.is_file() => meta = m,
                        _ => continue,
                    },
                    _ => {
                        tracing::warn!("filesystem: {rel} is a link that resolves outside bucket_url {}; skipped", root.display());
                        continue;
                    }
                }
            }
            let mtime_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            out.push(FileInfo { path: rel, mtime_ms, size: meta.len() });
        }
    }
    Ok(out)
}

async fn list_s3(op: &Operator, url: &str, matcher: &GlobMatcher) -> Result<Vec<FileInfo>, IngestionError> {
    let entries = op.list_with("/").recursive(true).await.map_err(|e| classify_s3(url, &e))?;
    let mut out = Vec::new();
    for entry in entries {
        let meta = entry.metadata();
        if !meta.is_file() {
            continue;
        }
        let rel = entry.path().trim_start_matches('/').to_string();
        if !matcher.is_match(&rel) {
            continue;
        }
        let mtime_ms = meta.last_modified().map_or(0, |t| t.into_inner().as_millisecond());
        out.push(FileInfo { path: rel, mtime_ms, size: meta.content_length() });
    }
    Ok(out)
}

fn classify_s3(url: &str, e: &opendal::Error) -> IngestionError {
    use opendal::ErrorKind;
    let msg = format!("{url}: {}", e.kind());
    match e.kind() {
        ErrorKind::NotFound => IngestionError::permanent(code::SOURCE_NOT_FOUND, SOURCE, msg),
        ErrorKind::PermissionDenied => IngestionError::permanent(code::AUTH_FAILED, SOURCE, msg),
        ErrorKind::RateLimited => IngestionError::transient(code::RATE_LIMITED, SOURCE, msg),
        _ if e.is_temporary() => IngestionError::transient(code::UNAVAILABLE, SOURCE, msg),
        _ => IngestionError::permanent(code::SOURCE_ERROR, SOURCE, format!("{msg}: {e}")),
    }
}
