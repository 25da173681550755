//! Reading a spec file: size limit, UTF-8, validation, the files it names (a network's
//! matrices), and a plan that fits; every error names the file.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, SpecFileProblem};
use crate::plan::Plan;
use crate::spec::{self, MAX_SPEC_BYTES, Spec};

/// Reads, validates and plans the spec in `path`.
pub fn load_spec(path: &Path) -> Result<Spec, Error> {
    let named = |problem: SpecFileProblem| Error::SpecFile {
        file: path.to_path_buf(),
        problem,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SPEC_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| named(SpecFileProblem::Read(e)))?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(named(SpecFileProblem::TooLarge));
    }
    let text = String::from_utf8(text).map_err(|_| named(SpecFileProblem::NotUtf8))?;
    let mut spec = spec::parse(&text).map_err(|e| named(e.into()))?;
    // A network's files are relative to the spec file.
    let base = path.parent().unwrap_or(Path::new(""));
    spec.load_files(base).map_err(|e| named(e.into()))?;
    Plan::new(&spec).map_err(|e| named(e.into()))?;
    Ok(spec)
}
