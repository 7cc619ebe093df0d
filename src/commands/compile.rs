//! `floe compile`: the entry point for turning inputs into the compiled artifact.

use std::path::Path;

use crate::artifact;
use crate::cli::CompileArgs;
use crate::config;
use crate::error::exit;

pub fn run(args: &CompileArgs, quiet: bool) -> u8 {
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
    let out_dir = args.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let compiled = artifact::compile(&project, out_dir);
    let text = compiled.to_json();

    if args.check {
        return match std::fs::read(&args.output) {
            Ok(existing) if existing == text.as_bytes() => {
                if !quiet {
                    eprintln!("{} is up to date", args.output.display());
                }
                exit::SUCCESS
            }
            Ok(_) => {
                eprintln!("error: {} is stale: the manifest or spec changed since it was compiled\n   = hint: run `floe compile` and commit the result", args.output.display());
                exit::STALE_ARTIFACT
            }
            Err(_) => {
                eprintln!("error: {} is missing\n   = hint: run `floe compile` and commit the result", args.output.display());
                exit::STALE_ARTIFACT
            }
        };
    }

    if let Err(e) = std::fs::create_dir_all(out_dir).and_then(|_| write_atomically(&args.output, text.as_bytes())) {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return exit::CONFIGURATION;
    }
    if let Some(path) = &args.dagster_definitions {
        let module = crate::dagster::render(&compiled, &args.output, path);
        if let Err(e) = path.parent().filter(|p| !p.as_os_str().is_empty()).map_or(Ok(()), std::fs::create_dir_all).and_then(|_| write_atomically(path, module.as_bytes())) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::CONFIGURATION;
        }
        if !quiet {
            eprintln!("wrote Dagster definitions to {}", path.display());
        }
    }
    if !quiet {
        let n = project.spec.ingestion.len();
        eprintln!("compiled {n} ingestion entr{} to {}", if n == 1 { "y" } else { "ies" }, args.output.display());
    }
    exit::SUCCESS
}

/// Write through a temporary file and rename, so readers never see half an artifact.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
