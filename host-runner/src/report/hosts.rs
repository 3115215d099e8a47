//! The provenance line of a merged run whose shards ran on different hosts
//! (`pvbench merge`): which host ran which comparison group. Self-contained:
//! it reads `run.json`'s merge record only, not the report's figures.

use crate::results::{RunManifest, Sharding};

/// Says which host ran which group, and that no comparison crosses hosts;
/// `None` unless the run was merged from shards of more than one host.
pub fn line(manifest: &RunManifest) -> Option<String> {
    let Some(Sharding::Merged(record)) = &manifest.sharding else {
        return None;
    };
    let hosts = record.hosts();
    if hosts.len() < 2 {
        return None;
    }
    let per_host: Vec<String> = hosts
        .iter()
        .map(|host| {
            let groups: Vec<String> = record
                .groups
                .iter()
                .filter(|g| g.hostname == *host)
                .map(|g| g.group.to_string())
                .collect();
            format!("{host}: {}", groups.join(", "))
        })
        .collect();
    Some(format!(
        "groups ran on {} hosts ({}); every comparison is within one group, so never across hosts",
        hosts.len(),
        per_host.join("; ")
    ))
}

/// [`line`] as a section of the text report.
pub fn text(line: &str) -> String {
    format!("\nHosts\n  {line}\n")
}

/// [`line`] as a section of the Markdown report.
pub fn markdown(line: &str) -> String {
    format!("\n## Hosts\n\n{}\n", super::format::md_inline(line))
}
