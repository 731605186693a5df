//! A store in the old one-file-per-key layout is refused with an error that names the
//! layout, and nothing in it is changed; so is a key store whose MANIFEST is lost.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
use common::disk_picture;

#[test]
fn a_store_in_the_old_layout_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keys/3f")).unwrap();
    std::fs::write(
        dir.path().join("keys/3f/3f00000000000000.key"),
        b"WLKEYFIL old",
    )
    .unwrap();
    std::fs::write(dir.path().join("keys/WATERMARK"), [0u8; 24]).unwrap();
    let before = disk_picture(dir.path());
    match writelog::Store::open(dir.path(), writelog::Options::default()) {
        Err(writelog::Error::UnsupportedLayout { path, layout }) => {
            // Named under the store's directory.
            assert_eq!(path, std::path::absolute(dir.path()).unwrap().join("keys"));
            assert!(layout.contains("one file per key"), "{layout}");
        }
        other => panic!("expected the layout refused, got {:?}", other.map(|_| ())),
    }
    let after: Vec<_> = disk_picture(dir.path())
        .into_iter()
        .filter(|(path, _)| path != "LOCK")
        .collect();
    assert_eq!(after, before, "nothing is changed");
}

#[test]
fn segments_without_a_manifest_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = writelog::Store::open(dir.path(), writelog::Options::default()).unwrap();
    store.append(b"k", b"v").unwrap();
    store.flush().unwrap();
    store.close().unwrap();
    std::fs::remove_file(dir.path().join("keys/MANIFEST")).unwrap();
    match writelog::Store::open(dir.path(), writelog::Options::default()) {
        Err(writelog::Error::Corrupt { path, .. }) => {
            assert_eq!(
                path,
                std::path::absolute(dir.path())
                    .unwrap()
                    .join("keys/MANIFEST")
            )
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}
