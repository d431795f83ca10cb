//! Keys through the public API, as the task manager uses them: generate a
//! data key, wrap it under the master key from its file, unwrap it later.

use coffer_pipeline::{unwrap_key, wrap_key, DataKey, MasterKey, PipelineError};
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_wrapped_key_opens_with_its_master_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::load_or_create(&dir.path().join("backup-master.key")).unwrap();
    let key = DataKey::generate();
    let wrapped = wrap_key(&master, &key);
    assert_eq!(
        unwrap_key(&master, &wrapped).unwrap().as_bytes(),
        key.as_bytes()
    );

    let other = MasterKey::load_or_create(&dir.path().join("other-master.key")).unwrap();
    assert_ne!(other.fingerprint(), master.fingerprint());
    let e = unwrap_key(&other, &wrapped).unwrap_err();
    assert!(matches!(e, PipelineError::WrongMasterKey), "{e}");
    assert!(e.to_string().contains("master key"), "{e}");
}

#[test]
fn the_master_key_file_is_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("backup-master.key");
    let first = MasterKey::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let wrapped = wrap_key(&first, &DataKey::generate());
    let again = MasterKey::load_or_create(&path).unwrap();
    assert_eq!(again.fingerprint(), first.fingerprint());
    unwrap_key(&again, &wrapped).expect("the reloaded key opens what the first wrapped");

    std::fs::write(&path, [1u8; 20]).unwrap();
    let e = MasterKey::load_or_create(&path).unwrap_err();
    assert!(matches!(e, PipelineError::KeyFile { .. }), "{e}");
    assert!(e.to_string().contains("holds 20 bytes"), "{e}");
}

#[test]
fn keys_never_show_in_debug_output() {
    let key = DataKey::from_bytes(&[0x5a; 32]).unwrap();
    let master = MasterKey::from_bytes(&[0x5a; 32]).unwrap();
    let shown = format!("{key:?} {master:?}");
    assert!(
        !shown.contains("5a5a") && !shown.contains("90, 90"),
        "{shown}"
    );
}
