//! Spec errors: which key, where in the text, and why.

use std::fmt;

/// A position in the spec text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub col: usize,
}

/// A spec that cannot be run: which key, where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecError {
    /// Dotted key path, e.g. `model.eta` or `sweep.zip[0]`; empty for the document itself.
    pub path: String,
    /// Where in the text the problem is; `None` when no place in the text is to blame.
    pub mark: Option<Mark>,
    /// Why the value is refused, with the accepted values where that helps.
    pub message: String,
}

impl SpecError {
    /// An error at key `path` (dotted) and `mark`, saying `message`.
    pub fn new(path: &str, mark: Option<Mark>, message: impl Into<String>) -> SpecError {
        SpecError {
            path: path.to_string(),
            mark,
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "spec"
        } else {
            &self.path
        };
        match self.mark {
            Some(m) => write!(
                f,
                "{path} (line {}, column {}): {}",
                m.line, m.col, self.message
            ),
            None => write!(f, "{path}: {}", self.message),
        }
    }
}
