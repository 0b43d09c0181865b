//! Files of the on-disk caches (SRS, keys): atomic writes and the lock that
//! makes processes sharing a cache directory generate each entry once.

use std::{
    fs,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use crate::ProverError;

/// A temporary sibling of `path`, unique to this process and call, so that
/// processes sharing a data directory never write the same temporary file.
fn tmp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sibling(path, &format!(".tmp-{}-{n}", std::process::id()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn create_parent(path: &Path) -> Result<(), ProverError> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(ProverError::io(format!("creating {}", parent.display()))),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProverError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes `path` through a temporary file and a rename, streaming what
/// `write` produces (buffered) into it: readers see the old file or the
/// whole new one, never a part.
pub(crate) fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
) -> Result<(), ProverError> {
    create_parent(path)?;
    let tmp = tmp_path(path);
    let written = fs::File::create(&tmp).and_then(|f| {
        let mut w = BufWriter::new(f);
        write(&mut w)?;
        w.flush()
    });
    written.map_err(ProverError::io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(ProverError::io(format!("renaming {}", tmp.display())))
}

/// Runs `f` holding an exclusive lock on the file `<entry>.lock`: a second
/// process (or thread) asking for the same cache entry waits for the first
/// and then finds the entry written, instead of generating it again. The
/// operating system releases the lock when the holder exits, even killed.
pub(crate) fn locked<T>(entry: &Path, f: impl FnOnce() -> Result<T, ProverError>) -> Result<T, ProverError> {
    let path = sibling(entry, ".lock");
    create_parent(&path)?;
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(ProverError::io(format!("opening {}", path.display())))?;
    file.lock().map_err(ProverError::io(format!("locking {}", path.display())))?;
    let out = f();
    drop(file);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        sync::{Arc, Barrier, Mutex},
        time::Duration,
    };

    #[test]
    fn a_locked_entry_is_generated_once_by_concurrent_callers() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("sub").join("entry");
        let generated = Arc::new(Mutex::new(0));
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (entry, generated, barrier) = (entry.clone(), generated.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    locked(&entry, || {
                        if !entry.exists() {
                            std::thread::sleep(Duration::from_millis(50));
                            *generated.lock().unwrap() += 1;
                            write_atomic(&entry, b"value")?;
                        }
                        Ok(fs::read(&entry).unwrap())
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), b"value");
        }
        assert_eq!(*generated.lock().unwrap(), 1, "one caller generated, the others found it");
        assert!(fs::read_dir(entry.parent().unwrap()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")));
    }
}
