//! The `floe` binary: parse arguments, set up logging, dispatch to one command, exit.
//! The process exit code is decided here and nowhere else.

use std::process::ExitCode;

use clap::Parser;
use floe::cli::{Cli, Command, IngestCommand, LogFormat, MaintenanceCommand};
use floe::commands;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { floe::error::exit::USAGE } else { floe::error::exit::SUCCESS });
        }
    };
    init_logging(cli.global.log_format, cli.global.verbose, cli.global.quiet);
    install_panic_hook();

    let code = match &cli.command {
        Command::Compile(args) => commands::compile::run(args, cli.global.quiet),
        Command::Validate(args) => commands::validate::run(args, cli.global.quiet),
        Command::Schema(args) => commands::schema::run(args.which),
        Command::Ingest(IngestCommand::List(args)) => commands::ingest::list(args),
        Command::Ingest(IngestCommand::State(args)) => commands::ingest::state(args),
        Command::Ingest(IngestCommand::Run(args)) => commands::ingest::run(args, &cli.global),
        Command::Maintenance(MaintenanceCommand::RemoveOrphans(args)) => commands::maintenance::remove_orphans(args),
    };
    ExitCode::from(code)
}

/// jemalloc rather than the system allocator. Large buffers (file chunks, Arrow columns,
/// Parquet row groups) are allocated on decoding threads and freed on writer threads. glibc
/// either serves them from per-thread arenas that fragment (peak memory grows with the input:
/// 1M JSON lines 181 MB, 10M 242 MB) or, with a fixed mmap threshold, maps and faults in
/// every one afresh (flat memory, but a fifth of a CSV load's CPU in page faults). jemalloc
/// reuses them and stays flat: CSV loads 25% faster, 10M lines within 1.1x of 1M. uv and ruff
/// make the same choice.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: freed pages go back to the kernel after a
/// second (the default 10 s holds on to the buffers of chunks long decoded), and without
/// the "muzzy" stage in between. `_RJEM_MALLOC_CONF` in the environment overrides them.
#[cfg(all(unix, not(target_env = "musl")))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn init_logging(format: LogFormat, verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,floe=info",
        (false, 1) => "info,floe=debug",
        _ => "debug,floe=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(floe::secrets::LogWriter::default);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.with_target(false).without_time().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
}

/// A panic is a bug: say so, say where to report it, and exit 1.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("error: floe hit an internal error (a bug). Please report it with the message above at https://github.com/floe-dev/floe/issues");
        std::process::exit(i32::from(floe::error::exit::INTERNAL));
    }));
}
