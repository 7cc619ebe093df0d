//! Running entries: selection, dispatch to a plugin, retry, the report and the exit code.

use crate::cli::{GlobalArgs, RunArgs, StateArgs};
use crate::commands::Loaded;

pub fn run_command(_loaded: Loaded, _args: &RunArgs, _global: &GlobalArgs) -> u8 {
    eprintln!("error: `floe ingest run` is not built yet");
    crate::error::exit::INTERNAL
}

pub fn state_command(_loaded: Loaded, _args: &StateArgs) -> u8 {
    eprintln!("error: `floe ingest state` is not built yet");
    crate::error::exit::INTERNAL
}
