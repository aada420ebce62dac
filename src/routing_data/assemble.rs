//! Joining compiled files into one routing table, with the checks that span
//! accounts and files: an account id used twice, a number owned by two
//! accounts (docs/routing.md).

use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::compile::CompiledFile;
use super::report::{Diagnostic, Report, Severity};
use crate::routing::{E164, Region, RoutingTable};

/// The table, if the data has no errors, and every diagnostic.
pub fn assemble(
    files: &[(Arc<Path>, Arc<CompiledFile>)],
    default_region: &Region,
) -> (Option<RoutingTable>, Report) {
    let mut diagnostics: Vec<Diagnostic> = files
        .iter()
        .flat_map(|(_, f)| f.diagnostics.iter().cloned())
        .collect();
    let mut account_ids: FxHashMap<&str, (&Arc<Path>, u32)> = FxHashMap::default();
    let mut accounts = Vec::new();
    for (path, file) in files {
        for compiled in &file.accounts {
            let account = &compiled.account;
            if let Some((first_file, first_line)) =
                account_ids.insert(&account.id, (path, compiled.line))
            {
                let message = format!(
                    "account id {} is used twice: {} line {first_line} and here",
                    account.id,
                    first_file.display()
                );
                diagnostics.push(
                    Diagnostic::error(path, compiled.line, message)
                        .fix("give each account its own id, or merge the two into one"),
                );
                continue;
            }
            accounts.push(Arc::clone(account));
        }
    }
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        diagnostics.extend(number_clashes(files));
        return (None, Report::new(diagnostics));
    }
    // The table's own index finds whether two accounts claim a number; only
    // then is every claim looked up with its file and line, for the report.
    // (A reload rebuilds the index of every number: doing it once, not
    // twice, is most of a one-file reload's time at 200,000 numbers.)
    match RoutingTable::new(accounts, default_region.clone()) {
        Ok(table) => (Some(table), Report::new(diagnostics)),
        Err(clash) => {
            let before = diagnostics.len();
            diagnostics.extend(number_clashes(files));
            if diagnostics.len() == before {
                // Unreachable (the table saw a clash), but reported, not assumed.
                let file = files
                    .first()
                    .map(|(p, _)| Arc::clone(p))
                    .unwrap_or_else(|| Arc::from(Path::new("-")));
                diagnostics.push(Diagnostic::error(&file, 0, clash.to_string()));
            }
            (None, Report::new(diagnostics))
        }
    }
}

/// Every number claimed by a second account, at the second claim's line.
fn number_clashes(files: &[(Arc<Path>, Arc<CompiledFile>)]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut seen_ids: FxHashMap<&str, ()> = FxHashMap::default();
    let mut owners: FxHashMap<E164, (&str, &Arc<Path>, u32)> = FxHashMap::default();
    for (path, file) in files {
        for compiled in &file.accounts {
            let account = &compiled.account;
            // An account whose id is taken is left out of the table.
            if seen_ids.insert(&account.id, ()).is_some() {
                continue;
            }
            for (number, &line) in account.numbers.iter().zip(&compiled.number_lines) {
                let here = (account.id.as_ref(), path, line);
                if let Some((owner, first_file, first_line)) = owners.insert(number.number, here) {
                    let message = format!(
                        "number {} belongs to both account {owner} ({} line {first_line}) and account {}",
                        number.number,
                        first_file.display(),
                        account.id
                    );
                    diagnostics.push(
                        Diagnostic::error(path, line, message)
                            .fix("a number belongs to one account: remove it from one of them"),
                    );
                }
            }
        }
    }
    diagnostics
}
