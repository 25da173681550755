//! Matrices, vectors and region names read from files.
//!
//! The format is chosen by the extension (case-insensitive):
//! - `.npy`: NumPy format versions 1.0, 2.0 and 3.0, C or Fortran order, dtypes float64,
//!   float32 (either byte order), int8..int64, uint8..uint64 (either byte order) and bool;
//!   integers become the nearest `f64` (exact up to 2^53 in magnitude), bool 0 or 1;
//! - `.csv`: comma-separated numbers (spaces around the commas allowed), one row per line; a
//!   first row without a single number is a header and is skipped;
//! - anything else (`.txt`, `.dat`, no extension): whitespace-separated numbers, one row per
//!   line, as in TVB's `weights.txt` and `tract_lengths.txt`.
//!
//! In text files blank lines and lines starting with `#` are skipped, and numbers are read
//! by Rust's `f64` parser, which accepts `1e-3`, `nan` and `inf`: the readers return such
//! values as they are (a [`Connectome`](super::Connectome) refuses them). Every data row
//! must have the same number of columns. A file without numbers, or larger than 1 GiB, is
//! refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The largest file the readers accept, in bytes (1 GiB).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// A dense real matrix read from a file, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// The `rows * cols` entries, row after row.
    pub data: Vec<f64>,
}

impl Matrix {
    /// The entry in row `i`, column `j` (0-based); panics outside the matrix.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        assert!(
            i < self.rows && j < self.cols,
            "({i}, {j}) is outside a {} x {} matrix",
            self.rows,
            self.cols
        );
        self.data[i * self.cols + j]
    }
}

/// What is wrong with a matrix, vector or names file; the message starts with the path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct FileError {
    /// The file as given.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub problem: FileProblem,
}

/// What is wrong with a file's contents (or its reading). Places are 1-based; a text
/// column counts the numbers of the row (not characters).
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The file cannot be opened or read.
    #[error("cannot read the file ({0})")]
    Io(#[from] std::io::Error),
    /// The file is larger than 1 GiB.
    #[error("the file has {bytes} bytes, more than the 1 GiB accepted")]
    TooLarge {
        /// The file's size.
        bytes: u64,
    },
    /// A text file is not UTF-8.
    #[error(
        "the file is not text (invalid UTF-8 at byte {offset}); NumPy arrays are read from files named .npy"
    )]
    NotText {
        /// Byte offset (0-based) of the first invalid byte.
        offset: usize,
    },
    /// A text token is not a number.
    #[error("line {line}, column {column}: {} is not a number", quoted(token))]
    BadNumber {
        /// Line in the file.
        line: usize,
        /// Position of the token in its row.
        column: usize,
        /// The token as written.
        token: String,
    },
    /// A text row has a different number of columns than the first row.
    #[error(
        "line {line} has {found} columns but the first row (line {first_line}) has {expected}; every row must have the same number"
    )]
    Ragged {
        /// The line of the offending row.
        line: usize,
        /// Columns of the first row.
        expected: usize,
        /// Columns of this row.
        found: usize,
        /// The line of the first row.
        first_line: usize,
    },
    /// The file holds no numbers (empty, only comments, or a NumPy array of size 0).
    #[error("the file contains no numbers")]
    NoNumbers,
    /// A names file holds no names.
    #[error("the file contains no region names")]
    NoNames,
    /// A region name appears twice in a names file.
    #[error("line {line} repeats the region name `{name}` of line {first_line}")]
    DuplicateName {
        /// The name.
        name: String,
        /// Where it first appears.
        first_line: usize,
        /// Where it appears again.
        line: usize,
    },
    /// The array is not 2-D.
    #[error("the array has shape {}; a matrix must be 2-D", shape_text(shape))]
    NotAMatrix {
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// The array is neither 1-D nor a single row or column.
    #[error(
        "the array has shape {}; a vector must be 1-D, one row or one column",
        shape_text(shape)
    )]
    NotAVector {
        /// The array's shape (rows and columns for a text file).
        shape: Vec<usize>,
    },
    /// A `.npy` file does not start with NumPy's magic string.
    #[error("not a NumPy .npy file (it does not start with \\x93NUMPY)")]
    NotNpy,
    /// A `.npy` format version other than 1.0, 2.0 and 3.0.
    #[error("NumPy .npy format version {major}.{minor}; versions 1.0, 2.0 and 3.0 are read")]
    NpyVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The `.npy` header is cut short or is not the expected Python dictionary.
    #[error("the NumPy header cannot be read ({why}): {header}")]
    NpyHeader {
        /// The header text (or what there is of it).
        header: String,
        /// What is wrong.
        why: String,
    },
    /// A `.npy` dtype that is not read.
    #[error(
        "the NumPy dtype {descr} is {what}; accepted are float64, float32, int8..int64, uint8..uint64 and bool"
    )]
    NpyDtype {
        /// The dtype as written in the header.
        descr: String,
        /// What kind of dtype it is.
        what: &'static str,
    },
    /// The `.npy` data is shorter than its shape and dtype need.
    #[error(
        "the file is truncated: shape {} of {descr} needs {needed} bytes of data, the file has {found}",
        shape_text(shape)
    )]
    NpyTruncated {
        /// The array's shape.
        shape: Vec<usize>,
        /// The dtype.
        descr: String,
        /// Bytes of data needed.
        needed: usize,
        /// Bytes of data present.
        found: usize,
    },
    /// Bytes follow the `.npy` data.
    #[error(
        "{extra} bytes of trailing garbage follow the {needed} bytes of data of shape {} of {descr}",
        shape_text(shape)
    )]
    NpyTrailing {
        /// The array's shape.
        shape: Vec<usize>,
        /// The dtype.
        descr: String,
        /// Bytes of data needed.
        needed: usize,
        /// Bytes after them.
        extra: usize,
    },
}

