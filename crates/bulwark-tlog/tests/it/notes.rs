//! C2SP signed notes: the published examples (C2SP spec, Go's note
//! package), round trips, and the hostile fixtures in `test_data/note/`.

use crate::common::{data_path, fixtures};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bulwark_tlog::{Error, MAX_SIGNATURES, NoteSigner, NoteVerifier, SignerId, open};
use expect_test::expect;

/// The verifier keys of `test_data/note/verifiers.txt`.
fn verifiers() -> Vec<NoteVerifier> {
    std::fs::read_to_string(data_path("note/verifiers.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| NoteVerifier::from_vkey(l).unwrap())
        .collect()
}

const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";

/// Go's example signer key, from the golang.org/x/mod/sumdb/note package
/// documentation (https://github.com/golang/mod/blob/master/sumdb/note/note.go):
/// `PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>`.
fn peter_neumann() -> NoteSigner {
    let raw = B64
        .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
        .unwrap();
    assert_eq!(raw[0], 0x01);
    NoteSigner::new("PeterNeumann", &raw[1..].try_into().unwrap()).unwrap()
}

#[test]
fn go_example_signer_reproduces_the_published_key_and_note() {
    let signer = peter_neumann();
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(
        signer.verifier_key(),
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    );
    // Ed25519 is deterministic, so the note is byte-for-byte Go's example.
    let note = signer.sign(GO_TEXT).unwrap();
    let published = std::fs::read_to_string(data_path("note/valid/go_peter_neumann.note")).unwrap();
    assert_eq!(note, published);
}

#[test]
fn c2sp_example_key_verifies_the_spec_note() {
    // https://github.com/C2SP/C2SP/blob/main/signed-note.md, "Verifier keys / Example".
    let v = NoteVerifier::from_vkey(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    )
    .unwrap();
    assert_eq!(v.name(), "example.com/foo");
    assert_eq!(v.key_id(), 0x530d903a);
    let note = "This is an example message.\n\n\u{2014} example.com/foo \
                Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let verified = open(note, std::slice::from_ref(&v)).unwrap();
    assert_eq!(verified.text, "This is an example message.\n");
    assert_eq!(
        verified.signers,
        vec![SignerId {
            name: v.name().into(),
            key_id: v.key_id()
        }]
    );
}

#[test]
fn valid_fixtures_open() {
    let verifiers = verifiers();
    let mut report = String::new();
    for (name, note) in fixtures("note/valid") {
        let v = open(&note, &verifiers).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(note.starts_with(&v.text), "{name}");
        let signers: Vec<String> = v
            .signers
            .iter()
            .map(|s| format!("{}+{:08x}", s.name, s.key_id))
            .collect();
        report.push_str(&format!("{name}: {}\n", signers.join(", ")));
    }
    expect![[r#"
        c2sp_spec_example.note: example.com/foo+530d903a
        go_duplicate_signature.note: PeterNeumann+c74f20a3
        go_peter_and_enoch.note: PeterNeumann+c74f20a3, EnochRoot+af0cfe78
        go_peter_and_unknown_witness.note: PeterNeumann+c74f20a3
        go_peter_neumann.note: PeterNeumann+c74f20a3
    "#]]
    .assert_eq(&report);
}

#[test]
fn invalid_fixtures_are_rejected() {
    let verifiers = verifiers();
    let mut report = String::new();
    for (name, note) in fixtures("note/invalid") {
        match open(&note, &verifiers) {
            Ok(v) => panic!("{name} opened: {v:?}"),
            Err(e) => report.push_str(&format!("{name}: {e}\n")),
        }
    }
    expect![[r#"
        bad_then_good_same_key.note: invalid signature by key PeterNeumann+c74f20a3
        blank_line_after_signatures.note: malformed note: no signature lines after the last blank line
        blank_line_without_signatures.note: malformed note: no signature lines after the last blank line
        control_character.note: malformed note: control character
        crlf.note: malformed note: control character
        empty_signature.note: malformed note: signature is too short
        en_dash_instead_of_em_dash.note: malformed note: signature line must start with an em dash and a space
        good_and_bad_known_signatures.note: invalid signature by key EnochRoot+af0cfe78
        hyphen_instead_of_em_dash.note: malformed note: signature line must start with an em dash and a space
        known_key_id_other_name.note: note has no signature by a known key
        known_name_unknown_key_id.note: note has no signature by a known key
        name_with_plus.note: malformed note: invalid key name in signature line
        name_with_space.note: malformed note: signature is not valid base64
        no_signature_after_name.note: malformed note: signature line has no signature
        no_space_after_dash.note: malformed note: signature line must start with an em dash and a space
        signature_not_base64.note: malformed note: signature is not valid base64
        signature_only_key_id.note: malformed note: signature is too short
        signature_without_final_newline.note: malformed note: signature block must end with a newline
        tampered_signature.note: invalid signature by key PeterNeumann+c74f20a3
        tampered_text.note: invalid signature by key PeterNeumann+c74f20a3
        text_only.note: malformed note: no blank line before signatures
        too_many_signatures.note: note has 101 signatures, at most 100 are accepted
        too_many_unknown_signatures.note: note has 101 signatures, at most 100 are accepted
        truncated_ed25519_signature.note: invalid signature by key PeterNeumann+c74f20a3
        unexpected_line_after_signature.note: malformed note: signature line must start with an em dash and a space
        unknown_key_only.note: note has no signature by a known key
    "#]]
    .assert_eq(&report);
}

#[test]
fn unknown_signatures_need_a_known_one() {
    let peter = peter_neumann();
    let note = peter.sign(GO_TEXT).unwrap();
    // Only the other key configured: the note is not trusted.
    let other = NoteSigner::new("PeterNeumann", &[9; 32]).unwrap();
    assert!(matches!(
        open(&note, &[other.verifier()]),
        Err(Error::NoKnownSignature)
    ));
    assert!(matches!(open(&note, &[]), Err(Error::NoKnownSignature)));
    // Both configured: the known one suffices.
    let v = open(&note, &[other.verifier(), peter.verifier()]).unwrap();
    assert_eq!(v.signers.len(), 1);
}

/// The signature line a signer adds to `text`.
fn sig_line(signer: &NoteSigner, text: &str) -> String {
    signer.sign(text).unwrap()[text.len() + 1..].to_owned()
}

#[test]
fn round_trips_and_cosignatures() {
    let log = NoteSigner::new("audit.example/fleet", &[1; 32]).unwrap();
    let witness = NoteSigner::new("witness.example/w1", &[2; 32]).unwrap();
    let texts = [
        "one line\n",
        "\n",
        "two\n\nparagraphs\n",
        "ends with blank lines\n\n\n",
        "ünïcödé — and em dashes\n— even at line start\n",
    ];
    for text in texts {
        let note = format!(
            "{text}\n{}{}",
            sig_line(&log, text),
            sig_line(&witness, text)
        );
        assert_eq!(
            note,
            format!("{}{}", log.sign(text).unwrap(), sig_line(&witness, text))
        );
        let both = open(&note, &[log.verifier(), witness.verifier()]).unwrap();
        assert_eq!(both.text, text);
        assert_eq!(both.signers.len(), 2);
        let just_log = open(&note, &[log.verifier()]).unwrap();
        assert_eq!(just_log.signers[0].name, "audit.example/fleet");
        // The vkey string round-trips.
        let v = NoteVerifier::from_vkey(&log.verifier_key()).unwrap();
        assert_eq!(v, log.verifier());
        assert_eq!(v.to_vkey(), log.verifier_key());
        assert_eq!(v.public_key(), log.public_key());
    }
}

#[test]
fn exactly_max_signatures_are_accepted() {
    let peter = peter_neumann();
    let line = sig_line(&peter, GO_TEXT);
    let note = format!("{GO_TEXT}\n{}", line.repeat(MAX_SIGNATURES));
    assert_eq!(open(&note, &[peter.verifier()]).unwrap().signers.len(), 1);
    let note = format!("{GO_TEXT}\n{}", line.repeat(MAX_SIGNATURES + 1));
    assert!(matches!(
        open(&note, &[peter.verifier()]),
        Err(Error::TooManySignatures {
            count: 101,
            max: 100
        })
    ));
}

#[test]
fn sign_rejects_invalid_text() {
    let s = NoteSigner::new("audit.example/fleet", &[1; 32]).unwrap();
    let mut report = String::new();
    for text in [
        "",
        "no newline",
        "tab\there\n",
        "crlf\r\n",
        "nul\0\n",
        "bell\x07\n",
    ] {
        report.push_str(&format!("{text:?}: {}\n", s.sign(text).unwrap_err()));
    }
    expect![[r#"
        "": invalid note text: text must end with a newline
        "no newline": invalid note text: text must end with a newline
        "tab\there\n": invalid note text: text contains a control character
        "crlf\r\n": invalid note text: text contains a control character
        "nul\0\n": invalid note text: text contains a control character
        "bell\u{7}\n": invalid note text: text contains a control character
    "#]]
    .assert_eq(&report);
}

#[test]
fn key_names_are_checked() {
    for bad in [
        "",
        "a b",
        "a+b",
        "a\nb",
        "tab\t",
        "nbsp\u{a0}",
        "em\u{2003}space",
        "ctl\x01",
    ] {
        assert!(
            matches!(
                NoteSigner::new(bad, &[0; 32]),
                Err(Error::InvalidKeyName(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(
            NoteVerifier::new(bad, [0; 32]),
            Err(Error::InvalidKeyName(_))
        ));
    }
    assert!(NoteSigner::new("ünï/cödé", &[0; 32]).is_ok());
}

#[test]
fn malformed_verifier_keys_are_rejected() {
    let good = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert!(NoteVerifier::from_vkey(good).is_ok());
    assert!(NoteVerifier::from_vkey(&good.replace("c74f20a3", "C74F20A3")).is_ok());
    let two_byte_key = B64.encode([0x02; 33]);
    let short_key = B64.encode([0x01; 32]);
    let cases = [
        String::new(),
        "PeterNeumann".into(),
        "PeterNeumann+c74f20a3".into(),
        good.replace("c74f20a3", "c74f20a4"),
        good.replace("c74f20a3", "c74f20a"),
        good.replace("c74f20a3", "c74f20a3a"),
        good.replace("c74f20a3", "+74f20a3"),
        good.replace("c74f20a3", "c74f20ag"),
        good.replace("PeterNeumann", "Peter Neumann"),
        good.replace("PeterNeumann", "PeterNeumann2"),
        good.replace("ARpc", "AR!c"),
        good.trim_end_matches('W').into(),
        format!("PeterNeumann+c74f20a3+{two_byte_key}"),
        format!("PeterNeumann+c74f20a3+{short_key}"),
        "PeterNeumann+c74f20a3+".into(),
    ];
    let mut report = String::new();
    for vkey in &cases {
        report.push_str(&format!(
            "{vkey:?}: {}\n",
            NoteVerifier::from_vkey(vkey).unwrap_err()
        ));
    }
    expect![[r#"
        "": malformed verifier key: expected <name>+<key id>+<key>
        "PeterNeumann": malformed verifier key: expected <name>+<key id>+<key>
        "PeterNeumann+c74f20a3": malformed verifier key: expected <name>+<key id>+<key>
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": verifier key id does not match its name and public key
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": malformed verifier key: key id is not 8 hex digits
        "PeterNeumann+c74f20a3a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": malformed verifier key: key id is not 8 hex digits
        "PeterNeumann++74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": malformed verifier key: key id is not 8 hex digits
        "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": malformed verifier key: key id is not 8 hex digits
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": invalid key name "Peter Neumann"
        "PeterNeumann2+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": verifier key id does not match its name and public key
        "PeterNeumann+c74f20a3+AR!c2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": malformed verifier key: key is not valid base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T": malformed verifier key: key is not valid base64
        "PeterNeumann+c74f20a3+AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC": unsupported verifier key type 0x02
        "PeterNeumann+c74f20a3+AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=": malformed verifier key: ed25519 key is not 32 bytes
        "PeterNeumann+c74f20a3+": malformed verifier key: key is empty
    "#]]
    .assert_eq(&report);
}

#[test]
fn signer_debug_hides_the_key() {
    let seed = [0xab; 32];
    let s = NoteSigner::new("audit.example/fleet", &seed).unwrap();
    let debug = format!("{s:?}");
    expect![[r#"NoteSigner { name: "audit.example/fleet", key_id: 2816211c, key: [redacted] }"#]]
        .assert_eq(&debug);
    assert!(!debug.to_lowercase().contains("abab"));
    assert!(!debug.contains(&B64.encode(seed)));
}
