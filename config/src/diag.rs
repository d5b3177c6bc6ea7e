//! Diagnostics: what is wrong, where (one or more spans, possibly in several files),
//! and what to do. Every stage collects them all instead of stopping at the first, and
//! they are rendered rustc-style with `miette`.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use crate::kdl::Span;
use crate::source::{FileId, SourceMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// The first label is the primary location.
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }
    pub fn label(mut self, file: FileId, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            file,
            span,
            text: text.into(),
        });
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col` of the primary label, if there is one.
    pub fn location(&self, sources: &SourceMap) -> Option<String> {
        self.labels
            .first()
            .map(|l| sources.location(l.file, l.span.start))
    }

    /// One line: `file:line:col: error: message`.
    pub fn short(&self, sources: &SourceMap) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.location(sources) {
            Some(loc) => format!("{loc}: {sev}: {}", self.message),
            None => format!("{sev}: {}", self.message),
        }
    }

    /// The full report with source excerpts. `color` selects ANSI styling.
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let mut out = String::new();
        let report = Report::new(self, sources);
        // Rendering into a String cannot fail except through a bug in the formatter.
        if handler.render_report(&mut out, &report).is_err() {
            out = self.short(sources);
        }
        out
    }
}

/// Renders a list of diagnostics followed by a summary line, errors first by file order.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(sources, color));
        out.push('\n');
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("1 {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    match (errors, warnings) {
        (0, 0) => {}
        (e, 0) => out.push_str(&format!("{}\n", plural(e, "error"))),
        (0, w) => out.push_str(&format!("{}\n", plural(w, "warning"))),
        (e, w) => out.push_str(&format!(
            "{}, {}\n",
            plural(e, "error"),
            plural(w, "warning")
        )),
    }
    out
}

/// Sort order for output: by file, then position, then message; stable for snapshots.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let ka = a.labels.first().map(|l| (l.file, l.span.start));
        let kb = b.labels.first().map(|l| (l.file, l.span.start));
        ka.cmp(&kb).then_with(|| a.message.cmp(&b.message))
    });
}

/// Sorts and drops exact repeats (an error inside a module body is found once per
/// instance of the module, but is one mistake).
pub fn sort_dedup(diags: &mut Vec<Diagnostic>) {
    sort(diags);
    diags.dedup();
}

/// A view of one diagnostic restricted to the labels of one file, as miette wants a
/// single source per report; labels in other files become related reports.
struct Report<'a> {
    diag: &'a Diagnostic,
    sources: &'a SourceMap,
    file: Option<FileId>,
    related: Vec<Report<'a>>,
    is_related: bool,
}

impl<'a> Report<'a> {
    fn new(diag: &'a Diagnostic, sources: &'a SourceMap) -> Self {
        let file = diag.labels.first().map(|l| l.file);
        let mut others: Vec<FileId> = Vec::new();
        for l in &diag.labels {
            if Some(l.file) != file && !others.contains(&l.file) {
                others.push(l.file);
            }
        }
        let related = others
            .into_iter()
            .map(|f| Report {
                diag,
                sources,
                file: Some(f),
                related: Vec::new(),
                is_related: true,
            })
            .collect();
        Report {
            diag,
            sources,
            file,
            related,
            is_related: false,
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_related {
            f.write_str("and here")
        } else {
            f.write_str(&self.diag.message)
        }
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        if self.is_related {
            return Some(miette::Severity::Advice);
        }
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        if self.is_related {
            return None;
        }
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.file.map(|_| self as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.file?;
        let primary_file = !self.is_related;
        let it = self
            .diag
            .labels
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.file == file)
            .map(move |(i, l)| {
                let span = SourceSpan::new((l.span.start as usize).into(), l.span.len());
                let text = (!l.text.is_empty()).then(|| l.text.clone());
                if i == 0 && primary_file {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            });
        Some(Box::new(it))
    }
    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

impl SourceCode for Report<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let file = self.file.ok_or(MietteError::OutOfBounds)?;
        let f = self.sources.get(file);
        let c = f.text.as_str().read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            f.name.clone(),
            c.data(),
            *c.span(),
            c.line(),
            c.column(),
            c.line_count(),
        )))
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a
/// plausible typo (at most a third of the word's length, and at least one edit allowed).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, c)| d <= limit && c != word)
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let kinds = ["container", "network", "volume", "host"];
        assert_eq!(did_you_mean("contianer", kinds), Some("container"));
        assert_eq!(did_you_mean("netwrk", kinds), Some("network"));
        assert_eq!(did_you_mean("zzz", kinds), None);
        assert_eq!(did_you_mean("hots", kinds), Some("host"));
    }
}
