//! The preprocessor: turns a Python-flavoured `master.cfg` into Starlark, keeping line numbers.
//!
//! It blanks `from buildbot… import …` and `import …` lines (checking each imported name),
//! splits chained assignments (`c = BuildmasterConfig = {}`), drops the `u` of `u'…'`
//! literals and drops the `...` placeholder of documentation snippets (`f(..., x=1)`).
//! Every output line corresponds to the input line of the same number.

use crate::error::ConfigError;
use crate::values::{is_known_name, MODULES, SHIM_MODULES};

/// Rewrites `source` into Starlark that the evaluator accepts.
pub(crate) fn preprocess(file: &str, source: &str) -> Result<String, ConfigError> {
    let (text, code_starts) = rewrite_tokens(source);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let starts_in_code = code_starts.get(index).copied().unwrap_or(true);
        let trimmed = line.trim_start();
        let is_import =
            starts_in_code && (trimmed.starts_with("from ") || trimmed.starts_with("import "));
        if !is_import {
            out.push(match starts_in_code {
                true => split_chained_assignment(line),
                false => line.to_string(),
            });
            index += 1;
            continue;
        }
        // Gather a parenthesised or backslash-continued import.
        let first = index;
        let mut statement = strip_comment(line).to_string();
        while (statement.contains('(') && !statement.contains(')'))
            || statement.trim_end().ends_with('\\')
        {
            index += 1;
            let Some(next) = lines.get(index) else {
                break;
            };
            statement = statement.trim_end().trim_end_matches('\\').to_string();
            statement.push(' ');
            statement.push_str(strip_comment(next));
        }
        let line_number = first as u32 + 1;
        let assignments = import_assignments(file, line_number, statement.trim())?;
        let indent = &line[..line.len() - trimmed.len()];
        let replacement = match (assignments.is_empty(), indent.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!("{indent}pass"),
            (false, _) => format!("{indent}{}", assignments.join("; ")),
        };
        out.push(replacement);
        for _ in first..index {
            out.push(String::new());
        }
        index += 1;
    }
    apply_decorators(&mut out);
    Ok(out.join("\n"))
}

/// Starlark has no decorators: `@deco` above `def name` becomes `name = deco(name)`, written
/// on the first blank line after the function (or before the next statement, or at the end).
fn apply_decorators(lines: &mut Vec<String>) {
    let mut index = 0;
    while index < lines.len() {
        let trimmed = lines[index].trim_start();
        let Some(decorator) = trimmed.strip_prefix('@') else {
            index += 1;
            continue;
        };
        let decorator = strip_comment(decorator).trim().to_string();
        let decorator_line = index;
        // The def, possibly after more decorators (applied innermost first).
        let mut decorators = vec![decorator];
        let mut def_line = index + 1;
        while let Some(next) = lines.get(def_line) {
            match next.trim_start().strip_prefix('@') {
                Some(d) => decorators.push(strip_comment(d).trim().to_string()),
                None => break,
            }
            def_line += 1;
        }
        let Some(def) = lines.get(def_line) else {
            break;
        };
        let def_trimmed = def.trim_start();
        let indent = def.len() - def_trimmed.len();
        let Some(name) = def_trimmed
            .strip_prefix("def ")
            .and_then(|rest| rest.split('(').next())
            .map(|n| n.trim().to_string())
        else {
            index += 1;
            continue;
        };
        for line in lines.iter_mut().take(def_line).skip(decorator_line) {
            line.clear();
        }
        let mut expr = name.clone();
        for d in decorators.iter().rev() {
            expr = format!("{d}({expr})");
        }
        let assignment = format!("{}{name} = {expr}", " ".repeat(indent));
        // Find the next statement at the def's indentation or less.
        let mut next = def_line + 1;
        while let Some(line) = lines.get(next) {
            let t = line.trim_start();
            let blank = t.is_empty() || t.starts_with('#');
            if !blank && line.len() - t.len() <= indent {
                break;
            }
            next += 1;
        }
        // Prefer a blank line just before that statement.
        let mut slot = None;
        let mut back = next;
        while back > def_line + 1 {
            let t = lines[back - 1].trim_start();
            if !t.is_empty() && !t.starts_with('#') {
                break;
            }
            slot = Some(back - 1);
            back -= 1;
        }
        match (slot, lines.get_mut(next)) {
            (Some(slot), _) => lines[slot] = assignment,
            (None, Some(line)) => {
                let t = line.trim_start().to_string();
                *line = format!("{assignment}; {t}");
            }
            (None, None) => lines.push(assignment),
        }
        index = def_line + 1;
    }
}

