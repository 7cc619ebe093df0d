//! The run report (CONTRACT.md): one JSON document on `--output json`, a table otherwise.

use serde::Serialize;

use crate::error::IngestionError;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub floe_version: String,
    pub success: bool,
    pub exit_code: u8,
    pub duration_seconds: f64,
    /// True when the run was stopped by SIGINT or SIGTERM.
    pub interrupted: bool,
    pub results: Vec<EntryResult>,
}

/// One entry's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct EntryResult {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub destination: String,
    pub success: bool,
    pub rows_loaded: u64,
    pub tables_created: Vec<String>,
    pub duration_seconds: f64,
    pub attempts: u32,
    pub error: Option<IngestionError>,
    // Beyond the contract's fields:
    pub write_disposition: String,
    pub rows_rejected: u64,
    pub snapshot_id: Option<i64>,
    /// Airbyte entries: the job (id, link, status, rows, bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<serde_json::Value>,
    /// Columns of the loaded data (name, Arrow type), for lineage; not in the report.
    #[serde(skip)]
    pub schema: Vec<(String, String)>,
}

/// Round to milliseconds so reports read well.
pub fn secs(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl RunReport {
    /// The summary table printed at the end in text mode.
    pub fn table(&self) -> String {
        let headers = ["ENTRY", "STATUS", "ROWS", "REJECTED", "TIME", "ATTEMPTS", "DESTINATION"];
        let rows: Vec<[String; 7]> = self
            .results
            .iter()
            .map(|r| {
                let status = match &r.error {
                    None => "ok".to_string(),
                    Some(e) => format!("{} {}", e.category, e.code),
                };
                [r.name.clone(), status, r.rows_loaded.to_string(), r.rows_rejected.to_string(), format!("{:.1}s", r.duration_seconds), r.attempts.to_string(), r.destination.clone()]
            })
            .collect();
        let mut out = crate::commands::ingest::table(&headers, &rows);
        for r in &self.results {
            if let Some(e) = &r.error {
                out.push_str(&format!("\n{}: {} {}: {}\n", r.name, e.category, e.code, e.message));
                if let Some(samples) = e.details.get("samples").and_then(|s| s.as_array()) {
                    for s in samples.iter().filter_map(|s| s.as_str()) {
                        out.push_str(&format!("  - {s}\n"));
                    }
                }
            }
        }
        let loaded: u64 = self.results.iter().map(|r| r.rows_loaded).sum();
        let failed = self.results.iter().filter(|r| !r.success).count();
        out.push_str(&format!(
            "\n{} entr{}, {} failed, {loaded} rows loaded in {:.1}s (exit {})\n",
            self.results.len(),
            if self.results.len() == 1 { "y" } else { "ies" },
            failed,
            self.duration_seconds,
            self.exit_code
        ));
        out
    }
}
