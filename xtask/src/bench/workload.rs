//! The events of the benchmark: NDJSON CloudEvents of three sizes, the same on every run.
//!
//! Small events look like the IoT example (a device reading, about 300 bytes), medium ones carry
//! a batch of sensor readings (16 KiB), large ones a binary snapshot as `data_base64` (900 KiB).
//! Generation is deterministic, and cheap enough to stream gigabytes into a pipe.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// The size class of a workload's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Size {
    Small,
    Medium,
    Large,
}

impl Size {
    pub(super) fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }

    /// The intended length of one line, newline excluded.
    pub(super) fn target_bytes(self) -> usize {
        match self {
            Size::Small => 300,
            Size::Medium => 16 * 1024,
            Size::Large => 900 * 1024,
        }
    }

    /// The size, for tables.
    pub(super) fn short(self) -> &'static str {
        match self {
            Size::Small => "~300 B",
            Size::Medium => "16 KiB",
            Size::Large => "900 KiB",
        }
    }

    /// What the events are.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Size::Small => "~300 B IoT readings",
            Size::Medium => "16 KiB sensor batches",
            Size::Large => "900 KiB binary snapshots",
        }
    }
}

/// Makes the events of one size class; each call to [`Generator::line`] gives the next one.
#[derive(Debug)]
pub(super) struct Generator {
    size: Size,
    rng: Rng,
    index: u64,
    /// The base64 snapshot of large events, made once: generating it per event would make the
    /// generator, not the forwarder, the bottleneck of the memory run.
    blob: String,
}

impl Generator {
    pub(super) fn new(size: Size) -> Generator {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ size.target_bytes() as u64);
        let blob = match size {
            Size::Large => {
                // The envelope of a large event is under 400 bytes; the rest is the snapshot.
                let encoded = size.target_bytes() - 400;
                let raw: Vec<u8> = (0..encoded / 4 * 3).map(|_| rng.next() as u8).collect();
                base64(&raw)
            }
            Size::Small | Size::Medium => String::new(),
        };
        Generator {
            size,
            rng,
            index: 0,
            blob,
        }
    }

    /// The next event, as one line with its newline.
    pub(super) fn line(&mut self) -> String {
        self.index += 1;
        let id = self.rng.uuid();
        let mut line = match self.size {
            Size::Small => self.small(&id),
            Size::Medium => self.medium(&id),
            Size::Large => self.large(&id),
        };
        line.push('\n');
        line
    }

    fn small(&mut self, id: &str) -> String {
        let temp = 15 + self.rng.below(20);
        let nanos = self.rng.below(1_000_000_000);
        let seconds = 1_643_300_000 + self.index;
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","time":"2022-01-27T16:17:06.458868Z","data":{{"data":{{"temp":{temp}}},"device_id":"612d3cecf3ee17d321adbec6","timestamp":{{"nanos":{nanos},"seconds":{seconds}}}}}}}"#
        )
    }

    fn medium(&mut self, id: &str) -> String {
        let head = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/sensors/hall-1","type":"com.example.readings","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{{"readings":["#
        );
        let tail = r#"],"note":""}}"#;
        let mut line = head;
        let mut i = 0u64;
        let target = self.size.target_bytes();
        loop {
            let mut reading = String::new();
            let _ = write!(
                reading,
                r#"{{"sensor":"sensor-{i:04}","at":"2022-01-27T16:17:{:02}.{:06}Z","value":{}.{:03},"ok":{},"tags":["a","b",{i}]}}"#,
                i % 60,
                self.rng.below(1_000_000),
                20 + self.rng.below(15),
                self.rng.below(1000),
                self.rng.below(7) != 0,
            );
            if line.len() + reading.len() + 1 + tail.len() > target {
                break;
            }
            if i > 0 {
                line.push(',');
            }
            line.push_str(&reading);
            i += 1;
        }
        // Top up to the exact size with the note.
        let fill = target - line.len() - tail.len();
        line.push_str(r#"],"note":""#);
        line.extend(std::iter::repeat_n('x', fill));
        line.push_str(r#""}}"#);
        line
    }

    fn large(&mut self, id: &str) -> String {
        let mut line = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/sensors/camera-7","type":"com.example.snapshot","datacontenttype":"image/jpeg","time":"2022-01-27T16:17:06.458868Z","data_base64":""#
        );
        line.push_str(&self.blob);
        line.push_str(r#""}"#);
        line
    }
}

/// Writes `count` events of `size` to `path`; returns the bytes written.
pub(super) fn write_file(path: &Path, size: Size, count: usize) -> io::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let bytes = stream(size, count as u64, u64::MAX, &mut out)?.1;
    out.flush()?;
    Ok(bytes)
}

/// Writes events of `size` to `out` until `max_events` or `max_bytes` is reached; returns the
/// events and bytes written.
pub(super) fn stream(
    size: Size,
    max_events: u64,
    max_bytes: u64,
    out: &mut impl Write,
) -> io::Result<(u64, u64)> {
    let mut generator = Generator::new(size);
    let (mut events, mut bytes) = (0, 0);
    while events < max_events && bytes < max_bytes {
        let line = generator.line();
        out.write_all(line.as_bytes())?;
        events += 1;
        bytes += line.len() as u64;
    }
    Ok((events, bytes))
}

/// A xorshift64* generator: deterministic, and good enough for test data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0x0FFF,
            0x8000 | (b >> 48) & 0x3FFF,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}

fn base64(raw: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(raw.len().div_ceil(3) * 4);
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_near_their_targets() {
        for size in [Size::Small, Size::Medium, Size::Large] {
            let mut generator = Generator::new(size);
            for _ in 0..3 {
                let line = generator.line();
                let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
                assert_eq!(value["specversion"], "1.0");
                let length = line.len() - 1;
                let target = size.target_bytes();
                assert!(
                    length <= target && length + 512 > target,
                    "{}: {length}",
                    size.name()
                );
            }
        }
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        let check = |raw: &[u8], expected: &str| assert_eq!(base64(raw), expected);
        check(b"", "");
        check(b"f", "Zg==");
        check(b"fo", "Zm8=");
        check(b"foo", "Zm9v");
        check(&[0xFF, 0xFE, 0x00, 0x01], "//4AAQ==");
    }
}
