//! The secrets corpus, `collectors/tests/data/secrets.txt`: parsing only.
//!
//! Shared by `tests/mask_corpus.rs` and the `cmdline_masker` fuzz target (through `#[path]`), so
//! both read the same cases the same way. The format is described at the top of the file.

/// What gives a secret away by its shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The secret itself (`ghp_…`, a JWT): `[category] shape=secret`.
    Secret,
    /// The argument that carries it (a webhook URL, a PEM block): `[category] shape=argument`.
    Argument,
}

/// One line of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    pub category: String,
    /// What gives the category's secrets away with no name before them, if anything.
    pub shape: Option<Shape>,
    /// 1-based, for messages.
    pub line: usize,
    pub argv: Vec<String>,
    /// What must not be read in the masked line; empty for a look-alike.
    pub secrets: Vec<String>,
    /// What must still be read in it; for a look-alike, the whole argv joined.
    pub readable: Vec<String>,
    /// A look-alike: the masked line is the argv joined with spaces, unchanged.
    pub keep: bool,
}

/// Parses the corpus text.
///
/// # Errors
///
/// The first malformed line, by number.
pub fn parse(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut category: Option<(String, Option<Shape>)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(header) = raw.strip_prefix('[') {
            let (name, rest) = header
                .split_once(']')
                .ok_or(format!("line {line}: a category header without `]`"))?;
            let shape = match rest.trim() {
                "" => None,
                "shape=secret" => Some(Shape::Secret),
                "shape=argument" => Some(Shape::Argument),
                other => return Err(format!("line {line}: unknown category mark `{other}`")),
            };
            category = Some((name.to_owned(), shape));
            continue;
        }
        let (name, shape) = category
            .clone()
            .ok_or(format!("line {line}: a case before any category"))?;
        let fields: Vec<&str> = raw.split('\t').collect();
        let json = |i: usize| -> Result<Vec<String>, String> {
            let field = fields
                .get(i)
                .ok_or(format!("line {line}: field {i} missing"))?;
            serde_json::from_str(field).map_err(|e| format!("line {line}: field {i}: {e}"))
        };
        let case = match fields.first().copied() {
            Some("mask") if fields.len() == 3 || fields.len() == 4 => Case {
                category: name,
                shape,
                line,
                argv: json(1)?,
                secrets: json(2)?,
                readable: if fields.len() == 4 {
                    json(3)?
                } else {
                    Vec::new()
                },
                keep: false,
            },
            Some("keep") if fields.len() == 2 => {
                let argv = json(1)?;
                Case {
                    category: name,
                    shape,
                    line,
                    readable: vec![argv.join(" ")],
                    argv,
                    secrets: Vec::new(),
                    keep: true,
                }
            }
            _ => {
                return Err(format!(
                    "line {line}: neither `mask` nor `keep` with its fields"
                ))
            }
        };
        if !case.keep && case.secrets.is_empty() {
            return Err(format!("line {line}: a `mask` case names no secret"));
        }
        cases.push(case);
    }
    Ok(cases)
}
