//! The validation report: every error and warning found in routing data,
//! each with its file, line, a plain sentence and, where there is one, the
//! fix (docs/routing.md: report every problem, not just the first).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The data cannot be served.
    Error,
    /// The data is served, but something is probably not what was meant.
    Warning,
}

/// One problem, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: Arc<Path>,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: u32,
    pub message: String,
    /// What to change to fix it.
    pub fix: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &Arc<Path>, line: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: Arc::clone(file),
            line,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(file: &Arc<Path>, line: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, message)
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        write!(f, ": {severity}: {}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every diagnostic from one load, in file and line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn new(mut diagnostics: Vec<Diagnostic>) -> Self {
        // A file's diagnostics share one `Arc`: comparing the pointers first
        // spares most comparisons a walk over two paths' components (a
        // tenth of a one-file reload's time with 5,000 warnings).
        diagnostics.sort_by(|a, b| {
            let files = if Arc::ptr_eq(&a.file, &b.file) {
                std::cmp::Ordering::Equal
            } else {
                a.file.cmp(&b.file)
            };
            files.then_with(|| (a.line, a.severity).cmp(&(b.line, b.severity)))
        });
        Report { diagnostics }
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Routing data that cannot be served; the report says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing data rejected: {} error(s)\n{report}", report.errors().count())]
pub struct Rejected {
    pub report: Report,
}