fn quoted(token: &str) -> String {
    if token.is_empty() {
        "an empty field".to_string()
    } else {
        format!("`{token}`")
    }
}

/// A shape as Python writes it: `()`, `(76,)`, `(76, 76)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// A data file's bytes, read once: the spec's loader hashes them for the runs' metadata
/// and parses the same bytes, so what is recorded is what was computed with.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// The file as given (its extension decides the format).
    pub path: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl DataFile {
    /// Reads `path` (at most 1 GiB).
    pub fn read(path: &Path) -> Result<DataFile, FileError> {
        let at = |problem| FileError {
            path: path.to_path_buf(),
            problem,
        };
        let size = std::fs::metadata(path).map_err(|e| at(e.into()))?.len();
        if size > MAX_FILE_BYTES {
            return Err(at(FileProblem::TooLarge { bytes: size }));
        }
        Ok(DataFile {
            path: path.to_path_buf(),
            bytes: std::fs::read(path).map_err(|e| at(e.into()))?,
        })
    }

    fn at(&self, problem: FileProblem) -> FileError {
        FileError {
            path: self.path.clone(),
            problem,
        }
    }

    /// The contents as a 2-D matrix (`.npy`, `.csv` or whitespace-separated text).
    pub fn matrix(&self) -> Result<Matrix, FileError> {
        let array = self.array().map_err(|p| self.at(p))?;
        match array.shape[..] {
            [rows, cols] => Ok(Matrix {
                rows,
                cols,
                data: array.data,
            }),
            _ => Err(self.at(FileProblem::NotAMatrix { shape: array.shape })),
        }
    }

    /// The contents as a vector: one number per line, all numbers on one line, or a `.npy`
    /// array that is 1-D, N x 1 or 1 x N.
    pub fn vector(&self) -> Result<Vec<f64>, FileError> {
        let array = self.array().map_err(|p| self.at(p))?;
        match array.shape[..] {
            [_] | [1, _] | [_, 1] => Ok(array.data),
            _ => Err(self.at(FileProblem::NotAVector { shape: array.shape })),
        }
    }

    /// The contents as region names: one region per line, the name being the line's first
    /// token (separated by whitespace or commas; TVB's `centres.txt` is `name x y z` per
    /// line). Blank lines and lines starting with `#` are skipped; names must be unique.
    pub fn names(&self) -> Result<Vec<String>, FileError> {
        let text = self.text().map_err(|p| self.at(p))?;
        let mut names = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (line, content) in data_lines(text) {
            let Some(name) = content
                .split(|c: char| c.is_whitespace() || c == ',')
                .find(|token| !token.is_empty())
            else {
                continue; // only commas
            };
            if let Some(&first_line) = seen.get(name) {
                return Err(self.at(FileProblem::DuplicateName {
                    name: name.to_string(),
                    first_line,
                    line,
                }));
            }
            seen.insert(name, line);
            names.push(name.to_string());
        }
        if names.is_empty() {
            return Err(self.at(FileProblem::NoNames));
        }
        Ok(names)
    }

    fn array(&self) -> Result<Array, FileProblem> {
        let extension = self
            .path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("npy") => parse_npy(&self.bytes),
            Some("csv") => parse_text(self.text()?, Separator::Comma),
            _ => parse_text(self.text()?, Separator::Whitespace),
        }
    }

    /// The contents as UTF-8 text, without a leading byte-order mark (spreadsheets write
    /// one).
    fn text(&self) -> Result<&str, FileProblem> {
        let text = std::str::from_utf8(&self.bytes).map_err(|e| FileProblem::NotText {
            offset: e.valid_up_to(),
        })?;
        Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
    }
}

