//! The simulated file system keeps its promises: what is synced survives a power loss.

use std::path::Path;

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
        file.sync_data().unwrap();
        fs.sync_dir(Path::new("d")).unwrap();
        file.append(b" maybe").unwrap();
        fs.restart(CrashKind::PowerLoss, &mut ChaCha8Rng::seed_from_u64(seed));
        let bytes = fs.read(Path::new("d/a")).unwrap();
        assert!(bytes.starts_with(b"hello"), "seed {seed}: {bytes:?}");
    }
}

#[test]
fn a_failed_write_leaves_at_most_a_prefix_and_says_so() {
    use writelog_sim::simfs::IoFaultRates;
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("d")).unwrap();
    let mut file = fs.create(Path::new("d/a")).unwrap();
    let rates = IoFaultRates {
        write_eio: 1.0,
        ..IoFaultRates::default()
    };
    fs.set_io_faults(rates, ChaCha8Rng::seed_from_u64(3));
    let mut short = 0;
    for _ in 0..50 {
        let before = fs.read(Path::new("d/a")).unwrap().len();
        assert!(file.append(b"0123456789").is_err());
        assert!(fs.take_injected_error());
        let after = fs.read(Path::new("d/a")).unwrap().len();
        assert!(after - before <= 10);
        short += usize::from(after > before);
    }
    assert!(short > 0, "some failed writes were short writes");
    assert_eq!(fs.injected().write_eio, 50);
}

#[test]
fn a_full_disk_refuses_creates_and_writes_for_a_spell_then_recovers() {
    use writelog_sim::simfs::IoFaultRates;
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("d")).unwrap();
    let rates = IoFaultRates {
        enospc: 1.0,
        ..IoFaultRates::default()
    };
    fs.set_io_faults(rates, ChaCha8Rng::seed_from_u64(5));
    let error = fs.create(Path::new("d/a")).expect_err("the disk is full");
    assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
    fs.set_io_faults(IoFaultRates::default(), ChaCha8Rng::seed_from_u64(5));
    let mut file = fs.create(Path::new("d/a")).unwrap();
    file.append(b"room again").unwrap();
    assert_eq!(fs.read(Path::new("d/a")).unwrap(), b"room again");
}

#[test]
fn read_faults_are_errors_never_shorter_files() {
    use writelog_sim::simfs::IoFaultRates;
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("d")).unwrap();
    fs.create(Path::new("d/a"))
        .unwrap()
        .append(b"whole file")
        .unwrap();
    let rates = IoFaultRates {
        read_eio: 0.3,
        short_read: 0.3,
        ..IoFaultRates::default()
    };
    fs.set_io_faults(rates, ChaCha8Rng::seed_from_u64(9));
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..200 {
        match fs.read(Path::new("d/a")) {
            Ok(bytes) => {
                assert_eq!(bytes, b"whole file");
                ok += 1;
            }
            Err(_) => failed += 1,
        }
    }
    assert!(ok > 0 && failed > 0, "{ok} reads, {failed} failures");
    let counts = fs.injected();
    assert_eq!(counts.read_eio + counts.short_reads, failed);
}

#[test]
fn rot_changes_durable_bytes_of_a_synced_file_only() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("d")).unwrap();
    let mut file = fs.create(Path::new("d/a")).unwrap();
    file.append(b"abc").unwrap();
    assert_eq!(fs.rot(Path::new("d/a"), 1, b"X"), None, "unsynced bytes");
    file.sync_data().unwrap();
    fs.sync_dir(Path::new("d")).unwrap();
    assert_eq!(fs.rot(Path::new("d/a"), 1, b"X"), Some(b"b".to_vec()));
    fs.restart(CrashKind::PowerLoss, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(fs.peek(Path::new("d/a")).as_deref(), Some(&b"aXc"[..]));
}
