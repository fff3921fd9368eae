//! The bearer token of `serve`: read from its file (again on SIGHUP), and checked in constant
//! time.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::problem::{Kind, Problem};
use aws_access::secret::Secret;

/// Reads a bearer token from a file: its content without surrounding whitespace, which must be
/// a non-empty RFC 6750 `b64token`. Errors never show the content.
pub fn read_token(path: &Path) -> io::Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot read the token file {}: {error}", path.display()),
        )
    })?;
    let token = text.trim();
    if !is_b64token(token) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the token file {} must hold one bearer token: letters, digits and -._~+/ then = padding",
                path.display()
            ),
        ));
    }
    Ok(Secret::new(token))
}

/// The token of `--token-file`, which [`TokenFile::reload`] reads again (on SIGHUP) so that a
/// token can be rotated without a restart.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    current: RwLock<Secret>,
}

impl TokenFile {
    /// Reads the token file; see [`read_token`].
    pub fn open(path: &Path) -> io::Result<TokenFile> {
        Ok(TokenFile {
            path: path.to_owned(),
            current: RwLock::new(read_token(path)?),
        })
    }

    /// Reads the file again; on an error the previous token stays in force.
    pub fn reload(&self) -> io::Result<()> {
        let token = read_token(&self.path)?;
        if let Ok(mut current) = self.current.write() {
            *current = token;
        }
        Ok(())
    }

    /// The token in force.
    pub(super) fn current(&self) -> Option<Secret> {
        self.current.read().ok().map(|token| token.clone())
    }
}

/// Checks the bearer token, in constant time, when one is configured.
pub(super) fn authorize(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(token) = token else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()));
    match presented {
        Some(presented) if bool::from(presented.ct_eq(token.expose().as_bytes())) => Ok(()),
        Some(_) => Err(Problem::new(
            Kind::WrongToken,
            "the bearer token is not the one configured".to_owned(),
        )),
        None => Err(Problem::new(
            Kind::MissingToken,
            "this endpoint requires `Authorization: Bearer <token>`".to_owned(),
        )),
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
pub(super) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Whether `s` is an RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
/// "/" ) *"="`.
pub(super) fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let check = |value: &str, expected: Option<&str>| {
            assert_eq!(
                bearer(value.as_bytes()),
                expected.map(str::as_bytes),
                "{value}"
            );
        };
        check("Bearer abc", Some("abc"));
        check("bearer  abc ", Some("abc"));
        check("Basic abc", None);
        check("Bearer", None);
        check("Bearer ", None);
        check("Bearerabc", None);
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token(""));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a=b"));
    }
}
