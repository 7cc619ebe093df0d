//! `--select NAME` (repeatable, `*` and `?` globs): which entries run.

use globset::Glob;

use crate::artifact::CompiledEntry;
use crate::config::diagnostics::did_you_mean;

/// The selected entries in spec order, or a message naming a selector that matched nothing.
pub fn select<'a>(entries: &'a [CompiledEntry], selectors: &[String]) -> Result<Vec<&'a CompiledEntry>, String> {
    if selectors.is_empty() {
        return Ok(entries.iter().collect());
    }
    let mut matchers = Vec::new();
    for s in selectors {
        let m = Glob::new(s).map_err(|e| format!("--select {s}: not a valid pattern: {e}"))?.compile_matcher();
        if !entries.iter().any(|e| m.is_match(&e.name)) {
            let hint = did_you_mean(s, entries.iter().map(|e| e.name.as_str())).map(|h| format!("\n   = hint: {h}")).unwrap_or_default();
            return Err(format!("--select {s}: no entry matches (entries: {}){hint}", entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")));
        }
        matchers.push(m);
    }
    Ok(entries.iter().filter(|e| matchers.iter().any(|m| m.is_match(&e.name))).collect())
}
