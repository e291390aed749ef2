//! The shipped skill carries every rule of the original plume-image skill: each phrase in
//! `skill/plume-image/required-phrases.txt` must appear in `SKILL.md` (case and line breaks
//! aside).

use std::path::{Path, PathBuf};

fn skill_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../skill/plume-image")
}

fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The required phrases that `skill_md` does not contain.
fn missing(skill_md: &str) -> Vec<String> {
    let text = normalise(skill_md);
    let phrases = std::fs::read_to_string(skill_dir().join("required-phrases.txt")).unwrap();
    let wanted: Vec<&str> = phrases
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(wanted.len() > 40, "the phrase list lost its rules");
    wanted
        .into_iter()
        .filter(|p| !text.contains(&normalise(p)))
        .map(String::from)
        .collect()
}

#[test]
fn skill_md_keeps_every_rule_of_the_original() {
    let skill_md = std::fs::read_to_string(skill_dir().join("SKILL.md")).unwrap();
    let gone = missing(&skill_md);
    assert!(gone.is_empty(), "SKILL.md no longer says: {gone:#?}");
}

#[test]
fn dropping_a_rule_from_skill_md_is_caught() {
    let skill_md = std::fs::read_to_string(skill_dir().join("SKILL.md")).unwrap();
    let edited: String = skill_md
        .lines()
        .filter(|l| !l.contains("Never sleep to wait"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(missing(&edited), vec!["Never sleep to wait".to_string()]);
}
