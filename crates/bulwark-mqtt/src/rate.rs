//! Per-session token bucket for PUBLISH rate limiting.

use std::time::Instant;

/// Rate limit parameters: a token bucket refilled at `per_second`, holding
/// at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate, tokens (publishes) per second. Non-finite or negative
    /// values are treated as 0 (only the burst is ever allowed).
    pub per_second: f64,
    /// Bucket capacity: publishes allowed back to back. 0 denies everything.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 50.0,
            burst: 200,
        }
    }
}

/// A token bucket. Pure: the caller passes the current time, so it is tested
/// without sleeping.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> Self {
        let rate = if limit.per_second.is_finite() && limit.per_second > 0.0 {
            limit.per_second
        } else {
            0.0
        };
        let capacity = f64::from(limit.burst);
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: None,
        }
    }

    /// Takes one token if available. Time going backwards adds nothing.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        }
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bucket(per_second: f64, burst: u32) -> TokenBucket {
        TokenBucket::new(RateLimit { per_second, burst })
    }

    #[test]
    fn burst_then_empty() {
        let t0 = Instant::now();
        let mut b = bucket(1.0, 3);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn refills_at_rate_and_caps_at_burst() {
        let t0 = Instant::now();
        let mut b = bucket(10.0, 2);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        // 100 ms at 10/s = one token.
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        // An hour later the bucket holds only `burst` tokens.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.try_take(later));
        assert!(b.try_take(later));
        assert!(!b.try_take(later));
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = bucket(1.0, 1);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn degenerate_limits() {
        let t0 = Instant::now();
        let mut zero = bucket(100.0, 0);
        assert!(!zero.try_take(t0));
        assert!(!zero.try_take(t0 + Duration::from_secs(10)));
        let mut nan = bucket(f64::NAN, 1);
        assert!(nan.try_take(t0));
        assert!(!nan.try_take(t0 + Duration::from_secs(10)));
        let mut neg = bucket(-5.0, 1);
        assert!(neg.try_take(t0));
        assert!(!neg.try_take(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn sustained_rate() {
        let t0 = Instant::now();
        let mut b = bucket(50.0, 1);
        let mut ok = 0;
        for ms in 0..1000u64 {
            if b.try_take(t0 + Duration::from_millis(ms)) {
                ok += 1;
            }
        }
        assert!((49..=51).contains(&ok), "{ok}");
    }
}
