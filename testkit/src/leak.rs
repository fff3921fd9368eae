//! Scanning what a program printed for a secret: whole, its first or last 16 characters, or
//! percent-encoded.

/// The forms a leaked `secret` may take: itself, its first and last 16 characters (when it is
/// long enough for those to identify it), and its percent-encoding.
pub fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    if secret.len() >= 24 && secret.is_ascii() {
        forms.push(secret[..16].to_owned());
        forms.push(secret[secret.len() - 16..].to_owned());
    }
    let encoded: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    if encoded != secret {
        forms.push(encoded);
    }
    forms
}

/// The first form of any of `secrets` that `text` holds.
pub fn find(text: &str, secrets: &[&str]) -> Option<String> {
    secrets
        .iter()
        .flat_map(|secret| forms(secret))
        .find(|form| text.contains(form.as_str()))
}

/// Panics, naming `label` and the form found, when `text` holds any of `secrets`.
pub fn assert_clean(label: &str, text: &str, secrets: &[&str]) {
    if let Some(form) = find(text, secrets) {
        panic!("{label} shows the secret (as `{form}`):\n{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::{find, forms};

    #[test]
    fn a_long_secret_is_found_by_its_ends_and_its_encoding() {
        let secret = "abcdefghijklmnop/qrstuvwxyz+0123";
        assert_eq!(
            forms(secret),
            [
                secret,
                "abcdefghijklmnop",
                "/qrstuvwxyz+0123",
                "abcdefghijklmnop%2Fqrstuvwxyz%2B0123",
            ]
        );
        assert_eq!(
            find("key=abcdefghijklmnop…", &[secret]).as_deref(),
            Some("abcdefghijklmnop")
        );
        assert_eq!(
            find("x=abcdefghijklmnop%2Fqrstuvwxyz%2B0123", &["short", secret]).as_deref(),
            Some("abcdefghijklmnop")
        );
        assert_eq!(find("nothing here", &[secret]), None);
    }

    #[test]
    fn a_short_secret_is_found_only_whole() {
        assert_eq!(forms("test"), ["test"]);
        assert_eq!(find("a test", &["test"]).as_deref(), Some("test"));
    }
}
