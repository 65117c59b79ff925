use super::*;

fn setup() -> (tempfile::TempDir, Modules) {
    let d = tempfile::tempdir().unwrap();
    let m = Modules::new(
        d.path().join(".modules"),
        d.path().join(".parachute/module_hashes.json"),
    );
    (d, m)
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn status(m: &Modules, name: &str) -> ModuleStatus {
    m.get(name).unwrap().status
}

#[test]
fn bundled_modules_install_and_load_once() {
    let (_d, m) = setup();
    assert_eq!(m.install_bundled().unwrap(), vec!["brain", "chat", "daily"]);
    let list = m.list().unwrap();
    assert!(list
        .iter()
        .all(|v| v.status == ModuleStatus::Loaded && v.bundled));
    // Recorded, so a deleted bundled module is not reinstalled.
    std::fs::remove_dir_all(m.dir().join("chat")).unwrap();
    assert!(m.install_bundled().unwrap().is_empty());
    assert!(m.get("chat").is_err());
}

#[test]
fn an_edit_to_a_bundled_module_waits_and_survives() {
    let (_d, m) = setup();
    m.install_bundled().unwrap();
    m.list().unwrap();
    write(m.dir(), "brain/CLAUDE.md", "my own brain prompt");
    let v = m.get("brain").unwrap();
    assert_eq!(v.status, ModuleStatus::PendingApproval);
    assert_eq!(v.approval, Some("modified"));
    assert_eq!(v.changes.unwrap().modified, vec!["CLAUDE.md"]);
    assert!(m.install_bundled().unwrap().is_empty());
    assert_eq!(
        std::fs::read_to_string(m.dir().join("brain/CLAUDE.md")).unwrap(),
        "my own brain prompt"
    );
    m.approve("brain", None, None).unwrap();
    assert_eq!(status(&m, "brain"), ModuleStatus::Loaded);
}

#[test]
fn a_new_module_waits_and_a_tampered_byte_disables_it() {
    let (_d, m) = setup();
    write(
        m.dir(),
        "notes/manifest.yaml",
        "name: notes\nrequests: {skills: [tidy]}\n",
    );
    write(
        m.dir(),
        "notes/skills/tidy.md",
        "---\nname: tidy\n---\nTidy notes.\n",
    );
    let v = m.get("notes").unwrap();
    assert_eq!(v.status, ModuleStatus::PendingApproval);
    assert_eq!(v.approval, Some("new"));
    assert_eq!(v.requests.skills, vec!["tidy"]);
    assert!(m.enabled().is_empty());
    // Bound to the tree the owner saw.
    assert!(matches!(
        m.approve("notes", None, Some("000000000000")),
        Err(ModuleError::Changed(_))
    ));
    let hash = v.current_hash.unwrap();
    m.approve("notes", Some(TrustLevel::Sandboxed), Some(&hash[..12]))
        .unwrap();
    let enabled = m.enabled();
    assert_eq!(enabled.len(), 1);
    assert_eq!(enabled[0].trust_level, TrustLevel::Sandboxed);
    assert!(matches!(
        m.approve("notes", None, None),
        Err(ModuleError::NotPending(_))
    ));
    // One byte in a file that is not the manifest.
    write(
        m.dir(),
        "notes/skills/tidy.md",
        "---\nname: tidy\n---\nTidy notes!\n",
    );
    assert_eq!(status(&m, "notes"), ModuleStatus::PendingApproval);
    assert!(m.enabled().is_empty());
}

#[test]
fn malformed_modules_are_reported_not_fatal() {
    let (_d, m) = setup();
    write(m.dir(), "broken/manifest.yaml", "name: [oops\n");
    write(m.dir(), "sneaky/manifest.yaml", "name: sneaky\n");
    write(m.dir(), "sneaky/hooks/run.sh", "#!/bin/sh\n");
    write(m.dir(), "Bad Name/manifest.yaml", "name: x\n");
    write(m.dir(), "fine/manifest.yaml", "name: fine\n");
    let list = m.list().unwrap();
    let by = |n: &str| list.iter().find(|v| v.name == n).unwrap().clone();
    assert_eq!(by("broken").status, ModuleStatus::Invalid);
    assert!(by("broken").error.unwrap().contains("does not parse"));
    assert!(by("sneaky").error.unwrap().contains("hooks: run.sh"));
    assert_eq!(by("Bad Name").status, ModuleStatus::Invalid);
    assert_eq!(by("fine").status, ModuleStatus::PendingApproval);
    assert!(matches!(
        m.approve("sneaky", None, None),
        Err(ModuleError::Invalid { .. })
    ));
    assert!(matches!(
        m.approve("ghost", None, None),
        Err(ModuleError::NotFound(_))
    ));
    // The level asked for is a ceiling.
    write(
        m.dir(),
        "boxed/manifest.yaml",
        "name: boxed\ntrust_level: sandboxed\n",
    );
    assert!(matches!(
        m.approve("boxed", Some(TrustLevel::Full), None),
        Err(ModuleError::AboveRequested { .. })
    ));
}

#[cfg(unix)]
#[test]
fn a_symlink_in_a_module_makes_it_invalid() {
    let (_d, m) = setup();
    write(m.dir(), "linky/manifest.yaml", "name: linky\n");
    std::os::unix::fs::symlink("/etc/passwd", m.dir().join("linky/passwd")).unwrap();
    let v = m.get("linky").unwrap();
    assert_eq!(v.status, ModuleStatus::Invalid);
    assert!(v.error.unwrap().contains("symlink"));
}

#[test]
fn an_untouched_older_bundled_version_is_upgraded_and_an_edited_one_kept() {
    let (d, m) = setup();
    m.install_bundled().unwrap();
    m.list().unwrap();
    // Pretend chat and daily were installed by an older version: their trees differ
    // from the embedded ones and are recorded as bundled approvals.
    write(m.dir(), "chat/CLAUDE.md", "old bundled text");
    write(m.dir(), "daily/CLAUDE.md", "old bundled text");
    let file = approvals::ApprovalFile::new(d.path().join(".parachute/module_hashes.json"));
    let mut all = file.read().unwrap();
    for name in ["chat", "daily"] {
        let old = tree::digest_dir(&m.dir().join(name)).unwrap();
        let a = all.get_mut(name).unwrap();
        a.hash = old.hash;
        a.files = old.files;
    }
    file.write(&all).unwrap();
    // The owner edited daily after that version installed it.
    write(m.dir(), "daily/CLAUDE.md", "my daily notes");
    assert_eq!(m.install_bundled().unwrap(), vec!["chat"]);
    assert!(std::fs::read_to_string(m.dir().join("chat/CLAUDE.md"))
        .unwrap()
        .starts_with("# Chat"));
    assert_eq!(
        std::fs::read_to_string(m.dir().join("daily/CLAUDE.md")).unwrap(),
        "my daily notes"
    );
    assert_eq!(status(&m, "chat"), ModuleStatus::Loaded);
    assert_eq!(status(&m, "daily"), ModuleStatus::PendingApproval);
    let leftovers: Vec<_> = std::fs::read_dir(m.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}
