//! Every command and flag, defined once. The help text, the man pages in `man/` and the
//! shell completions in `completions/` are all generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes: 0 success · 1 internal error · 2 usage · 3 stale artifact (compile --check)
            65 PARTIAL · 69 PERMANENT · 75 TRANSIENT · 78 CONFIGURATION · 130/143 interrupted

Start with `floe validate`, then `floe ingest run`. Docs: README.md, `man floe`.";

/// floe moves data from REST APIs, SQL databases, files and Airbyte into Apache Iceberg tables.
///
/// `floe compile` turns a platform manifest (manifest.yaml) and a pipeline spec (floe.yaml)
/// into a validated JSON artifact; `floe ingest run` loads every ingestion entry into its
/// Iceberg table and exits with a code a script can act on.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about, long_about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FLOE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Print only errors: no progress, no summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail in logs (-v debug, -vv trace). `RUST_LOG` also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// A table for people.
    #[default]
    Text,
    /// One JSON document on stdout, nothing else.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the manifest and the spec and write the compiled JSON artifact.
    ///
    /// The artifact carries every default and secret references only; the same inputs give
    /// a byte-identical file. In CI, `floe compile --check` fails (exit 3) when the committed
    /// artifact is missing or stale.
    Compile(CompileArgs),
    /// Validate the manifest and the spec; write nothing.
    ///
    /// Every problem is reported at once, each with file:line:column and its key path.
    Validate(ValidateArgs),
    /// Run and inspect ingestion entries.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Print the JSON Schema of a file floe reads, for editors and CI.
    Schema(SchemaArgs),
    /// Maintain the destination tables.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Delete data files that no snapshot references (left by killed or failed loads).
    ///
    /// Lists each selected entry's table `data/` folder and deletes the files that no
    /// snapshot references and that are older than --older-than (so a load still running
    /// keeps its files). Snapshots, their files and the incremental state are untouched.
    RemoveOrphans(RemoveOrphansArgs),
}

#[derive(Debug, Args)]
pub struct RemoveOrphansArgs {
    #[command(flatten)]
    pub from: SourceArgs,
    /// Only these entries' tables (repeatable; `*` and `?` globs allowed).
    #[arg(long, value_name = "NAME")]
    pub select: Vec<String>,
    /// Only files last modified more than this many seconds ago.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400.0)]
    pub older_than: f64,
    /// Report the orphans; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub secrets_dir: SecretsDirArg,
}

/// Where the inputs are.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// The platform manifest.
    #[arg(long, short = 'm', value_name = "FILE", default_value = "manifest.yaml")]
    pub manifest: PathBuf,
    /// The pipeline spec.
    #[arg(long, short = 's', value_name = "FILE", default_value = "floe.yaml")]
    pub spec: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Where to write the artifact.
    #[arg(long, short = 'o', value_name = "FILE", default_value = "target/compiled_artifacts.json")]
    pub output: PathBuf,
    /// Write nothing; exit 0 if the artifact on disk is current, 3 if missing or stale.
    #[arg(long)]
    pub check: bool,
    /// Also write a Python module defining one Dagster asset per ingestion entry.
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    pub dagster_definitions: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Also check that every secret reference resolves (values are never printed).
    #[arg(long)]
    pub secrets: bool,
    #[command(flatten)]
    pub secrets_dir: SecretsDirArg,
}

#[derive(Debug, Args, Clone)]
pub struct SecretsDirArg {
    /// Folder of secret files, one file per reference.
    #[arg(long, value_name = "DIR", env = "FLOE_SECRETS_DIR", default_value = crate::secrets::DEFAULT_SECRETS_DIR)]
    pub secrets_dir: PathBuf,
}

/// Where the entries come from: a compiled artifact, or the inputs compiled in memory.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Run a compiled artifact instead of compiling the manifest and spec in memory.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["manifest", "spec"])]
    pub artifact: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputArgs,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Load every selected ingestion entry into its Iceberg table.
    ///
    /// Entries run in parallel (--jobs), each retried by the manifest's retry policy.
    /// Incremental state is committed with the data, so a rerun after a crash neither loses
    /// nor duplicates rows.
    Run(RunArgs),
    /// List the entries: name, type, destination, write disposition.
    List(ListArgs),
    /// Show the stored incremental state of each entry (or of NAME).
    State(StateArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub from: SourceArgs,
    /// Run only these entries (repeatable; `*` and `?` globs allowed).
    #[arg(long, value_name = "NAME")]
    pub select: Vec<String>,
    /// Output format; `json` prints exactly one JSON report on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Resolve everything (secrets included) and report the plan; touch no source or table.
    #[arg(long)]
    pub dry_run: bool,
    /// Ignore stored incremental state for the selected entries.
    #[arg(long)]
    pub full_refresh: bool,
    /// Entries to run at once (default: number of cores, at most 4).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub secrets_dir: SecretsDirArg,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub from: SourceArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// One entry's name; all entries when absent.
    pub name: Option<String>,
    #[command(flatten)]
    pub from: SourceArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub secrets_dir: SecretsDirArg,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file's schema.
    #[arg(value_enum)]
    pub which: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// manifest.yaml
    Manifest,
    /// floe.yaml
    Spec,
    /// target/compiled_artifacts.json
    Artifact,
}

/// The generated files shipped in the repository (`completions/`, `man/`), rendered from the
/// definitions above. A test fails when the checked-in copies drift; `FLOE_BLESS=1 cargo test
/// --test generated` rewrites them.
pub fn generated_files() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    use clap_complete::Shell;

    let mut files = Vec::new();
    for (shell, name) in [(Shell::Bash, "floe.bash"), (Shell::Zsh, "_floe"), (Shell::Fish, "floe.fish")] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "floe", &mut buf);
        files.push((format!("completions/{name}"), buf));
    }
    let mut cmd = Cli::command();
    cmd.build();
    man_pages(&cmd, "floe", &mut files);
    files
}

fn man_pages(cmd: &clap::Command, name: &str, files: &mut Vec<(String, Vec<u8>)>) {
    let mut buf = Vec::new();
    let page = cmd.clone().name(name.to_string());
    if clap_mangen::Man::new(page).render(&mut buf).is_ok() {
        files.push((format!("man/{name}.1"), buf));
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), files);
    }
}
