//! Incremental state stored with the data it describes.
//!
//! A load's state goes into the same commit as its rows, twice: as the snapshot summary
//! property `floe.state.<key>` (history: which state each snapshot reached) and as the table
//! property `floe.state.<key>` (the latest value, what [`read`] returns). A commit without
//! state leaves the table property as it was.

use std::collections::HashMap;

use iceberg::spec::TableMetadata;

/// Snapshot summary key holding the load id.
pub(crate) const LOAD_ID_KEY: &str = "floe.load-id";

/// The property name of a state key.
pub(crate) fn property_name(state_key: &str) -> String {
    format!("floe.state.{state_key}")
}

/// The state last committed for `state_key`.
pub(crate) fn read(metadata: &TableMetadata, state_key: &str) -> Option<String> {
    metadata.properties().get(&property_name(state_key)).cloned()
}

/// The snapshot summary properties of a load.
pub(crate) fn snapshot_properties(load_id: &str, state_key: &str, state: Option<&str>) -> HashMap<String, String> {
    let mut props = HashMap::from([(LOAD_ID_KEY.to_string(), load_id.to_string())]);
    if let Some(state) = state {
        props.insert(property_name(state_key), state.to_string());
    }
    props
}