/// Reads a 2-D matrix: [`DataFile::matrix`] of the file at `path`.
pub fn read_matrix(path: &Path) -> Result<Matrix, FileError> {
    DataFile::read(path)?.matrix()
}

/// Reads a vector: [`DataFile::vector`] of the file at `path`.
pub fn read_vector(path: &Path) -> Result<Vec<f64>, FileError> {
    DataFile::read(path)?.vector()
}

/// Reads region names: [`DataFile::names`] of the file at `path`.
pub fn read_names(path: &Path) -> Result<Vec<String>, FileError> {
    DataFile::read(path)?.names()
}

/// An array of any rank, in C order (row-major).
struct Array {
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// The lines that hold data, with their 1-based line numbers and surrounding whitespace
/// trimmed: blank lines and `#` comments are skipped.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

#[derive(Clone, Copy, PartialEq)]
enum Separator {
    Comma,
    Whitespace,
}

fn parse_text(text: &str, separator: Separator) -> Result<Array, FileProblem> {
    let mut data = Vec::new();
    let mut rows = 0;
    let mut may_be_header = separator == Separator::Comma;
    // Columns and line of the first data row.
    let mut first: Option<(usize, usize)> = None;
    for (line, content) in data_lines(text) {
        let tokens: Vec<&str> = match separator {
            Separator::Comma => content.split(',').map(str::trim).collect(),
            Separator::Whitespace => content.split_whitespace().collect(),
        };
        let numbers: Vec<Result<f64, _>> = tokens.iter().map(|t| t.parse::<f64>()).collect();
        if std::mem::take(&mut may_be_header) && numbers.iter().all(Result::is_err) {
            continue; // the header
        }
        for (column, (token, number)) in tokens.iter().zip(numbers).enumerate() {
            data.push(number.map_err(|_| FileProblem::BadNumber {
                line,
                column: column + 1,
                token: token.to_string(),
            })?);
        }
        let (expected, first_line) = *first.get_or_insert((tokens.len(), line));
        if tokens.len() != expected {
            return Err(FileProblem::Ragged {
                line,
                expected,
                found: tokens.len(),
                first_line,
            });
        }
        rows += 1;
    }
    match first {
        Some((cols, _)) => Ok(Array {
            shape: vec![rows, cols],
            data,
        }),
        None => Err(FileProblem::NoNumbers),
    }
}

/// The element type of a `.npy` file.
#[derive(Clone, Copy)]
struct Dtype {
    kind: Kind,
    bytes: usize,
    big_endian: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

impl Dtype {
    /// The dtype of a type code such as `<f8` or `|u1`, or what kind of dtype it is when
    /// it is not read.
    fn parse(code: &str) -> Result<Dtype, &'static str> {
        let (order, rest) = match code.as_bytes().first() {
            Some(b'<' | b'>' | b'=' | b'|') => code.split_at(1),
            _ => ("=", code),
        };
        let mut chars = rest.chars();
        let kind_char = chars.next();
        let bytes = chars.as_str().parse().unwrap_or(0);
        let kind = match (kind_char, bytes) {
            (Some('f'), 4 | 8) => Kind::Float,
            (Some('i'), 1 | 2 | 4 | 8) => Kind::Int,
            (Some('u'), 1 | 2 | 4 | 8) => Kind::Uint,
            (Some('b'), 1) => Kind::Bool,
            (Some('O'), _) => return Err("an object array (Python objects)"),
            (Some('V'), _) => return Err("raw bytes (void)"),
            (Some('c'), _) => return Err("complex"),
            (Some('U' | 'S'), _) => return Err("a string type"),
            _ => return Err("not supported"),
        };
        let big_endian = match (order, bytes) {
            (_, 1) | ("<" | "=", _) => false,
            (">", _) => true,
            _ => return Err("a multi-byte type without a byte order"),
        };
        Ok(Dtype {
            kind,
            bytes,
            big_endian,
        })
    }

