//! Turns what the YAML parser reports into an error about the user's file:
//! the line and column, the key path (`smtp.listen[1]`) where it can be
//! told, and what was wrong in words about the configuration.
//!
//! serde-saphyr's own messages name its options, its budget structs and
//! our internal Rust types (`DuplicateKeyPolicy`, `invalid u64`, `untagged
//! enum RawTargets`); none of that must reach the person editing the file.
//! This module never reads a file and never decides what is valid: it only
//! words what the parser found.

use serde_saphyr::Error;

/// Where in the file a problem is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Described {
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// The key path, `smtp.listen[1]`; `None` where it cannot be told.
    pub key: Option<String>,
    pub message: String,
}

/// What went wrong parsing `text`, in words about the configuration.
pub(super) fn describe(e: &Error, text: &str) -> Described {
    // A tab in indentation makes the scanner fail somewhere near it, often
    // at the end of the line before ("while scanning a plain scalar, found
    // a tab"): whatever it reports, the tab is the cause.
    if let Some((line, column)) = tab_indentation(text) {
        return Described {
            line: Some(line),
            column: Some(column),
            key: None,
            message: "YAML does not allow tabs for indentation; indent with spaces".into(),
        };
    }
    let e = e.without_snippet();
    let location = e.location();
    let line = location.map(|l| l.line()).filter(|&l| l > 0);
    let column = location.map(|l| l.column()).filter(|&c| c > 0);
    let path = line.map(|l| key_path(text, l, column.unwrap_or(u64::MAX)));
    let key = path.as_ref().map(|p| join(p)).filter(|k| !k.is_empty());
    // The mapping a key at the error's place belongs to.
    let parent = || {
        let mut p = path.clone().unwrap_or_default();
        let at_key = match (line, column) {
            (Some(l), Some(c)) => text
                .lines()
                .nth(l as usize - 1)
                .and_then(|t| t.get(c as usize - 1..))
                .and_then(mapping_key)
                .is_some_and(|(k, _)| p.last() == Some(&Segment::Key(k))),
            _ => false,
        };
        if at_key {
            p.pop();
        }
        p
    };
    let (key, message) = match e {
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let parent = parent();
            let place = if parent.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in {}", join(&parent))
            };
            (
                Some(join_key(&parent, field)),
                format!(
                    "unknown key {field:?}; the keys allowed {place} are: {}",
                    expected.join(", ")
                ),
            )
        }
        Error::SerdeMissingField { field, .. } => {
            // Reported at the mapping's first key: the mapping is its parent.
            let parent = parent();
            let place = if parent.is_empty() {
                "the file".to_owned()
            } else {
                join(&parent)
            };
            (
                Some(join_key(&parent, field)),
                format!("{place} needs the key {field}, which is missing"),
            )
        }
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            key,
            format!(
                "{variant:?} is not allowed here; use one of: {}",
                expected.join(", ")
            ),
        ),
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            key,
            format!("expected {}, found {unexpected}", plain_expected(expected)),
        ),
        Error::DuplicateMappingKey { key: name, .. } => (
            key,
            match name {
                Some(n) => format!("the key {n:?} is given twice here; keep one of them"),
                None => "a key is given twice here; keep one of them".into(),
            },
        ),
        Error::MultipleDocuments { .. } => (
            None,
            "a second YAML document starts here (after ---); a configuration is one document"
                .into(),
        ),
        Error::Budget { .. } => (
            None,
            "the file is too large or too deeply nested to be a configuration \
             (too many values, aliases or levels)"
                .into(),
        ),
        Error::InvalidScalar { ty, .. } => (
            key,
            format!(
                "expected {}, found {}",
                scalar_kind(ty),
                found(text, line, column)
            ),
        ),
        Error::InvalidBooleanStrict { .. } => (
            key,
            format!(
                "expected true or false, found {}",
                found(text, line, column)
            ),
        ),
        Error::Unexpected { expected, .. } => (
            key,
            match *expected {
                "mapping start" => "expected a mapping (key: value lines) here".to_owned(),
                "sequence start" => {
                    "expected a list here ([a, b], or lines starting with \"- \")".to_owned()
                }
                "string scalar" => "expected a single value here, not a list or mapping".into(),
                other => format!("expected {other} here"),
            },
        ),
        Error::UnknownAnchor { .. } => (
            key,
            "this alias (*name) refers to an anchor (&name) not defined before it".into(),
        ),
        Error::Message { msg, .. } => (key, msg.clone()),
        // The scanner's words ("unclosed quote", "mapping values are not
        // allowed in this context") are about the text itself.
        Error::ExternalMessage { msg, .. } => (key, format!("YAML syntax error: {msg}")),
        other => (
            key,
            serde_saphyr::MessageFormatter::format_message(
                &serde_saphyr::UserMessageFormatter,
                other,
            )
            .into_owned(),
        ),
    };
    Described {
        line,
        column,
        key,
        message,
    }
}

