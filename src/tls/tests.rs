//! The pair loader and the reloading resolver, with certificates made here by rcgen.

use std::path::Path;

use super::*;

/// Writes a fresh self-signed pair for `name` (key mode 0600) and returns its files.
fn write_pair(dir: &Path, stem: &str, name: &str) -> TlsFiles {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("a certificate");
    let files = TlsFiles {
        cert: dir.join(format!("{stem}.crt")),
        key: dir.join(format!("{stem}.key")),
    };
    std::fs::write(&files.cert, made.cert.pem()).expect("write cert");
    write_key(&files.key, &made.signing_key.serialize_pem());
    files
}

fn write_key(path: &Path, pem: &str) {
    std::fs::write(path, pem).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

fn leaf(resolver: &ReloadingResolver) -> Vec<u8> {
    resolver.current().cert[0].to_vec()
}

#[test]
fn a_pair_loads_and_reloads_and_a_bad_new_pair_keeps_the_old() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = write_pair(dir.path(), "live", "one.example");
    let resolver = ReloadingResolver::load(files.clone(), provider()).expect("loads");
    let first = leaf(&resolver);

    // Renewed: the same paths now hold another pair.
    let renewed = write_pair(dir.path(), "renewed", "two.example");
    std::fs::copy(&renewed.cert, &files.cert).expect("copy cert");
    std::fs::copy(&renewed.key, &files.key).expect("copy key");
    resolver.reload().expect("reloads");
    let second = leaf(&resolver);
    assert_ne!(first, second, "the new certificate is served");

    // A broken renewal: half a file.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").expect("write");
    assert!(resolver.reload().is_err());
    assert_eq!(leaf(&resolver), second, "the old pair stays");
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = write_pair(dir.path(), "a", "a.example");
    let b = write_pair(dir.path(), "b", "b.example");
    let mixed = TlsFiles {
        cert: a.cert.clone(),
        key: b.key.clone(),
    };
    let err = ReloadingResolver::load(mixed, provider()).expect_err("mismatch");
    assert!(matches!(err, PairError::Mismatch { .. }), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("a.crt") && shown.contains("b.key"),
        "{shown}"
    );
}

#[test]
fn missing_or_wrong_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = write_pair(dir.path(), "good", "a.example");
    let missing = TlsFiles {
        cert: dir.path().join("absent.crt"),
        key: good.key.clone(),
    };
    let err = ReloadingResolver::load(missing, provider()).expect_err("missing");
    assert!(err.to_string().contains("absent.crt"), "{err}");
    assert!(err.to_string().contains("--tls-cert"), "{err}");

    // The key given as the certificate, and the certificate as the key.
    let swapped = TlsFiles {
        cert: good.key.clone(),
        key: good.key.clone(),
    };
    let err = ReloadingResolver::load(swapped, provider()).expect_err("no certificate");
    assert!(matches!(err, PairError::NoCertificate { .. }), "{err}");
    let cert_as_key = dir.path().join("cert-as-key.pem");
    write_key(
        &cert_as_key,
        &std::fs::read_to_string(&good.cert).expect("read"),
    );
    let swapped = TlsFiles {
        cert: good.cert.clone(),
        key: cert_as_key,
    };
    let err = ReloadingResolver::load(swapped, provider()).expect_err("no key");
    assert!(matches!(err, PairError::NoKey { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn a_key_open_to_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let files = write_pair(dir.path(), "open", "a.example");
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = ReloadingResolver::load(files, provider()).expect_err("open key");
    assert!(matches!(err, PairError::NotPrivate(_)), "{err}");
    assert!(err.to_string().contains("--tls-key"), "{err}");
}
