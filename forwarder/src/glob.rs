//! A tiny glob matcher for `--only-type` and `--except-type`: `*` matches any run of characters
//! (the empty one too), `?` matches exactly one character, and every other character matches
//! itself. There is no escape and no character class; matching is case-sensitive and works on
//! Unicode characters, not bytes.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A glob pattern, e.g. `com.example.*` or `sensor.?.reading`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob(String);

/// Whether `text` matches `pattern` as a whole.
///
/// Runs in O(pattern × text) at worst, without recursion: on a mismatch only the last `*` is
/// retried, one character further.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (mut pattern_rest, mut text_rest) = (pattern, text);
    // Where to resume after the last `*`: the pattern after it, and the text it stopped at.
    let mut star: Option<(&str, &str)> = None;
    loop {
        let mut pattern_chars = pattern_rest.chars();
        let mut text_chars = text_rest.chars();
        match (pattern_chars.next(), text_chars.next()) {
            (Some('*'), _) => {
                pattern_rest = pattern_chars.as_str();
                star = Some((pattern_rest, text_rest));
                continue;
            }
            (Some(p), Some(t)) if p == '?' || p == t => {
                pattern_rest = pattern_chars.as_str();
                text_rest = text_chars.as_str();
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        // A mismatch: let the last `*` take one more character, if there is one.
        let Some((after_star, star_text)) = star else {
            return false;
        };
        let mut star_chars = star_text.chars();
        if star_chars.next().is_none() {
            return false;
        }
        pattern_rest = after_star;
        text_rest = star_chars.as_str();
        star = Some((after_star, text_rest));
    }
}

impl Glob {
    /// A glob from its pattern; every pattern is valid.
    pub fn new(pattern: impl Into<String>) -> Glob {
        Glob(pattern.into())
    }

    /// Whether `text` matches this pattern as a whole.
    pub fn matches(&self, text: &str) -> bool {
        glob_match(&self.0, text)
    }

    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Glob {
    type Err = Infallible;

    fn from_str(pattern: &str) -> Result<Glob, Infallible> {
        Ok(Glob::new(pattern))
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `pattern` against texts that must match and texts that must not.
    fn check(pattern: &str, matching: &[&str], not_matching: &[&str]) {
        let glob: Glob = pattern.parse().expect("every pattern is valid");
        assert_eq!(glob.as_str(), pattern);
        assert_eq!(glob.to_string(), pattern);
        for text in matching {
            assert!(glob.matches(text), "{pattern:?} should match {text:?}");
        }
        for text in not_matching {
            assert!(!glob.matches(text), "{pattern:?} should not match {text:?}");
        }
    }

    #[test]
    fn literal() {
        check(
            "com.example.created",
            &["com.example.created"],
            &[
                "",
                "com.example.create",
                "com.example.createdx",
                "COM.example.created",
            ],
        );
        check("", &[""], &["a"]);
        check("é中😀", &["é中😀"], &["e中😀", "é中"]);
    }

    #[test]
    fn star() {
        check("*", &["", "a", "anything at all", "😀"], &[]);
        check("**", &["", "abc"], &[]);
        check(
            "com.example.*",
            &["com.example.", "com.example.created", "com.example.a.b"],
            &["com.example", "org.example.created"],
        );
        check("*.created", &[".created", "a.b.created"], &["a.created.x"]);
        check(
            "a*b*c",
            &["abc", "aXbYc", "abbbc", "acbc", "abcbc"],
            &["ab", "acb", "abcd"],
        );
        check("*a*", &["a", "bab", "aaa"], &["", "bcd"]);
        check(
            "a*a*a*a*b",
            &["aaaab", "aXaXaXaXb"],
            &["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        );
    }

    #[test]
    fn question_mark() {
        check("?", &["a", "é", "😀"], &["", "ab"]);
        check(
            "sensor.?.reading",
            &["sensor.1.reading", "sensor.é.reading"],
            &["sensor..reading", "sensor.12.reading"],
        );
        check("??*", &["ab", "abc"], &["", "a"]);
        check("*?", &["a", "abc"], &[""]);
        check("a?c*", &["abc", "abcdef"], &["ac", "abd"]);
    }

    #[test]
    fn long_inputs_stay_fast() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!glob_match(&pattern, &text));
        assert!(glob_match(&"*a".repeat(50), &text));
    }
}