/// Where text stops being UTF-8: line, column, and the byte.
pub(super) fn not_utf8(bytes: &[u8], valid_up_to: usize) -> Described {
    let before = &bytes[..valid_up_to];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u64
        + 1;
    let prefix = String::from_utf8_lossy(before);
    let key = Some(join(&key_path(&prefix, line, column))).filter(|k| !k.is_empty());
    Described {
        line: Some(line),
        column: Some(column),
        key,
        message: format!(
            "byte 0x{:02x} is not UTF-8 text; save the file as UTF-8",
            bytes[valid_up_to]
        ),
    }
}

/// The first line indented with a tab (a tab before its first character
/// that is not a space), outside block scalars (`|`, `>`) and flow
/// collections (`[...]`, `{...}` over several lines), where a tab is text
/// or allowed space. Line and column of the tab, from 1.
pub(super) fn tab_indentation(text: &str) -> Option<(u64, u64)> {
    let mut block_scalar: Option<usize> = None;
    let mut flow_depth = 0i64;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let content = &line[indent..];
        if let Some(parent) = block_scalar {
            let spaces = line.len() - line.trim_start_matches(' ').len();
            if content.is_empty() || spaces > parent {
                continue;
            }
            block_scalar = None;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if flow_depth == 0
            && let Some(tab) = line[..indent].find('\t')
        {
            return Some((n as u64 + 1, tab as u64 + 1));
        }
        let code = strip_comment(content);
        for c in code.chars() {
            match c {
                '[' | '{' => flow_depth += 1,
                ']' | '}' => flow_depth = (flow_depth - 1).max(0),
                _ => {}
            }
        }
        let trimmed = code.trim_end();
        if flow_depth == 0
            && (trimmed.ends_with(" |")
                || trimmed.ends_with(" >")
                || trimmed.ends_with(": |")
                || trimmed.ends_with(": >")
                || trimmed.rsplit_once(' ').is_some_and(|(_, t)| {
                    t.len() <= 3 && (t.starts_with('|') || t.starts_with('>'))
                }))
        {
            block_scalar = Some(line.len() - line.trim_start_matches(' ').len());
        }
    }
    None
}

