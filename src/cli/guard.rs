//! Text for a terminal: control characters in names, ids and headers (which come from
//! whoever published) are shown as their visible pictures instead of reaching the terminal
//! as an escape sequence it would act on.

use std::io::{self, Write};

/// A writer that shows control characters as their visible pictures (ESC as `␛`, DEL as
/// `␡`, C1 controls as `�`) instead of passing them to a terminal, keeping new lines and
/// tabs. Off for JSON, whose encoder escapes them itself.
pub struct TextGuard<W: Write> {
    // Read by the table tests beside the tables, in `output`.
    pub(super) inner: W,
    on: bool,
}

impl<W: Write> TextGuard<W> {
    pub fn new(inner: W, on: bool) -> Self {
        Self { inner, on }
    }
}

/// Whether `s` holds a character a terminal could act on.
fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// `s` with every such character replaced by its picture.
pub fn visible(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c => picture(c),
        })
        .collect()
}

/// `s` with every control character, tabs and new lines too, replaced by its picture: for
/// a table cell, which must stay one line and as wide as it looks.
pub fn one_line(s: &str) -> String {
    s.chars().map(picture).collect()
}

/// A control character's visible picture (`␉` for a tab, `␛` for ESC, `␡` for DEL, `�`
/// for C1 controls); any other character as it is.
fn picture(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        c if c.is_control() => '\u{fffd}',
        c => c,
    }
}

impl<W: Write> Write for TextGuard<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.on {
            return self.inner.write(buf);
        }
        // Text is written as whole strings; anything else is shown as text too.
        let s = String::from_utf8_lossy(buf);
        if has_control(&s) {
            self.inner.write_all(visible(&s).as_bytes())?;
        } else {
            self.inner.write_all(s.as_bytes())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_control_characters_json_is_left_alone() {
        let mut out = TextGuard::new(Vec::new(), true);
        writeln!(out, "id: esc\u{1b}[31m\tok\u{7f} c1\u{9b}2J é").unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        assert_eq!(text, "id: esc\u{241b}[31m\tok\u{2421} c1\u{fffd}2J é\n");
        let mut raw = TextGuard::new(Vec::new(), false);
        raw.write_all(b"{\"a\":\"\x7f\"}\n").unwrap();
        assert_eq!(raw.inner, b"{\"a\":\"\x7f\"}\n");
    }
}
