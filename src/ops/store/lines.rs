//! The append-only JSON Lines file that journals and backups are written to, kept whole
//! through a full disk and a crash.

use super::{JournalError, io};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An append-only JSON Lines file that stays whole: a write or sync that fails (a full
/// disk) takes back everything since the last successful sync, so the file always ends
/// with a complete line, and a file that was cut mid-line (a crash) loses that fragment
/// before anything is appended after it, where it would become a broken middle line.
pub(crate) struct Lines {
    pub(crate) path: PathBuf,
    out: BufWriter<File>,
    /// Bytes appended, buffered or not.
    written: u64,
    /// Bytes known to be on disk.
    synced: u64,
}

impl Lines {
    pub(crate) fn open(path: &Path, create_new: bool) -> Result<Self, JournalError> {
        let mut opts = OpenOptions::new();
        if create_new {
            opts.create_new(true);
        } else {
            opts.create(true);
        }
        let file = opts.append(true).read(true).open(path).map_err(io(path))?;
        let whole = whole_length(&file).map_err(io(path))?;
        if whole < file.metadata().map_err(io(path))?.len() {
            file.set_len(whole).map_err(io(path))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            written: whole,
            synced: whole,
        })
    }

    pub(crate) fn line(&mut self, line: &str) -> Result<(), JournalError> {
        let r = self
            .out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"));
        match r {
            Ok(()) => {
                self.written += line.len() as u64 + 1;
                Ok(())
            }
            Err(e) => Err(self.undo(e)),
        }
    }

    pub(crate) fn sync(&mut self) -> Result<(), JournalError> {
        match self
            .out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
        {
            Ok(()) => {
                self.synced = self.written;
                Ok(())
            }
            Err(e) => Err(self.undo(e)),
        }
    }

    /// Drop what was not synced, buffered or written, and report `e`.
    fn undo(&mut self, e: std::io::Error) -> JournalError {
        let err = io(&self.path)(e);
        let Ok(file) = self.out.get_ref().try_clone() else {
            return err;
        };
        // Shrinking a file needs no free space, so this works on the full disk that
        // made the write fail.
        if file.set_len(self.synced).is_err() {
            return err;
        }
        let old = std::mem::replace(&mut self.out, BufWriter::with_capacity(1 << 16, file));
        // Not flushed: its buffer held exactly what is being taken back.
        let _ = old.into_parts();
        self.written = self.synced;
        err
    }
}

/// The length of a file up to and including its last newline.
fn whole_length(file: &File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut f = file;
    let mut end = len;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}