/// The assignments an import statement stands for (`alias = name`), after checking its names.
fn import_assignments(file: &str, line: u32, statement: &str) -> Result<Vec<String>, ConfigError> {
    let unknown = |name: &str| ConfigError::UnknownImport {
        file: file.to_string(),
        line,
        name: name.to_string(),
    };
    let mut assignments = Vec::new();
    if let Some(rest) = statement.strip_prefix("from ") {
        let Some((module, names)) = rest.split_once(" import ") else {
            return Err(ConfigError::Syntax {
                file: file.to_string(),
                line,
                message: "import statement without 'import'".to_string(),
            });
        };
        let module = module.trim();
        let root = module.split('.').next().unwrap_or_default();
        let from_buildbot = root == "buildbot";
        if !from_buildbot && !SHIM_MODULES.contains(&root) {
            return Err(unknown(module));
        }
        let names = names.trim().trim_start_matches('(').trim_end_matches(')');
        for item in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                continue;
            }
            let (name, alias) = match item.split_once(" as ") {
                Some((name, alias)) => (name.trim(), alias.trim()),
                None => (item, item),
            };
            if !is_known_name(name) {
                return Err(unknown(name));
            }
            if alias != name {
                assignments.push(format!("{alias} = {name}"));
            }
        }
        return Ok(assignments);
    }
    let rest = statement.strip_prefix("import ").unwrap_or(statement);
    for item in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (path, alias) = match item.split_once(" as ") {
            Some((path, alias)) => (path.trim(), Some(alias.trim())),
            None => (item, None),
        };
        let root = path.split('.').next().unwrap_or_default();
        let known = match root {
            "buildbot" => path.split('.').all(|segment| MODULES.contains(&segment)),
            _ => SHIM_MODULES.contains(&root) && !path.contains('.') || path == "os.path",
        };
        if !known {
            return Err(unknown(path));
        }
        if let Some(alias) = alias {
            if alias != path {
                assignments.push(format!("{alias} = {path}"));
            }
        }
    }
    Ok(assignments)
}

/// `a = b = expr` becomes `b = expr; a = b` (Starlark has no chained assignment).
fn split_chained_assignment(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let Some((first, rest)) = split_assignment(trimmed) else {
        return line.to_string();
    };
    let Some((second, value)) = split_assignment(rest) else {
        return line.to_string();
    };
    format!("{indent}{second} = {value}; {first} = {second}")
}

