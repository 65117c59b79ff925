//! `resolve_in_vault`: the one gate from a user-supplied path to a real path.

use std::os::unix::fs::symlink;

use parachute_core::vault::{resolve_in_vault, VaultPathError};

#[test]
fn resolve_in_vault_table() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = tmp.path().join("vault");
    let sibling = tmp.path().join("vault2");
    let outside = tmp.path().join("outside");
    for d in [&vault, &sibling, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::create_dir_all(vault.join("Notes/sub")).unwrap();
    std::fs::write(vault.join("Notes/a.md"), "a").unwrap();
    std::fs::write(outside.join("secret.txt"), "s").unwrap();
    std::fs::write(sibling.join("x.md"), "x").unwrap();
    symlink(outside.join("secret.txt"), vault.join("leaf-link.txt")).unwrap();
    symlink(&outside, vault.join("link-out")).unwrap();
    symlink(vault.join("Notes"), vault.join("notes-alias")).unwrap();
    symlink(tmp.path().join("nowhere"), vault.join("dangling")).unwrap();
    let root = vault.canonicalize().unwrap();

    let ok: &[(&str, std::path::PathBuf)] = &[
        ("Notes/a.md", root.join("Notes/a.md")),
        ("./Notes/a.md", root.join("Notes/a.md")),
        ("Notes/new/file.md", root.join("Notes/new/file.md")),
        ("notes-alias/a.md", root.join("Notes/a.md")),
        ("", root.clone()),
        ("%2e%2efoo", root.join("%2e%2efoo")),
    ];
    for (input, want) in ok {
        assert_eq!(
            resolve_in_vault(&vault, input).as_ref(),
            Ok(want),
            "{input}"
        );
    }
    // The result names the file itself: it can be read (no trailing separator).
    let a = resolve_in_vault(&vault, "Notes/a.md").unwrap();
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "a");
    assert!(!a.to_string_lossy().ends_with('/'));
    let abs_inside = vault.join("Notes/a.md").display().to_string();
    assert_eq!(
        resolve_in_vault(&vault, &abs_inside),
        Ok(root.join("Notes/a.md"))
    );

    let refused: Vec<String> = vec![
        "..".into(),
        "../outside/secret.txt".into(),
        "Notes/../../outside".into(),
        "Notes/../a.md".into(),
        "/etc/passwd".into(),
        outside.join("secret.txt").display().to_string(),
        sibling.join("x.md").display().to_string(),
        "../vault2/x.md".into(),
        "leaf-link.txt".into(),
        "link-out".into(),
        "link-out/secret.txt".into(),
        "link-out/new-file.txt".into(),
        "dangling".into(),
        "%2e%2e".into(),
        "Notes/%2E%2E/%2e%2e/outside".into(),
        "a%2fb".into(),
        "nul\0byte".into(),
    ];
    for input in &refused {
        let r = resolve_in_vault(&vault, input);
        assert!(r.is_err(), "{input:?} should be refused, got {r:?}");
    }
    assert_eq!(
        resolve_in_vault(&vault, "link-out/secret.txt"),
        Err(VaultPathError::OutsideVault)
    );
}

#[test]
fn a_missing_vault_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let r = resolve_in_vault(&tmp.path().join("missing"), "a.md");
    assert!(matches!(r, Err(VaultPathError::VaultMissing(_))));
}
