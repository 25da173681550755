//! A small YAML document tree with source positions.
//!
//! Specs are validated by walking this tree, so every message can name the key path and the
//! line/column it refers to. The tree is built from `saphyr-parser` events (pure Rust, no
//! unsafe). Beyond YAML itself it enforces what a spec needs: one document, string keys, no
//! duplicate keys, and a bound on alias expansion (a "billion laughs" document is refused
//! instead of exhausting memory).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::{Mark, SpecError};

/// Upper bound on the number of nodes a document may expand to (aliases included).
pub const MAX_NODES: usize = 100_000;

/// Upper bound on the nesting depth of a document.
pub const MAX_DEPTH: usize = 64;

/// One YAML node and where it starts in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's content.
    pub value: Value,
    /// Where the node starts in the text.
    pub mark: Mark,
}

/// The value of a node, with scalars resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A plain scalar that reads as a number; `text` keeps the source for exact integers.
    Number {
        /// The number the scalar reads as.
        value: f64,
        /// The scalar as written.
        text: String,
    },
    /// Any other scalar, quoted or not.
    String(String),
    /// A sequence, in document order.
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it stands (errors about a key point at the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key starts in the text.
    pub mark: Mark,
}

impl Key {
    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        self.name == other
    }
}

impl PartialEq<&str> for Key {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

impl Value {
    /// A short name of the value's kind for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number { .. } => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

fn mark_of(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

/// Parses `text` into a tree. An empty document gives `Value::Null`.
pub fn parse(text: &str) -> Result<Node, SpecError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
        last: Mark { line: 1, col: 1 },
    };
    builder.document()
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    last: Mark,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Mark), SpecError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => {
                let mark = mark_of(&span);
                self.last = mark;
                Ok((event, mark))
            }
            Some(Err(e)) => Err(SpecError::new(
                "",
                Some(Mark {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                }),
                format!("invalid YAML: {}", e.info()),
            )),
            None => Err(SpecError::new(
                "",
                Some(self.last),
                "invalid YAML: unexpected end",
            )),
        }
    }

    fn document(&mut self) -> Result<Node, SpecError> {
        let empty = Node {
            value: Value::Null,
            mark: Mark { line: 1, col: 1 },
        };
        let mut root = None;
        loop {
            let (event, mark) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(root.unwrap_or(empty)),
                Event::DocumentStart(_) => {
                    if root.is_some() {
                        return Err(SpecError::new(
                            "",
                            Some(mark),
                            "a spec is one YAML document; found a second one",
                        ));
                    }
                    let (event, mark) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        root = Some(Node {
                            value: Value::Null,
                            mark,
                        });
                    } else {
                        root = Some(self.node(event, mark, "", 0)?);
                    }
                }
                _ => {
                    return Err(SpecError::new("", Some(mark), "invalid YAML structure"));
                }
            }
        }
    }

    fn count(&mut self, mark: Mark, path: &str) -> Result<(), SpecError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SpecError::new(
                path,
                Some(mark),
                format!("the document expands to more than {MAX_NODES} nodes (alias expansion?)"),
            ));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn node(
        &mut self,
        event: Event<'a>,
        mark: Mark,
        path: &str,
        depth: usize,
    ) -> Result<Node, SpecError> {
        if depth > MAX_DEPTH {
            return Err(SpecError::new(
                path,
                Some(mark),
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.count(mark, path)?;
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(tag) = tag {
                    return Err(SpecError::new(
                        path,
                        Some(mark),
                        format!(
                            "YAML tags are not supported here (found {}{})",
                            tag.handle, tag.suffix
                        ),
                    ));
                }
                let node = Node {
                    value: scalar(text, style),
                    mark,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, tag) => {
                reject_tag(tag, path, mark)?;
                let mut items = Vec::new();
                loop {
                    let (event, item_mark) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = format!("{path}[{}]", items.len());
                    items.push(self.node(event, item_mark, &item_path, depth + 1)?);
                }
                let node = Node {
                    value: Value::Seq(items),
                    mark,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, tag) => {
                reject_tag(tag, path, mark)?;
                let mut entries: Vec<(Key, Node)> = Vec::new();
                loop {
                    let (event, key_mark) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let key = match self.node(event, key_mark, path, depth + 1)?.value {
                        Value::String(s) => s,
                        Value::Number { text, .. } => text,
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(SpecError::new(
                                path,
                                Some(key_mark),
                                format!("mapping keys must be plain names, found {}", other.kind()),
                            ));
                        }
                    };
                    let child_path = join(path, &key);
                    if entries.iter().any(|(k, _)| k.name == key) {
                        return Err(SpecError::new(&child_path, Some(key_mark), "duplicate key"));
                    }
                    let (event, value_mark) = self.next()?;
                    let value = self.node(event, value_mark, &child_path, depth + 1)?;
                    entries.push((
                        Key {
                            name: key,
                            mark: key_mark,
                        },
                        value,
                    ));
                }
                let node = Node {
                    value: Value::Map(entries),
                    mark,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(anchor) => {
                let Some(target) = self.anchors.get(&anchor).cloned() else {
                    return Err(SpecError::new(path, Some(mark), "unknown alias"));
                };
                let size = target.size();
                self.nodes += size.saturating_sub(1);
                self.count(mark, path)?;
                Ok(Node {
                    value: target.value,
                    mark,
                })
            }
            _ => Err(SpecError::new(path, Some(mark), "invalid YAML structure")),
        }
    }
}

impl Node {
    /// Number of nodes in this subtree (itself included).
    fn size(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::size).sum(),
            Value::Map(entries) => entries.iter().map(|(_, n)| n.size()).sum(),
            _ => 0,
        }
    }
}

fn reject_tag(
    tag: Option<Cow<'_, saphyr_parser::Tag>>,
    path: &str,
    mark: Mark,
) -> Result<(), SpecError> {
    match tag {
        None => Ok(()),
        Some(tag) => Err(SpecError::new(
            path,
            Some(mark),
            format!(
                "YAML tags are not supported here (found {}{})",
                tag.handle, tag.suffix
            ),
        )),
    }
}

/// Joins a key path: `""` + `model` → `model`, `model` + `eta` → `model.eta`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Resolves a scalar by the YAML 1.2 core schema. Quoted scalars are always strings.
/// `nan`/`inf` spellings read as numbers so that validation can reject them by name.
fn scalar(text: Cow<'_, str>, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(text.into_owned());
    }
    let t = text.as_ref();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(value) = number(t) {
        return Value::Number {
            value,
            text: t.to_string(),
        };
    }
    Value::String(t.to_string())
}

