//! floe: move data from where it lives into Apache Iceberg tables.
//!
//! The modules follow the data: `config` reads and validates the inputs; `artifact` compiles
//! them; `run` plans and runs entries (retry, report, exit code); `sources` turn a source into
//! Arrow batches; `destination` writes Parquet and commits Iceberg snapshots; `error` is the
//! taxonomy every failure is reported in.

pub mod airbyte;
pub mod artifact;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dagster;
pub mod destination;
pub mod engine;
pub mod error;
pub mod observe;
pub mod run;
pub mod secrets;
pub mod sources;
