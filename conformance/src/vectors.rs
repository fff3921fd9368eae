//! The default vector set of `conformance run`: events that a producer delivers intact only if
//! it keeps every byte that matters.
//!
//! Each vector aims at one way producers lose fidelity: numbers parsed into floats (huge
//! integers, long fractions, `1.50`, `1E+2`, `-0`, `1e400`), members reordered or dropped, every
//! Unicode plane written raw and escaped, noncharacters (including U+FFFE, which SQS refuses
//! raw and a producer must escape), control characters in text, extensions of every type at the
//! 32-bit edges, binary data, more attributes than SQS has message attributes, and sizes up to
//! the 1 MiB limit of a message. The set is built in code so that the largest vector is exact
//! without a megabyte in the repository; `conformance vectors` prints it.

use std::fmt::Write as _;

use base64::Engine as _;

/// The source of every default vector; FIFO producers group by it, so order is checked across
/// the whole set.
pub const SOURCE: &str = "/conformance/vectors";

/// The most bytes the largest vector's structured body may have: SQS's 1 MiB less room for
/// message attributes (binary mode carries the context in them).
pub const LARGEST_BODY_BYTES: usize = 1024 * 1024 - 1024;

/// The default vectors as NDJSON, one event a line, in delivery order.
pub fn default_vectors() -> String {
    let mut lines = vec![
        event(
            "iot-reading",
            r#""datacontenttype":"application/json","subject":"stream","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","timestamp":{"nanos":174295000,"seconds":1643300226}}"#,
        ),
        event(
            "numbers-exact",
            r#""data":[123456789012345678901234567890,0.1000000000000000055511151231257827,1.50,1E+2,-0,1e400,-1.0e-400,9007199254740993]"#,
        ),
        event(
            "key-order",
            r#""data":{"z":1,"a":2,"10":3,"9":4,"":5,"nested":{"b":[{"y":1,"x":2}],"a":null}}"#,
        ),
        event(
            "unicode-raw",
            "\"data\":\"plane 0 é 中 ﬀ, plane 1 😀 𝄞, plane 2 𠀀, plane 3 𰀀, plane 14 \u{E0001}, planes 15 and 16 \u{F0000} \u{10FFFD}\"",
        ),
        event(
            "unicode-escaped",
            r#""data":"\u00e9 \u4e2d \ud83d\ude00 \ud834\udd1e \ud840\udc00 \udb40\udc01 \udbff\udffd \"\\\/\b\f\n\r\t""#,
        ),
        event(
            "noncharacters",
            "\"data\":{\"raw\":\"\u{FDD0} \u{1FFFE} \u{10FFFF}\",\"escaped\":\"\\ufffe \\uffff \\ufdef\"}",
        ),
        event(
            "extensions",
            r#""intmax":2147483647,"intmin":-2147483648,"flag":false,"label":"x y","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","data":{}"#,
        ),
        event(
            "many-attributes",
            r#""subject":"s","time":"2024-02-29T23:59:59.999999999+14:00","dataschema":"https://example.com/schema/v1","datacontenttype":"application/json","e1":"1","e2":"2","e3":"3","e4":"4","e5":"5","e6":"6","data":[]"#,
        ),
        event(
            "text-plain",
            r#""datacontenttype":"text/plain; charset=utf-8","data":"first line\nsecond \"quoted\" line\twith a tab\n""#,
        ),
        event(
            "text-control-characters",
            r#""datacontenttype":"text/plain","data":"bell \u0007 and nul \u0000 and escape \u001b""#,
        ),
        event(
            "xml",
            r#""datacontenttype":"application/xml","data":"<a b=\"1\">&amp;</a>""#,
        ),
        event("json-string", r#""data":"just a string""#),
        event("no-data", r#""subject":"nothing to carry""#),
        event(
            "deep",
            &format!(r#""data":{}1{}"#, "[".repeat(64), "]".repeat(64)),
        ),
    ];
    let all_bytes: Vec<u8> = (0..=255).collect();
    lines.push(event(
        "binary",
        &format!(
            r#""datacontenttype":"application/octet-stream","data_base64":"{}""#,
            base64::engine::general_purpose::STANDARD.encode(all_bytes)
        ),
    ));
    lines.push(sized("size-64k", 64 * 1024));
    lines.push(sized("size-256k", 256 * 1024));
    lines.push(sized("size-largest", LARGEST_BODY_BYTES));
    let mut out = String::new();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// One vector: the required attributes, then `members`.
fn event(id: &str, members: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"{SOURCE}","type":"org.example.vector",{members}}}"#
    )
}

/// A vector of text data whose line (and structured body) is exactly `bytes` long.
fn sized(id: &str, bytes: usize) -> String {
    let empty = event(id, r#""datacontenttype":"text/plain","data":"""#);
    let fill = bytes - empty.len();
    let text: String = (0..fill)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    event(
        id,
        &format!(r#""datacontenttype":"text/plain","data":"{text}""#),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fidelity::read_vectors;

    #[test]
    fn the_default_vectors_are_conformant_and_unique() {
        let text = default_vectors();
        let vectors = read_vectors(&text).expect("the default vectors are valid");
        assert_eq!(vectors.len(), text.lines().count());
        let largest = vectors
            .iter()
            .find(|v| v.id == "size-largest")
            .expect("present");
        assert_eq!(largest.text.len(), LARGEST_BODY_BYTES);
        assert!(vectors.iter().all(|v| v.source == SOURCE));
    }
}
