//! The records directory (docs/operations.md, "Call records"): the file
//! being written, `INSTANCE.jsonl`, renamed at rotation to
//! `INSTANCE-STAMP.jsonl` (STAMP: when it was opened, UTC to the
//! microsecond, so names sort by age); never copied and truncated, which
//! is what Vector, Fluent Bit and Filebeat follow correctly.
//!
//! The files are also the webhook's spool. Two hidden files beside them
//! make that survive a restart or `kill -9`: `.INSTANCE.current` (the
//! stamp of the file being written, so the checkpoint can name it before
//! it is renamed) and `.INSTANCE.checkpoint` (how far delivery got).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A place in the spool: a file by its stamp and a byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub file: String,
    pub offset: u64,
}

/// The records directory of one instance.
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
    pub instance: String,
}

/// A rotated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub stamp: String,
    pub path: PathBuf,
    pub len: u64,
}

impl Spool {
    pub fn new(dir: &Path, instance: &str) -> Spool {
        Spool {
            dir: dir.to_owned(),
            instance: instance.to_owned(),
        }
    }

    /// The file being written.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.instance))
    }

    /// Where the file opened at `stamp` lives once rotated.
    pub fn rotated_path(&self, stamp: &str) -> PathBuf {
        self.dir.join(format!("{}-{stamp}.jsonl", self.instance))
    }

    fn current_stamp_path(&self) -> PathBuf {
        self.dir.join(format!(".{}.current", self.instance))
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(format!(".{}.checkpoint", self.instance))
    }

    /// The stamp of the file being written, as last saved.
    pub fn saved_current_stamp(&self) -> Option<String> {
        let text = fs::read_to_string(self.current_stamp_path()).ok()?;
        let stamp = text.trim();
        is_stamp(stamp).then(|| stamp.to_owned())
    }

    /// Saves the stamp of the file about to be written, durably: the
    /// checkpoint may name it before the file is renamed.
    pub fn save_current_stamp(&self, stamp: &str) -> io::Result<()> {
        write_durably(&self.current_stamp_path(), stamp.as_bytes())
    }

    /// Rotated files, oldest first.
    pub fn rotated(&self) -> io::Result<Vec<Rotated>> {
        let prefix = format!("{}-", self.instance);
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stamp) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".jsonl"))
                .filter(|s| is_stamp(s))
            else {
                continue;
            };
            let len = entry.metadata().map_or(0, |m| m.len());
            found.push(Rotated {
                stamp: stamp.to_owned(),
                path: entry.path(),
                len,
            });
        }
        found.sort_by(|a, b| a.stamp.cmp(&b.stamp));
        Ok(found)
    }

    /// The delivery checkpoint, if one was saved.
    pub fn load_checkpoint(&self) -> Option<Checkpoint> {
        let bytes = fs::read(self.checkpoint_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Saves the checkpoint: written beside, fsync'd, renamed over, the
    /// directory fsync'd, so a crash leaves the old one or the new one.
    pub fn save_checkpoint(&self, checkpoint: &Checkpoint) -> io::Result<()> {
        let bytes = serde_json::to_vec(checkpoint).map_err(io::Error::other)?;
        write_durably(&self.checkpoint_path(), &bytes)
    }
}

/// How far webhook delivery got, and the batch it was sending: a batch
/// resent after a restart is the same bytes under the same `webhook-id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Everything before this was delivered.
    pub delivered: Option<Position>,
    /// The batch being sent: from `delivered` to this offset in the same
    /// file.
    pub sending_to: Option<Position>,
}

/// `20261206T054101.123456Z`.
pub fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b[8] == b'T'
        && b[15] == b'.'
        && b[22] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 15 | 22) || c.is_ascii_digit())
}

/// Writes `path` so that a crash leaves either its old or its new content.
pub fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Cuts `path` after its last newline: a line half-written when the
/// process died is no record. How long the file is after.
pub fn cut_partial_line(path: &Path) -> io::Result<u64> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
            }
            return Ok(keep);
        }
        end = start;
    }
    file.set_len(0)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_are_found_by_name_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), "sb1");
        for name in [
            "sb1-20261206T054101.000002Z.jsonl",
            "sb1-20261206T054101.000001Z.jsonl",
            "sb1.jsonl",
            "sb1-x-20261206T054101.000001Z.jsonl",
            "other-20261206T054101.000001Z.jsonl",
            ".sb1.checkpoint",
        ] {
            fs::write(dir.path().join(name), "{}\n").unwrap();
        }
        let stamps: Vec<_> = spool
            .rotated()
            .unwrap()
            .into_iter()
            .map(|r| r.stamp)
            .collect();
        assert_eq!(
            stamps,
            ["20261206T054101.000001Z", "20261206T054101.000002Z"]
        );
    }

    #[test]
    fn a_half_written_line_is_cut_and_checkpoints_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        assert_eq!(cut_partial_line(&path).unwrap(), 8);
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        let spool = Spool::new(dir.path(), "sb1");
        assert_eq!(spool.load_checkpoint(), None);
        let checkpoint = Checkpoint {
            delivered: Some(Position {
                file: "20261206T054101.000001Z".into(),
                offset: 8,
            }),
            sending_to: None,
        };
        spool.save_checkpoint(&checkpoint).unwrap();
        assert_eq!(spool.load_checkpoint(), Some(checkpoint));
    }
}
