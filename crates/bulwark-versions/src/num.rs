//! Decimal numbers of any length, compared without overflow.

use std::cmp::Ordering;
use std::fmt;

/// A non-negative decimal integer of any length, stored as its digits
/// without leading zeros (`"0"` for zero).
///
/// Comparing two of them compares their lengths and then their digits, which
/// is numeric order and never overflows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Digits(String);

impl Digits {
    /// `digits` must be non-empty and all ASCII digits.
    pub(crate) fn new(digits: &str) -> Self {
        debug_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            Digits("0".to_owned())
        } else {
            Digits(trimmed.to_owned())
        }
    }

    pub(crate) fn zero() -> Self {
        Digits("0".to_owned())
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.0 == "0"
    }

    /// The value, if it fits in a `u64`.
    pub(crate) fn to_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl Ord for Digits {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(&self.0, &other.0)
    }
}

impl PartialOrd for Digits {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compares two runs of ASCII digits numerically, whatever their length.
/// An empty run counts as zero.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_compare_numerically() {
        assert_eq!(cmp_digits("0009", "10"), Ordering::Less);
        assert_eq!(cmp_digits("000", ""), Ordering::Equal);
        let big = "9".repeat(200);
        let bigger = format!("1{}", "0".repeat(200));
        assert_eq!(cmp_digits(&big, &bigger), Ordering::Less);
        assert_eq!(Digits::new("000"), Digits::zero());
        assert!(Digits::new("0").is_zero());
        assert_eq!(Digits::new("0042").to_string(), "42");
        assert_eq!(Digits::new(&big).to_u64(), None);
    }
}