/// Splits `name = rest` where `name` is an identifier and `=` is not `==`.
fn split_assignment(text: &str) -> Option<(&str, &str)> {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    let name = &text[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let after = text[end..].trim_start();
    let value = after.strip_prefix('=')?;
    if value.starts_with('=') {
        return None;
    }
    Some((name, value.trim_start()))
}

/// The part of a line before a `#` comment (imports hold no strings with `#`).
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Drops `u` string prefixes and turns `...` into `Ellipsis`, outside strings and comments.
/// Also reports, for each line, whether it starts outside a string.
fn rewrite_tokens(source: &str) -> (String, Vec<bool>) {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut code_starts = vec![true];
    // Inside a string: the quote character and whether it is tripled.
    let mut string: Option<(char, bool)> = None;
    let mut comment = false;
    // Where the current string literal starts in `out`.
    let mut string_start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            comment = false;
            out.push(c);
            code_starts.push(string.is_none());
            i += 1;
            continue;
        }
        if comment {
            out.push(c);
            i += 1;
            continue;
        }
        if let Some((quote, triple)) = string {
            if c == '\\' {
                out.push(c);
                if let Some(n) = next {
                    if n != '\n' {
                        out.push(n);
                        i += 1;
                    }
                }
                i += 1;
                continue;
            }
            if c == quote {
                let closes = !triple
                    || (chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote));
                if closes {
                    let width = if triple { 3 } else { 1 };
                    for _ in 0..width {
                        out.push(quote);
                    }
                    i += width;
                    string = None;
                    // `"%(name)s" % d` and `"%03d" % i`: Starlark's `%` takes no dict and no
                    // width or flags, so Python's is used for every literal before a `%`.
                    let literal = &out[string_start..];
                    let mut after = i;
                    while matches!(chars.get(after), Some(' ' | '\t')) {
                        after += 1;
                    }
                    let is_percent =
                        chars.get(after) == Some(&'%') && chars.get(after + 1) != Some(&'=');
                    if is_percent && literal.contains('%') {
                        out.insert_str(string_start, "__pyformat(");
                        out.push(')');
                    }
                    continue;
                }
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '#' => {
                comment = true;
                out.push(c);
                i += 1;
            }
            '"' | '\'' => {
                let triple = next == Some(c) && chars.get(i + 2) == Some(&c);
                let width = if triple { 3 } else { 1 };
                string_start = out.len();
                for _ in 0..width {
                    out.push(c);
                }
                i += width;
                string = Some((c, triple));
            }
            'u' | 'U' if matches!(next, Some('"') | Some('\'')) && !prev_is_ident(&chars, i) => {
                i += 1;
            }
            '.' if next == Some('.') && chars.get(i + 2) == Some(&'.') => {
                // `f(..., x=1, ...)` in a snippet: drop the placeholder and its comma.
                i += 3;
                if chars.get(i) == Some(&',') {
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, code_starts)
}

/// True if the character before `i` belongs to an identifier or number.
fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0
        && chars
            .get(i - 1)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, expected: &str) {
        let got = match preprocess("master.cfg", source) {
            Ok(text) => text,
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn imports_are_blanked_keeping_lines() {
        check("from buildbot.status import html\nx = 1", "\nx = 1");
        check(
            "from buildbot.plugins import (util,\n    steps)\nx = 1",
            "\n\nx = 1",
        );
        check("import buildbot.status.client\nimport cgi, datetime", "\n");
        check(
            "from buildbot.status.builder import Results as R",
            "R = Results",
        );
        check(
            "def f():\n    import os\n    return 1",
            "def f():\n    pass\n    return 1",
        );
    }

    #[test]
    fn unknown_imports_are_rejected() {
        check(
            "x = 1\nfrom buildbot.foo import NoSuchThing",
            "error: master.cfg:2: unknown import 'NoSuchThing'",
        );
        check(
            "import subprocess",
            "error: master.cfg:1: unknown import 'subprocess'",
        );
    }

    #[test]
    fn python_isms_are_rewritten() {
        check(
            "c = BuildmasterConfig = {}",
            "BuildmasterConfig = {}; c = BuildmasterConfig",
        );
        check(
            "x = u'a' + U\"b\" + 'u' # u'c'",
            "x = 'a' + \"b\" + 'u' # u'c'",
        );
        check("f(..., x='...', ...)", "f( x='...', )");
        check(
            "s = '''\nfrom x import y\n'''",
            "s = '''\nfrom x import y\n'''",
        );
        check("if a == b: pass", "if a == b: pass");
        check(
            "m = 'B %(name)s' % info",
            "m = __pyformat('B %(name)s') % info",
        );
        check("m = 'B %s' % name", "m = __pyformat('B %s') % name");
        check(
            "@renderer\ndef f(p):\n    return 1\n\nx = f",
            "\ndef f(p):\n    return 1\nf = renderer(f)\nx = f",
        );
        check(
            "@a.b('x')\ndef f(p):\n    return 1\nx = f",
            "\ndef f(p):\n    return 1\nf = a.b('x')(f); x = f",
        );
        check(
            "@renderer\ndef f(p):\n    return 1",
            "\ndef f(p):\n    return 1\nf = renderer(f)",
        );
    }
}
