//! Where a byte offset of a TOML text is, for errors that name file, line and field: the
//! line number and the dotted field path (arrays of tables counted, `agent[1].tools[0].name`).
//! Shared by the agents file, the simulator's scenarios and the settings file.

use std::collections::HashMap;

/// The 1-based line of byte `offset` in `text` (past the end: the last line; never panics).
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .unwrap_or(text)
        .matches('\n')
        .count()
        + 1
}

/// The dotted path of the field at `offset`, e.g. `agent[1].tools[0].name`:
/// the enclosing table header (array-of-tables counted) plus the key on that line, if any.
pub fn field_at(text: &str, offset: usize) -> String {
    let line_no = line_of(text, offset);
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut table = String::new();
    let mut key = String::new();
    for (i, line) in text.lines().take(line_no).enumerate() {
        let l = line.trim();
        // A malformed header (the error itself, often) leaves the table as it was.
        if let Some(rest) = l.strip_prefix("[[") {
            if let Some((name, _)) = rest.split_once("]]") {
                let name = name.trim().to_string();
                *counts.entry(name.clone()).or_insert(0) += 1;
                let nested = format!("{name}.");
                counts.retain(|k, _| !k.starts_with(&nested));
                table = display_path(&name, &counts);
            }
        } else if let Some((name, _)) = l.strip_prefix('[').and_then(|r| r.split_once(']')) {
            table = display_path(name.trim(), &counts);
        }
        if i + 1 == line_no {
            key = l
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty() && !k.starts_with('['))
                .unwrap_or_default();
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "(top level)".into(),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// `agent.tools` with counts {agent: 2, agent.tools: 1} -> `agent[1].tools[0]`.
fn display_path(name: &str, counts: &HashMap<String, usize>) -> String {
    let mut prefix = String::new();
    let mut out = String::new();
    for part in name.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
            out.push('.');
        }
        prefix.push_str(part);
        out.push_str(part);
        if let Some(n) = counts.get(&prefix) {
            out.push_str(&format!("[{}]", n.saturating_sub(1)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        let text = "a = 1\nb = 2\n\nc = 3";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 6), 2);
        assert_eq!(line_of(text, text.find('c').unwrap()), 4);
        assert_eq!(line_of(text, 10_000), 4);
    }

    #[test]
    fn field_at_counts_arrays_of_tables() {
        let text = "entry = \"a\"\n[[agent]]\nname = \"a\"\n[[agent.tools]]\nname = \"t\"\n\
                    [[agent]]\nname = \"b\"\n[[agent.tools]]\nx = 1\n[[agent.tools]]\n\
                    [agent.tools.parameters]\ntype = \"object\"\n[agent.narration]\n";
        let at = |line: usize| {
            let offset: usize = text.lines().take(line - 1).map(|l| l.len() + 1).sum();
            field_at(text, offset)
        };
        assert_eq!(at(1), "entry");
        assert_eq!(at(3), "agent[0].name");
        assert_eq!(at(5), "agent[0].tools[0].name");
        assert_eq!(at(7), "agent[1].name");
        assert_eq!(at(9), "agent[1].tools[0].x");
        assert_eq!(at(10), "agent[1].tools[1]");
        assert_eq!(at(12), "agent[1].tools[1].parameters.type");
        assert_eq!(at(13), "agent[1].narration");
    }
}
