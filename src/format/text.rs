//! Text for people: payloads shown on one line, whatever bytes they hold.

/// Printable preview of a payload: text up to `max` characters on one line, or a hex
/// preview of binary data.
pub fn payload_preview(payload: &[u8], max: usize) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) => {
            let one_line: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(max + 1)
                .collect();
            if one_line.chars().count() > max {
                let cut: String = one_line.chars().take(max).collect();
                format!("{cut}… ({} bytes)", payload.len())
            } else {
                one_line
            }
        }
        Err(_) => {
            let hex: Vec<String> = payload
                .iter()
                .take(24)
                .map(|b| format!("{b:02x}"))
                .collect();
            let more = if payload.len() > 24 { " …" } else { "" };
            format!("<binary, {} bytes> {}{more}", payload.len(), hex.join(" "))
        }
    }
}

/// A word for a command line mqscope prints (a queue, a journal, a backup, a URL): quoted
/// so that spaces, quotes and `$` read back unchanged when the line is pasted into a shell.
pub fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}
