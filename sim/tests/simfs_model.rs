//! The simulated file system keeps its promises: what is synced survives a power loss.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use writelog::fs::{Fs, FsFile};
use writelog_sim::simfs::{CrashKind, SimFs};

#[test]
fn synced_files_and_synced_entries_survive_power_loss() {
    for seed in 0..64 {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("d")).unwrap();
        let mut file = fs.create(Path::new("d/a")).unwrap();
        file.append(b"hello").unwrap();
        fs.sync_files(&[PathBuf::from("d/a")]).unwrap();
        fs.sync_dir(Path::new("d")).unwrap();
        file.append(b" maybe").unwrap();
        fs.restart(CrashKind::PowerLoss, &mut ChaCha8Rng::seed_from_u64(seed));
        let bytes = fs.read(Path::new("d/a")).unwrap();
        assert!(bytes.starts_with(b"hello"), "seed {seed}: {bytes:?}");
    }
}