/// A line without its comment (a `#` after a space, outside quotes).
fn strip_comment(s: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev == ' ' || prev == '\t' => return &s[..i],
            _ => {}
        }
        prev = c;
    }
    s
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn join(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn join_key(parent: &[Segment], key: &str) -> String {
    let mut p = parent.to_vec();
    p.push(Segment::Key(key.to_owned()));
    join(&p)
}

/// The key path at `line` and `column` (from 1) of block-style YAML: the
/// keys and list items whose scope holds that place. Flow collections are
/// followed only on the line itself (`listen: [a, b]` gives `listen[1]`
/// at `b`). A guess for odd layouts, which only ever words a message.
fn key_path(text: &str, line: u64, column: u64) -> Vec<Segment> {
    // (column where the entry starts, the entry)
    let mut stack: Vec<(usize, Segment)> = Vec::new();
    for (n, l) in text.lines().enumerate().take(line as usize) {
        let last = n as u64 + 1 == line;
        let stop = if last {
            usize::try_from(column)
                .unwrap_or(usize::MAX)
                .saturating_sub(1)
        } else {
            usize::MAX
        };
        let code = strip_comment(l);
        if code.trim().is_empty() || code.trim_start().starts_with("---") {
            continue;
        }
        let mut pos = code.len() - code.trim_start_matches(' ').len();
        loop {
            let rest = &code[pos..];
            if pos > stop {
                break;
            }
            if rest.starts_with("- ") || rest == "-" {
                let mut index = 0;
                while let Some((col, seg)) = stack.last() {
                    if *col > pos || (*col == pos && matches!(seg, Segment::Index(_))) {
                        if let (true, Segment::Index(i)) = (*col == pos, seg) {
                            index = i + 1;
                        }
                        stack.pop();
                    } else {
                        break;
                    }
                }
                stack.push((pos, Segment::Index(index)));
                pos += 1;
                pos += code[pos..].len() - code[pos..].trim_start_matches(' ').len();
                continue;
            }
            let Some((key, after)) = mapping_key(rest) else {
                break;
            };
            while stack.last().is_some_and(|(c, _)| *c >= pos) {
                stack.pop();
            }
            stack.push((pos, Segment::Key(key)));
            // A flow list on this line, up to the column: its item index.
            let value_start = pos + after;
            let value = &code[value_start..];
            let skipped = value.len() - value.trim_start().len();
            if last && value.trim_start().starts_with('[') && stop > value_start + skipped {
                let inside = &code[value_start + skipped + 1..stop.min(code.len())];
                let mut depth = 0;
                let mut index = 0;
                for c in inside.chars() {
                    match c {
                        '[' | '{' => depth += 1,
                        ']' | '}' => depth -= 1,
                        ',' if depth == 0 => index += 1,
                        _ => {}
                    }
                }
                stack.push((usize::MAX, Segment::Index(index)));
            }
            break;
        }
    }
    stack.into_iter().map(|(_, s)| s).collect()
}

/// `key: ...` at the start of `s`: the key and where its value starts.
fn mapping_key(s: &str) -> Option<(String, usize)> {
    let (key, end) = match s.chars().next()? {
        q @ ('"' | '\'') => {
            let close = s[1..].find(q)? + 1;
            (s[1..close].to_owned(), close + 1)
        }
        '[' | '{' | '#' | '&' | '*' | '!' | '|' | '>' => return None,
        _ => {
            let colon = s.match_indices(':').find(|(i, _)| {
                matches!(s.as_bytes().get(i + 1), None | Some(b' ') | Some(b'\t'))
            })?;
            (s[..colon.0].trim_end().to_owned(), colon.0)
        }
    };
    let rest = &s[end..];
    let colon = rest.len() - rest.trim_start().len();
    rest.trim_start()
        .starts_with(':')
        .then_some((key, end + colon + 1))
}

/// What a value found in the file is, as the text at its place.
fn found(text: &str, line: Option<u64>, column: Option<u64>) -> String {
    let (Some(line), Some(column)) = (line, column) else {
        return "something else".into();
    };
    let Some(l) = text.lines().nth(line as usize - 1) else {
        return "something else".into();
    };
    let start: String = l.chars().skip(column as usize - 1).collect();
    let value = strip_comment(&start)
        .split([',', ']', '}'])
        .next()
        .unwrap_or("")
        .trim();
    if value.is_empty() {
        "nothing".into()
    } else {
        format!("{value:?}")
    }
}

/// A Rust type the parser names, as a kind of value a person writes.
fn scalar_kind(ty: &str) -> &'static str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number of 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" | "floating point" => "a number",
        "bool" | "boolean" => "true or false",
        "char" => "a single character",
        _ => "a value of another kind",
    }
}

/// serde's description of what a visitor wanted, without Rust type names
/// (`struct RawSmtp`, `u16`).
fn plain_expected(expected: &str) -> String {
    if expected.starts_with("struct ") || expected.starts_with("map") {
        return "a mapping (key: value lines)".into();
    }
    if expected.starts_with("enum ") || expected.starts_with("variant ") {
        return "one of the names allowed here".into();
    }
    if expected.starts_with("a sequence") {
        return "a list".into();
    }
    let k = scalar_kind(expected.trim_start_matches("a "));
    if k != "a value of another kind" {
        return k.into();
    }
    expected.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_follow_block_layout() {
        let text = "hostname: a\nsmtp:\n  listen:\n    - a\n    - b\n  relay:\n    host: x\n";
        assert_eq!(join(&key_path(text, 1, 1)), "hostname");
        assert_eq!(join(&key_path(text, 5, 7)), "smtp.listen[1]");
        assert_eq!(join(&key_path(text, 7, 11)), "smtp.relay.host");
        let flow = "smtp:\n  listen: [\"a\", \"b\"]\n";
        assert_eq!(join(&key_path(flow, 2, 18)), "smtp.listen[1]");
        let items = "fetch:\n  accounts:\n  - name: a\n    host: x\n  - name: b\n    hots: y\n";
        assert_eq!(join(&key_path(items, 6, 5)), "fetch.accounts[1].hots");
    }

    #[test]
    fn tabs_are_found_where_they_indent() {
        assert_eq!(tab_indentation("a: 1\nb:\n\tc: 2\n"), Some((3, 1)));
        assert_eq!(tab_indentation("a: 1\nb:\n  \tc: 2\n"), Some((3, 3)));
        assert_eq!(tab_indentation("a:\tb\n"), None);
        assert_eq!(tab_indentation("a: |\n  x\n  \ty\nb: 1\n"), None);
        assert_eq!(tab_indentation("a: [1,\n\t2]\n"), None);
        assert_eq!(tab_indentation("a: 1\n\t# a comment\n\t\n"), None);
    }
}