    fn decode(self, element: &[u8]) -> f64 {
        let n = self.bytes;
        let mut raw = [0u8; 8];
        let raw = if self.big_endian {
            raw[8 - n..].copy_from_slice(element);
            u64::from_be_bytes(raw)
        } else {
            raw[..n].copy_from_slice(element);
            u64::from_le_bytes(raw)
        };
        let unused_bits = 64 - 8 * n as u32;
        match self.kind {
            Kind::Float if n == 4 => f64::from(f32::from_bits(raw as u32)),
            Kind::Float => f64::from_bits(raw),
            // Sign-extend the n-byte integer.
            Kind::Int => ((raw << unused_bits) as i64 >> unused_bits) as f64,
            Kind::Uint => raw as f64,
            Kind::Bool => f64::from(u8::from(raw != 0)),
        }
    }
}

fn parse_npy(bytes: &[u8]) -> Result<Array, FileProblem> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or(FileProblem::NotNpy)?;
    let cut_short = |header: &[u8]| FileProblem::NpyHeader {
        header: String::from_utf8_lossy(header).trim().to_string(),
        why: "the file ends inside the header".to_string(),
    };
    let (&[major, minor], rest) = rest.split_first_chunk().ok_or_else(|| cut_short(b""))?;
    let (header_len, rest) = match (major, minor) {
        (1, 0) => {
            let (len, rest) = rest.split_first_chunk().ok_or_else(|| cut_short(b""))?;
            (usize::from(u16::from_le_bytes(*len)), rest)
        }
        (2 | 3, 0) => {
            let (len, rest) = rest.split_first_chunk().ok_or_else(|| cut_short(b""))?;
            (u32::from_le_bytes(*len) as usize, rest)
        }
        _ => return Err(FileProblem::NpyVersion { major, minor }),
    };
    if rest.len() < header_len {
        return Err(cut_short(rest));
    }
    let (header_bytes, data) = rest.split_at(header_len);
    let header_text = String::from_utf8_lossy(header_bytes).trim().to_string();
    let header_error = |why: String| FileProblem::NpyHeader {
        header: header_text.clone(),
        why,
    };
    let header = Header::parse(&header_text).map_err(header_error)?;
    let descr = header.descr_text;
    let dtype = match header.descr {
        Literal::Str(code) => Dtype::parse(&code),
        Literal::Seq(_) => Err("a structured (record) dtype"),
        _ => Err("not a type code"),
    }
    .map_err(|what| FileProblem::NpyDtype {
        descr: descr.clone(),
        what,
    })?;
    let shape = header.shape;
    let needed = shape
        .iter()
        .try_fold(dtype.bytes, |product, &dim| product.checked_mul(dim))
        .ok_or_else(|| header_error("the shape has more elements than memory can hold".into()))?;
    if data.len() < needed {
        return Err(FileProblem::NpyTruncated {
            shape,
            descr,
            needed,
            found: data.len(),
        });
    }
    if data.len() > needed {
        return Err(FileProblem::NpyTrailing {
            shape,
            descr,
            needed,
            extra: data.len() - needed,
        });
    }
    if needed == 0 {
        return Err(FileProblem::NoNumbers);
    }
    let stored: Vec<f64> = data
        .chunks_exact(dtype.bytes)
        .map(|element| dtype.decode(element))
        .collect();
    // Fortran order matters only in 2-D: other ranks are 1-D or refused by the callers.
    let data = match shape[..] {
        [rows, cols] if header.fortran_order => (0..rows * cols)
            .map(|k| stored[(k % cols) * rows + k / cols])
            .collect(),
        _ => stored,
    };
    Ok(Array { shape, data })
}

