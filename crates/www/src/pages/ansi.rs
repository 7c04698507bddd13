//! Log lines to HTML: everything escaped, ANSI SGR colours (30–37, 90–97, 40–47, bold) turned
//! into classes, every other escape sequence dropped.

/// HTML-escapes `text` into `out`.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
}

/// HTML-escapes `text`.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

#[derive(Default, Clone, PartialEq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
}

impl Style {
    fn classes(&self) -> String {
        let mut classes = Vec::new();
        if let Some(fg) = self.fg {
            classes.push(format!("ansi-fg{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("ansi-bg{bg}"));
        }
        if self.bold {
            classes.push("ansi-bold".to_string());
        }
        classes.join(" ")
    }

    fn apply(&mut self, params: &str) {
        let codes: Vec<u32> = if params.is_empty() {
            vec![0]
        } else {
            params.split(';').filter_map(|p| p.parse().ok()).collect()
        };
        for code in codes {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                49 => self.bg = None,
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                _ => {}
            }
        }
    }
}

/// One log line as HTML.
pub(crate) fn line_to_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut style = Style::default();
    let mut open = false;
    let mut rest = line;
    while let Some(pos) = rest.find('\x1b') {
        escape_into(&mut out, &rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('[') {
            // CSI: parameters then one final byte in 0x40..=0x7e.
            let end = after
                .char_indices()
                .find(|(_, c)| ('\x40'..='\x7e').contains(c));
            match end {
                Some((i, 'm')) => {
                    let before = style.clone();
                    style.apply(&after[..i]);
                    if style != before {
                        if open {
                            out.push_str("</span>");
                            open = false;
                        }
                        let classes = style.classes();
                        if !classes.is_empty() {
                            out.push_str("<span class=\"");
                            out.push_str(&classes);
                            out.push_str("\">");
                            open = true;
                        }
                    }
                    rest = &after[i + 1..];
                }
                Some((i, c)) => rest = &after[i + c.len_utf8()..],
                None => rest = "",
            }
        }
    }
    escape_into(&mut out, rest);
    if open {
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_escaping() {
        assert_eq!(
            line_to_html("\x1b[31m<b>red</b>\x1b[0m ok"),
            "<span class=\"ansi-fg1\">&lt;b&gt;red&lt;/b&gt;</span> ok"
        );
        assert_eq!(line_to_html("\x1b[2Kplain\x07"), "plain");
        assert_eq!(
            line_to_html("\x1b[1;92mB"),
            "<span class=\"ansi-fg10 ansi-bold\">B</span>"
        );
        assert_eq!(line_to_html("cut \x1b["), "cut ");
    }
}
