//! Bad rule directories and hostile inputs: each must give a clear error
//! value, never a panic, and never stop the scan of other files.

use std::time::Duration;

use bulwark_yara::{MAX_RULE_FILE_BYTES, Rules, Scanner, YaraError};

use crate::fixture;

#[track_caller]
fn compile_errors(case: &str) -> Vec<bulwark_yara::RuleDiagnostic> {
    match Rules::compile_dir(&fixture(&format!("bad-rules/{case}"))) {
        Err(YaraError::Compile { errors }) => errors,
        other => panic!("{case}: expected a compile error, got {other:?}"),
    }
}

#[test]
fn syntax_error_names_file_and_line() {
    let errors = compile_errors("syntax-error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, "broken.yar");
    assert_eq!(errors[0].line, Some(6), "{}", errors[0]);
    let shown = YaraError::Compile { errors }.to_string();
    assert!(
        shown.starts_with("rules failed to compile: broken.yar:6: "),
        "{shown}"
    );
}

#[test]
fn module_left_out_of_the_build_is_a_compile_error() {
    let errors = compile_errors("unknown-module");
    assert_eq!(errors[0].file, "uses_dotnet.yar");
    assert_eq!(errors[0].line, Some(1), "{}", errors[0]);
    assert!(errors[0].message.contains("dotnet"), "{}", errors[0]);
}

#[test]
fn binary_rule_file_is_a_compile_error() {
    let errors = compile_errors("binary");
    assert_eq!(errors[0].file, "garbage.yar");
}

#[test]
fn oversized_rule_file_is_refused_before_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = "rule r { condition: true }\n";
    let copies = (MAX_RULE_FILE_BYTES as usize) / rule.len() + 1;
    std::fs::write(dir.path().join("huge.yar"), rule.repeat(copies)).expect("write");
    let err = Rules::compile_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, YaraError::RuleFileTooLarge { file, .. } if file == "huge.yar"),
        "{err:?}"
    );
}

#[test]
fn empty_dir_and_missing_dir_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("README.md"), "not a rule").expect("write");
    std::fs::create_dir(dir.path().join("nested.yar")).expect("mkdir");
    assert!(matches!(
        Rules::compile_dir(dir.path()),
        Err(YaraError::NoRuleFiles { .. })
    ));
    assert!(matches!(
        Rules::compile_dir(&dir.path().join("missing")),
        Err(YaraError::ReadRulesDir { .. })
    ));
}

#[test]
fn subdirectories_and_hidden_files_are_not_compiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yar"), "rule a { condition: true }").expect("write");
    std::fs::write(dir.path().join(".hidden.yar"), "broken").expect("write");
    std::fs::create_dir(dir.path().join("disabled")).expect("mkdir");
    std::fs::write(dir.path().join("disabled/b.yar"), "broken").expect("write");
    let rules = Rules::compile_dir(dir.path()).expect("compile");
    assert_eq!(rules.namespaces(), ["a"]);
}

#[test]
fn timeout_is_an_error_for_that_file_only() {
    let rules = Rules::compile_dir(&fixture("slow-rules")).expect("compile");
    let mut scanner = Scanner::new(&rules);
    scanner.set_timeout(Duration::from_secs(1));
    let big = vec![0u8; 1 << 20];
    match scanner.scan("big.bin", &big) {
        Err(YaraError::Timeout { path, timeout }) => {
            assert_eq!(path, "big.bin");
            assert_eq!(timeout, Duration::from_secs(1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The same scanner goes on with the next file of the artifact.
    let hits = scanner.scan("tiny.bin", b"ab").expect("small file scans");
    assert_eq!(hits.len(), 1);
}

#[test]
fn unreadable_file_in_a_batch_does_not_stop_the_others() {
    let rules = Rules::compile_dir(&fixture("rules")).expect("compile");
    let paths = [fixture("files/missing-file"), fixture("files/eicar.com")];
    let scans = bulwark_yara::scan_paths(
        &rules,
        &paths,
        std::num::NonZeroUsize::MIN,
        Duration::from_secs(10),
    );
    assert!(matches!(scans[0].result, Err(YaraError::ReadFile { .. })));
    assert_eq!(scans[1].result.as_ref().expect("scans").len(), 1);
}

#[test]
fn binary_garbage_scans_without_error() {
    let rules = Rules::compile_dir(&fixture("rules")).expect("compile");
    let mut scanner = Scanner::new(&rules);
    // A truncated ELF header followed by garbage: the elf and pe modules
    // must reject it quietly.
    let mut data = b"\x7fELF\x01\x01\x01\x00".to_vec();
    data.extend((0..=255u8).cycle().take(3000));
    assert!(scanner.scan("truncated.elf", &data).is_ok());
    let mut pe = b"MZ".to_vec();
    pe.extend([0xff; 200]);
    assert!(scanner.scan("truncated.exe", &pe).is_ok());
}
