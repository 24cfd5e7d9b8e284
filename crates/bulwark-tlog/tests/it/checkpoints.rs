//! C2SP checkpoints: the fixtures in `test_data/checkpoint/`, the spec's
//! example, and signing/opening round trips.

use crate::common::fixtures;
use bulwark_tlog::{Checkpoint, Error, NoteSigner, empty_root};
use expect_test::expect;

#[test]
fn valid_fixtures_parse_and_round_trip() {
    let mut report = String::new();
    for (name, text) in fixtures("checkpoint/valid") {
        let cp = Checkpoint::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cp.to_text(), text, "{name} re-encodes byte for byte");
        cp.validate().unwrap();
        report.push_str(&format!(
            "{name}: origin={:?} size={} root={:02x}{:02x}.. ext={:?}\n",
            cp.origin, cp.size, cp.root_hash[0], cp.root_hash[1], cp.extensions
        ));
    }
    expect![[r#"
        c2sp_spec_example.txt: origin="example.com/behind-the-sofa" size=20852163 root=0ac5.. ext=[]
        empty_tree.txt: origin="example.com/log" size=0 root=e3b0.. ext=[]
        extension_lines.txt: origin="example.com/log" size=1 root=0ac5.. ext=["first extension", "second: extension"]
        max_size.txt: origin="example.com/log" size=18446744073709551615 root=0ac5.. ext=[]
        origin_with_space.txt: origin="Bulwark audit log" size=7 root=0ac5.. ext=[]
    "#]]
    .assert_eq(&report);
}

#[test]
fn invalid_fixtures_are_rejected() {
    let mut report = String::new();
    for (name, text) in fixtures("checkpoint/invalid") {
        match Checkpoint::parse(&text) {
            Ok(cp) => panic!("{name} parsed: {cp:?}"),
            Err(e) => report.push_str(&format!("{name}: {e}\n")),
        }
    }
    expect![[r#"
        bad_base64_root.txt: malformed checkpoint: root hash is not valid base64
        crlf_line_endings.txt: malformed checkpoint: control character
        double_zero_size.txt: malformed checkpoint: tree size has a leading zero
        empty.txt: malformed checkpoint: text must end with a newline
        empty_extension_between.txt: malformed checkpoint: empty extension line
        empty_extension_line.txt: malformed checkpoint: empty extension line
        empty_origin.txt: malformed checkpoint: empty origin
        empty_root_line.txt: malformed checkpoint: root hash is not 32 bytes
        empty_size.txt: malformed checkpoint: tree size is not a decimal number
        hex_size.txt: malformed checkpoint: tree size is not a decimal number
        leading_zero_size.txt: malformed checkpoint: tree size has a leading zero
        missing_root.txt: malformed checkpoint: fewer than three lines
        missing_size_and_root.txt: malformed checkpoint: fewer than three lines
        negative_size.txt: malformed checkpoint: tree size is not a decimal number
        no_final_newline.txt: malformed checkpoint: text must end with a newline
        non_canonical_root.txt: malformed checkpoint: root hash is not valid base64
        only_newline.txt: malformed checkpoint: fewer than three lines
        plus_sign_size.txt: malformed checkpoint: tree size is not a decimal number
        root_31_bytes.txt: malformed checkpoint: root hash is not 32 bytes
        root_33_bytes.txt: malformed checkpoint: root hash is not 32 bytes
        root_hex_encoded.txt: malformed checkpoint: root hash is not 32 bytes
        signed_note_not_body.txt: malformed checkpoint: empty extension line
        size_overflow.txt: malformed checkpoint: tree size does not fit in 64 bits
        size_with_space.txt: malformed checkpoint: tree size is not a decimal number
        tab_in_origin.txt: malformed checkpoint: control character
        trailing_garbage_without_newline.txt: malformed checkpoint: text must end with a newline
        unpadded_root.txt: malformed checkpoint: root hash is not valid base64
        url_safe_root.txt: malformed checkpoint: root hash is not valid base64
    "#]]
    .assert_eq(&report);
}

#[test]
fn spec_example_parses() {
    // https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md
    let cp = Checkpoint::parse(
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
    )
    .unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20_852_163);
    assert_eq!(&cp.root_hash[..4], &[0x0a, 0xc5, 0x18, 0x6a]);
    assert!(cp.extensions.is_empty());
}

#[test]
fn sign_and_open_round_trip() {
    let signer = NoteSigner::new("audit.example/fleet", &[3; 32]).unwrap();
    let mut cp = Checkpoint::new("audit.example/fleet", 42, [0x11; 32]);
    cp.extensions.push("timestamp 1700000000".into());
    let note = signer.sign(&cp.to_text()).unwrap();
    assert_eq!(cp.sign(&signer).unwrap(), note);
    let (opened, verified) = Checkpoint::open(&note, &[signer.verifier()]).unwrap();
    assert_eq!(opened, cp);
    assert_eq!(verified.text, cp.to_text());
    assert!(
        note.starts_with("audit.example/fleet\n42\nERERERERERERERERERERERERERERERERERERERERERE=\n")
    );

    // A signed note whose body is not a checkpoint.
    let note = signer.sign("not a checkpoint\n").unwrap();
    assert!(matches!(
        Checkpoint::open(&note, &[signer.verifier()]),
        Err(Error::MalformedCheckpoint(_))
    ));
    // A checkpoint signed by someone else.
    let stranger = NoteSigner::new("audit.example/fleet", &[4; 32]).unwrap();
    let note = cp.sign(&stranger).unwrap();
    assert!(matches!(
        Checkpoint::open(&note, &[signer.verifier()]),
        Err(Error::NoKnownSignature)
    ));
}

#[test]
fn invalid_fields_are_not_signed() {
    let signer = NoteSigner::new("log", &[5; 32]).unwrap();
    let good = Checkpoint::new("log", 0, empty_root());
    good.validate().unwrap();
    let mut report = String::new();
    let cases = [
        Checkpoint {
            origin: String::new(),
            ..good.clone()
        },
        Checkpoint {
            origin: "two\nlines".into(),
            ..good.clone()
        },
        Checkpoint {
            origin: "tab\t".into(),
            ..good.clone()
        },
        Checkpoint {
            extensions: vec![String::new()],
            ..good.clone()
        },
        Checkpoint {
            extensions: vec!["a\nb".into()],
            ..good.clone()
        },
        Checkpoint {
            extensions: vec!["ok".into(), "\n".into()],
            ..good.clone()
        },
    ];
    for cp in cases {
        assert!(cp.sign(&signer).is_err());
        report.push_str(&format!(
            "{:?}: {}\n",
            cp.to_text(),
            cp.validate().unwrap_err()
        ));
    }
    expect![[r#"
        "\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n": malformed checkpoint: empty origin
        "two\nlines\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n": malformed checkpoint: tree size is not a decimal number
        "tab\t\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n": malformed checkpoint: control character
        "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n": malformed checkpoint: empty extension line
        "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\na\nb\n": malformed checkpoint: a field contains a newline
        "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nok\n\n\n": malformed checkpoint: empty extension line
    "#]]
    .assert_eq(&report);
}
