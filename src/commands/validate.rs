//! `floe validate`: the entry point for checking inputs without writing anything.

use crate::artifact;
use crate::cli::ValidateArgs;
use crate::config;
use crate::error::exit;
use crate::secrets::SecretStore;

pub fn run(args: &ValidateArgs, quiet: bool) -> u8 {
    let project = match config::load(&args.inputs.manifest, &args.inputs.spec) {
        Ok(p) => p,
        Err(problems) => {
            eprint!("{}", problems.render());
            return exit::CONFIGURATION;
        }
    };
    if !quiet {
        eprint!("{}", config::render_warnings(&project));
    }
    if args.secrets {
        let store = SecretStore::new(Some(&args.secrets_dir.secrets_dir));
        let compiled = artifact::compile(&project, std::path::Path::new("."));
        let missing: Vec<String> = all_secret_refs(&compiled).into_iter().filter_map(|(owner, r)| store.resolve(&r).err().map(|e| format!("{owner}: {e}"))).collect();
        if !missing.is_empty() {
            for m in &missing {
                eprintln!("error: {m}");
            }
            return exit::CONFIGURATION;
        }
    }
    if !quiet {
        eprintln!("{} and {} are valid ({} ingestion entries)", args.inputs.manifest.display(), args.inputs.spec.display(), project.spec.ingestion.len());
    }
    exit::SUCCESS
}

/// Every secret reference an artifact uses, with who uses it.
pub fn all_secret_refs(a: &artifact::Artifact) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(ab) = &a.plugins.airbyte {
        out.push(("plugins.ingestion[airbyte]".to_string(), ab.connection_secret_ref.clone()));
    }
    for r in [&a.plugins.catalog.credential_secret_ref, &a.plugins.catalog.token_secret_ref].into_iter().flatten() {
        out.push(("plugins.catalog".to_string(), r.clone()));
    }
    if let Some(r) = a.plugins.storage.as_ref().and_then(|s| s.connection_secret_ref.clone()) {
        out.push(("plugins.storage".to_string(), r));
    }
    if let Some(r) = a.observability.lineage.as_ref().and_then(|l| l.api_key_secret_ref.clone()) {
        out.push(("observability.lineage".to_string(), r));
    }
    for e in &a.ingestion {
        for r in e.secret_refs.values() {
            out.push((format!("ingestion entry {}", e.name), r.clone()));
        }
    }
    out
}
