//! [`RandomSource`]: randomness is passed in, never fetched behind the caller's back.

use crate::{Error, Result};

/// A source of cryptographically secure random bytes.
pub trait RandomSource: Send + Sync + std::fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (through aws-lc-rs).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        use aws_lc_rs::rand::SecureRandom as _;
        aws_lc_rs::rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| Error::Random)
    }
}