/// The fields of a `.npy` header.
struct Header {
    descr: Literal,
    /// `descr` as written, for messages.
    descr_text: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    /// Reads a header, a Python dictionary literal such as
    /// `{'descr': '<f8', 'fortran_order': False, 'shape': (76, 76), }`.
    fn parse(text: &str) -> Result<Header, String> {
        let Literal::Dict(mut entries) = Literal::parse(text)? else {
            return Err("it is not a dictionary".into());
        };
        let mut take = |key: &str| {
            let at = entries
                .iter()
                .position(|entry| matches!(&entry.key, Literal::Str(s) if s == key))
                .ok_or_else(|| format!("no '{key}' entry"))?;
            Ok::<_, String>(entries.swap_remove(at))
        };
        let descr = take("descr")?;
        let Literal::Bool(fortran_order) = take("fortran_order")?.value else {
            return Err("'fortran_order' is neither True nor False".into());
        };
        let Literal::Seq(dims) = take("shape")?.value else {
            return Err("'shape' is not a tuple".into());
        };
        let shape = dims
            .into_iter()
            .map(|dim| match dim {
                Literal::Int(n) => Ok(n),
                _ => Err("'shape' holds something other than integers".to_string()),
            })
            .collect::<Result<_, _>>()?;
        Ok(Header {
            descr: descr.value,
            descr_text: descr.text,
            fortran_order,
            shape,
        })
    }
}

/// The Python literals a `.npy` header is made of.
enum Literal {
    Str(String),
    Int(usize),
    Bool(bool),
    /// A tuple or a list.
    Seq(Vec<Literal>),
    Dict(Vec<Entry>),
}

/// A dictionary entry, with the value as written.
struct Entry {
    key: Literal,
    value: Literal,
    text: String,
}

impl Literal {
    fn parse(text: &str) -> Result<Literal, String> {
        let mut cursor = Cursor { text, pos: 0 };
        let literal = cursor.value()?;
        cursor.skip_whitespace();
        if cursor.pos != text.len() {
            return Err(cursor.unexpected("the end of the header"));
        }
        Ok(literal)
    }
}

