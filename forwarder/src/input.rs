//! NDJSON input: numbered lines from files or stdin, with a line-length limit that skips an
//! over-long line without holding it in memory, and the byte offset of each line's end (for
//! checkpoints).

use std::io::{self, BufRead, BufReader, Read};

/// One line of input, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes.
    Text(Vec<u8>),
    /// The line was longer than the limit; only its length is known.
    TooLong(usize),
}

/// Reads lines of at most `limit` bytes from `reader`.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    limit: usize,
    number: u64,
    offset: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Wraps a reader.
    pub fn new(reader: R, limit: usize) -> Self {
        Self::resuming(reader, limit, 0, 0)
    }

    /// Wraps a reader positioned after `lines` lines and `offset` bytes of its input.
    pub fn resuming(reader: R, limit: usize, lines: u64, offset: u64) -> Self {
        LineReader {
            reader,
            limit,
            number: lines,
            offset,
        }
    }

    /// The number of the next line.
    pub fn next_number(&self) -> u64 {
        self.number + 1
    }

    /// Bytes consumed so far: the offset of the end of the last line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next line and its number (from 1), or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line)>> {
        let mut line = Vec::new();
        let mut length = 0usize;
        let mut seen_any = false;
        loop {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (chunk, found_end) = match memchr::memchr(b'\n', buffer) {
                Some(i) => (&buffer[..i], true),
                None => (buffer, false),
            };
            length += chunk.len();
            if length <= self.limit {
                line.extend_from_slice(chunk);
            } else if !line.is_empty() {
                line = Vec::new();
            }
            let consumed = chunk.len() + usize::from(found_end);
            self.reader.consume(consumed);
            self.offset += consumed as u64;
            if found_end {
                break;
            }
        }
        self.number += 1;
        if length > self.limit {
            return Ok(Some((self.number, Line::TooLong(length))));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some((self.number, Line::Text(line))))
    }
}

impl<T: Read> LineReader<BufReader<T>> {
    /// Whether no byte already read from the input is waiting in the buffer: stopping here
    /// leaves nothing consumed behind.
    pub fn buffer_is_empty(&self) -> bool {
        self.reader.buffer().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], limit: usize, expected: &[(u64, Line)]) {
        let mut reader = LineReader::new(BufReader::with_capacity(4, input), limit);
        let mut actual = Vec::new();
        while let Some(line) = reader.next_line().expect("reads") {
            actual.push(line);
        }
        assert_eq!(actual, expected);
        assert_eq!(reader.offset(), input.len() as u64, "every byte is counted");
    }

    #[test]
    fn lines() {
        let text = |s: &str| Line::Text(s.as_bytes().to_vec());
        check(b"", 10, &[]);
        check(b"a\nbb\n", 10, &[(1, text("a")), (2, text("bb"))]);
        check(
            b"a\r\n\nlast",
            10,
            &[(1, text("a")), (2, text("")), (3, text("last"))],
        );
        check(
            b"short\n0123456789abc\nok\n",
            10,
            &[(1, text("short")), (2, Line::TooLong(13)), (3, text("ok"))],
        );
        check(b"0123456789", 10, &[(1, text("0123456789"))]);
        check(b"01234567890", 10, &[(1, Line::TooLong(11))]);
    }
}