fn number(t: &str) -> Option<f64> {
    let lower = t.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    match body {
        ".inf" | "inf" | "infinity" => return Some(sign * f64::INFINITY),
        ".nan" | "nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| sign * v as f64);
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok().map(|v| sign * v as f64);
    }
    let first = body.chars().next()?;
    if !(first.is_ascii_digit() || first == '.') {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_resolve_by_core_schema() {
        let n = parse("a: 1\nb: -2.5e-3\nc: '3'\nd: ~\ne: true\nf: .nan\ng: x\n").unwrap();
        let Value::Map(entries) = n.value else {
            panic!("not a map")
        };
        let kinds: Vec<_> = entries.iter().map(|(_, n)| n.value.kind()).collect();
        assert_eq!(
            kinds,
            [
                "a number",
                "a number",
                "a string",
                "null",
                "a boolean",
                "a number",
                "a string"
            ]
        );
        assert_eq!(entries[0].1.mark, Mark { line: 1, col: 4 });
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_position() {
        let e = parse("model:\n  eta: 1\n  eta: 2\n").unwrap_err();
        assert_eq!(e.path, "model.eta");
        assert_eq!(e.mark, Some(Mark { line: 3, col: 3 }));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("expands to more than"), "{e}");
    }

    #[test]
    fn aliases_within_budget_expand() {
        let n = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let Value::Map(entries) = n.value else {
            panic!()
        };
        assert_eq!(entries[0].1.value, entries[1].1.value);
    }
}
