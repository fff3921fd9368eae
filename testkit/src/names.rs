//! Names no other test, test process or earlier run uses, for queues, users and directories.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` followed by `-`, this process's id, the clock's low 32 bits of nanoseconds and a
/// counter, all in hexadecimal: about 17 characters after the prefix, so that a name made from
/// it still fits an IAM name with its suffix.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{:x}{:08x}{:x}",
        std::process::id(),
        nanos & 0xffff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::unique;

    #[test]
    fn names_differ_and_keep_their_prefix() {
        let names: HashSet<String> = (0..1000).map(|_| unique("q")).collect();
        assert_eq!(names.len(), 1000);
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("q-") && n.len() <= 2 + 24)
        );
    }
}