/// A parser of [`Literal`]s over the header text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_whitespace(&mut self) {
        self.pos = self.text.len() - self.rest().trim_start().len();
    }

    /// Skips whitespace, then `token` if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_whitespace();
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    fn unexpected(&self, expected: &str) -> String {
        format!("expected {expected} at character {}", self.pos + 1)
    }

    fn value(&mut self) -> Result<Literal, String> {
        if self.eat("{") {
            return self.items("}", Cursor::entry).map(Literal::Dict);
        }
        for (open, close) in [("(", ")"), ("[", "]")] {
            if self.eat(open) {
                return self.items(close, Cursor::value).map(Literal::Seq);
            }
        }
        for (word, value) in [("True", true), ("False", false)] {
            if self.eat(word) {
                return Ok(Literal::Bool(value));
            }
        }
        let rest = self.rest();
        if let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
            // Type codes and field names: escapes are not interpreted.
            let end = rest[1..]
                .find(quote)
                .ok_or_else(|| self.unexpected("the end of the string"))?;
            self.pos += end + 2;
            return Ok(Literal::Str(rest[1..=end].to_string()));
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(self.unexpected("a Python literal"));
        }
        let n = rest[..digits]
            .parse()
            .map_err(|_| format!("the integer {} is too large", &rest[..digits]))?;
        self.pos += digits;
        Ok(Literal::Int(n))
    }

    fn entry(&mut self) -> Result<Entry, String> {
        let key = self.value()?;
        if !self.eat(":") {
            return Err(self.unexpected("`:`"));
        }
        self.skip_whitespace();
        let start = self.pos;
        let value = self.value()?;
        Ok(Entry {
            key,
            value,
            text: self.text[start..self.pos].to_string(),
        })
    }

    /// Comma-separated items up to `close` (a trailing comma allowed).
    fn items<T>(
        &mut self,
        close: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(item(self)?);
            if !self.eat(",") {
                return if self.eat(close) {
                    Ok(items)
                } else {
                    Err(self.unexpected(&format!("`,` or `{close}`")))
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/network")
            .join(name)
    }

    /// Writes `contents` to `name` in a fresh temporary directory (removed on drop).
    fn write(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    fn matrix(rows: usize, cols: usize, data: &[f64]) -> Matrix {
        Matrix {
            rows,
            cols,
            data: data.to_vec(),
        }
    }

    fn message(result: Result<impl std::fmt::Debug, FileError>) -> String {
        result.unwrap_err().to_string()
    }

    /// The matrix `F` of the fixtures' script.
    const F: [f64; 6] = [0.0, 0.1, -2.5, 1e-300, 3.0, 7.25];

    #[test]
    fn text_formats_round_trip_a_known_matrix() {
        let expected = matrix(2, 3, &[0.0, 0.1, -2.5, 1e-300, 3.0, -7.25e3]);
        let cases: [(&str, &str); 6] = [
            ("w.txt", "0 0.1 -2.5\n1e-300\t3.0  -7.25e3\n"),
            (
                "w.dat",
                "# TVB weights\n\n  0 0.1 -2.5\r\n1e-300 3 -7250\r\n\n",
            ),
            ("weights", "0.0 .1 -2.5\n1E-300 3 -7250.0"),
            ("w.csv", "0,0.1,-2.5\n1e-300,3,-7250\n"),
            (
                "W.CSV",
                "\u{feff}a, b ,c\n0 , 0.1,-2.5\n# note\n1e-300,  3,-7250\n",
            ),
            ("w.Csv", ",x,y\n\n0,0.1,-2.5\n1e-300,3,-7250\n"),
        ];
        for (name, text) in cases {
            let (_dir, path) = write(name, text.as_bytes());
            assert_eq!(read_matrix(&path).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn text_readers_return_nan_and_infinity_as_written() {
        let (_dir, path) = write("w.txt", b"nan inf\n-inf 1\n");
        let m = read_matrix(&path).unwrap();
        assert!(m.get(0, 0).is_nan());
        assert_eq!(m.data[1..], [f64::INFINITY, f64::NEG_INFINITY, 1.0]);
    }

    #[test]
    fn npy_floats_in_both_orders_byte_orders_and_versions_match_numpy() {
        for name in [
            "f8_c.npy",
            "f8_f.npy",
            "f8_be.npy",
            "f8_c_v2.npy",
            "f8_c_v3.npy",
        ] {
            assert_eq!(
                read_matrix(&fixture(name)).unwrap(),
                matrix(2, 3, &F),
                "{name}"
            );
        }
        let f32s: Vec<f64> = F.iter().map(|&x| f64::from(x as f32)).collect();
        for name in ["f4_c.npy", "f4_be_f.npy"] {
            assert_eq!(
                read_matrix(&fixture(name)).unwrap(),
                matrix(2, 3, &f32s),
                "{name}"
            );
        }
        // The extension is matched case-insensitively.
        let (_dir, path) = write("W.NPY", &std::fs::read(fixture("f8_c.npy")).unwrap());
        assert_eq!(read_matrix(&path).unwrap(), matrix(2, 3, &F));
    }

    #[test]
    fn npy_integers_and_bools_match_numpy() {
        let signed = |min: f64, max: f64| matrix(2, 3, &[0.0, 1.0, -1.0, min, max, 7.0]);
        let unsigned = |max: f64| matrix(2, 3, &[0.0, 1.0, 2.0, max, 3.0, 7.0]);
        let cases = [
            ("i1_c.npy", signed(-128.0, 127.0)),
            ("i2_c.npy", signed(-32768.0, 32767.0)),
            ("i4_c.npy", signed(i32::MIN.into(), i32::MAX.into())),
            ("i8_c.npy", signed(i64::MIN as f64, i64::MAX as f64)),
            ("u1_c.npy", unsigned(255.0)),
            ("u2_c.npy", unsigned(65535.0)),
            ("u4_c.npy", unsigned(u32::MAX.into())),
            ("u8_c.npy", unsigned(u64::MAX as f64)),
            ("i4_f.npy", matrix(2, 3, &[0.0, 1.0, -1.0, -7.0, 8.0, 9.0])),
            ("b1_c.npy", matrix(2, 3, &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0])),
        ];
        for (name, expected) in cases {
            assert_eq!(read_matrix(&fixture(name)).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn vectors_come_from_1d_arrays_single_rows_and_single_columns() {
        let v = vec![1.5, -2.0, 0.25, 4.0];
        for name in ["vec_f8.npy", "vec_col_f8.npy"] {
            assert_eq!(read_vector(&fixture(name)).unwrap(), v, "{name}");
        }
        assert_eq!(
            read_vector(&fixture("vec_row_i2_f.npy")).unwrap(),
            [3.0, -4.0, 5.0]
        );
        for (name, text) in [
            ("v.txt", "1.5\n-2\n\n0.25\n4\n"),
            ("v.txt", "1.5 -2 0.25 4\n"),
            ("v.csv", "w\n1.5\n-2\n0.25\n4\n"),
            ("v.csv", "1.5, -2, 0.25, 4"),
        ] {
            let (_dir, path) = write(name, text.as_bytes());
            assert_eq!(read_vector(&path).unwrap(), v, "{text:?}");
        }
    }

    #[test]
    fn wrong_ranks_are_refused_with_the_shape() {
        let (_dir, path) = write("v.txt", b"1 2\n3 4\n");
        let text = message(read_vector(&path));
        assert!(text.contains("v.txt: the array has shape (2, 2); a vector must be 1-D"));
        let text = message(read_vector(&fixture("cube_f8.npy")));
        assert!(text.contains("shape (2, 2, 2); a vector"), "{text}");
        let text = message(read_matrix(&fixture("vec_f8.npy")));
        assert!(text.contains("shape (4,); a matrix must be 2-D"), "{text}");
        let text = message(read_matrix(&fixture("scalar_f8.npy")));
        assert!(text.contains("shape (); a matrix"), "{text}");
    }

    #[test]
    fn bad_text_names_the_line_column_and_token() {
        let cases = [
            (
                "w.txt",
                "1 2 3\n# c\n4 x5 6\n",
                "w.txt: line 3, column 2: `x5` is not a number",
            ),
            (
                "w.csv",
                "1,2\n3,,\n",
                "line 2, column 2: an empty field is not a number",
            ),
            ("w.csv", "1,2\n3,4,\n", "line 2, column 3: an empty field"),
            (
                "w.csv",
                "0\n1 2\n",
                "line 2, column 1: `1 2` is not a number",
            ),
            (
                "w.csv",
                "a,b\nc,d\n",
                "line 2, column 1: `c` is not a number",
            ),
            (
                "w.txt",
                "1 2 3\n\n4 5\n",
                "w.txt: line 3 has 2 columns but the first row (line 1) has 3",
            ),
            (
                "w.csv",
                "a,b\n1,2\n3\n",
                "line 3 has 1 columns but the first row (line 2) has 2",
            ),
            ("w.txt", "", "w.txt: the file contains no numbers"),
            ("w.txt", "# only\n\n  \n", "the file contains no numbers"),
            ("w.csv", "a,b\n", "the file contains no numbers"),
            (
                "w.txt",
                "1 \u{e9}\n",
                "line 1, column 2: `\u{e9}` is not a number",
            ),
        ];
        for (name, text, expected) in cases {
            let (_dir, path) = write(name, text.as_bytes());
            let got = message(read_matrix(&path));
            assert!(got.contains(expected), "{text:?}: {got}");
        }
        let (_dir, path) = write("w.txt", b"1 2\n\xff\n");
        let got = message(read_matrix(&path));
        assert!(
            got.contains("w.txt: the file is not text (invalid UTF-8 at byte 4)"),
            "{got}"
        );
    }

    #[test]
    fn missing_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.txt");
        let got = message(read_matrix(&missing));
        assert!(got.starts_with(&format!("{}: cannot read the file (", missing.display())));
        // A sparse file: 1 GiB + 1 byte without writing them.
        let big = dir.path().join("big.npy");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let got = message(read_matrix(&big));
        assert!(got.contains("the file has 1073741825 bytes, more than the 1 GiB accepted"));
    }

    #[test]
    fn npy_dtypes_that_are_not_numbers_are_refused() {
        let cases = [
            ("object.npy", "dtype '|O' is an object array"),
            (
                "structured.npy",
                "dtype [('w', '<f8'), ('n', '<i4')] is a structured (record) dtype",
            ),
            (
                "complex.npy",
                "dtype '<c16' is complex; accepted are float64",
            ),
        ];
        for (name, expected) in cases {
            let got = message(read_matrix(&fixture(name)));
            assert!(got.contains(expected), "{name}: {got}");
        }
        let got = message(read_matrix(&fixture("empty_f8.npy")));
        assert!(
            got.ends_with("empty_f8.npy: the file contains no numbers"),
            "{got}"
        );
    }

    /// A version 1.0 `.npy` file with this header (padded as NumPy pads it) and data.
    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let padded = format!("{header:<117}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn npy_headers_written_by_hand_are_read() {
        let data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        for header in [
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
            "{\"shape\":(1,2),\"fortran_order\":True,\"descr\":\"f8\"}",
            "{ 'descr' : '=f8' , 'fortran_order' : False , 'shape' : ( 1 , 2 ) }",
        ] {
            let (_dir, path) = write("w.npy", &npy(header, &data));
            assert_eq!(
                read_matrix(&path).unwrap(),
                matrix(1, 2, &[1.0, 2.0]),
                "{header}"
            );
        }
    }

    #[test]
    fn broken_npy_files_are_refused_with_what_is_wrong() {
        let good = std::fs::read(fixture("f8_c.npy")).unwrap();
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        let mut version = good.clone();
        version[6] = 4;
        let cases: Vec<(Vec<u8>, &str)> = [
            (
                good[..good.len() - 3].to_vec(),
                "the file is truncated: shape (2, 3) of '<f8' needs 48 bytes of data, the file has 45",
            ),
            (
                trailing,
                "4 bytes of trailing garbage follow the 48 bytes of data of shape (2, 3) of '<f8'",
            ),
            (version, "NumPy .npy format version 4.0; versions 1.0, 2.0 and 3.0"),
            (good[..40].to_vec(), "(the file ends inside the header): {'descr'"),
            (b"1 2 3\n".to_vec(), "not a NumPy .npy file"),
            (
                npy("{'descr': '<f8', 'shape': (1, 2)}", &[0; 16]),
                "(no 'fortran_order' entry)",
            ),
            (
                npy("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", &[0; 16]),
                "'fortran_order' is neither True nor False",
            ),
            (
                npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}", &[0; 16]),
                "(expected `,` or `)` at character 53)",
            ),
            (
                npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", &[0; 16]),
                "expected the end of the header at character 57",
            ),
            (
                npy("{'descr': '|f8', 'fortran_order': False, 'shape': (2,)}", &[0; 16]),
                "dtype '|f8' is a multi-byte type without a byte order",
            ),
            (
                npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", &[0; 4]),
                "dtype '<f2' is not supported",
            ),
            (
                npy(
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                    &[],
                ),
                "the integer 99999999999999999999 is too large",
            ),
            (
                npy(
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
                    &[],
                ),
                "the shape has more elements than memory can hold",
            ),
        ]
        .into();
        for (bytes, expected) in cases {
            let (_dir, path) = write("w.npy", &bytes);
            let got = message(read_matrix(&path));
            assert!(got.starts_with(&path.display().to_string()), "{got}");
            assert!(got.contains(expected), "expected {expected:?} in {got}");
        }
    }

    #[test]
    fn names_are_first_tokens_of_lines() {
        let text = "# TVB centres\nrLA 1.0 2.0 3.0\n\n  rPFCORB\t-1 0 0\nlA,0,0,0\n";
        let (_dir, path) = write("centres.txt", text.as_bytes());
        assert_eq!(read_names(&path).unwrap(), ["rLA", "rPFCORB", "lA"]);
        let (_dir, path) = write("n.txt", b"a 1\nb\na 2\n");
        let got = message(read_names(&path));
        assert!(
            got.ends_with("n.txt: line 3 repeats the region name `a` of line 1"),
            "{got}"
        );
        let (_dir, path) = write("n.txt", b"# none\n \n");
        assert!(message(read_names(&path)).ends_with("n.txt: the file contains no region names"));
    }

    #[test]
    #[should_panic(expected = "(0, 2) is outside a 2 x 2 matrix")]
    fn get_outside_the_matrix_panics() {
        matrix(2, 2, &[1.0; 4]).get(0, 2);
    }
}
