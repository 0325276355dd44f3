//! Delivery into a directory: a file appears whole or not at all.
//!
//! The body is written to `.<name>.cdrhub-tmp` in the same directory,
//! fsynced, renamed to `<name>` (atomic within one file system), and the
//! directory is fsynced so the rename survives a power cut. A reader that
//! picks up files by name never sees a partial one (the temporary name starts
//! with a dot, which most pickup globs skip). A retry after a crash reuses the
//! same temporary name, so no stray temporary files pile up.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Writes `body` as `dir/name`, atomically; `Err` is one sentence.
pub(super) fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> Result<(), String> {
    // The directory is not created: a missing one is more likely a share
    // that is not mounted than a place to fill on the local disk.
    if !dir.is_dir() {
        return Err(format!("the directory {} does not exist", dir.display()));
    }
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.cdrhub-tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(body)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_an_error_not_created() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("exports");
        let e = write_atomically(&dir, "a.csv", b"x").unwrap_err();
        assert_eq!(e, format!("the directory {} does not exist", dir.display()));
        assert!(!dir.exists());
    }

    #[test]
    fn the_file_replaces_a_stray_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".a.csv.cdrhub-tmp"), b"partial").unwrap();
        write_atomically(dir.path(), "a.csv", b"whole").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.csv"]);
        assert_eq!(std::fs::read(dir.path().join("a.csv")).unwrap(), b"whole");
    }
}
