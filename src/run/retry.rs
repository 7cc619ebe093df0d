//! The retry policy of the manifest: exponential backoff with full jitter, where a server's
//! `Retry-After` wins when it asks for longer.

use std::time::Duration;

use crate::config::manifest::RetryPolicy;
use crate::error::IngestionError;

/// Whether `error` may be retried after `attempt` attempts under `policy`.
pub fn should_retry(policy: &RetryPolicy, error: &IngestionError, attempt: u32) -> bool {
    attempt < policy.max_attempts && policy.retryable_categories.contains(&error.category)
}

/// The delay before attempt `attempt + 1` (attempts count from 1).
pub fn delay(policy: &RetryPolicy, error: &IngestionError, attempt: u32, jitter: f64) -> Duration {
    let exp = policy.initial_delay_seconds * policy.backoff_multiplier.powi(attempt.saturating_sub(1).min(64) as i32);
    let cap = exp.min(policy.max_delay_seconds).max(0.0);
    // Full jitter: anywhere between zero and the capped exponential delay.
    let jittered = cap * jitter.clamp(0.0, 1.0);
    let server = error.retry_after_seconds.map_or(0.0, |s| s as f64);
    Duration::from_secs_f64(jittered.max(server))
}

/// A uniform number in [0, 1) without pulling in a random-number crate.
pub fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{code, Category};

    fn policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 3, initial_delay_seconds: 10.0, max_delay_seconds: 25.0, backoff_multiplier: 2.0, retryable_categories: vec![Category::Transient] }
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let e = IngestionError::transient(code::UNAVAILABLE, "x", "down");
        assert_eq!(delay(&policy(), &e, 1, 1.0), Duration::from_secs(10));
        assert_eq!(delay(&policy(), &e, 2, 1.0), Duration::from_secs(20));
        assert_eq!(delay(&policy(), &e, 3, 1.0), Duration::from_secs(25));
        assert_eq!(delay(&policy(), &e, 3, 0.0), Duration::ZERO);
        let limited = e.with_retry_after(Some(60));
        assert_eq!(delay(&policy(), &limited, 1, 0.5), Duration::from_secs(60));
    }

    #[test]
    fn only_retryable_categories_within_attempts() {
        let t = IngestionError::transient(code::UNAVAILABLE, "x", "down");
        let p = IngestionError::permanent(code::AUTH_FAILED, "x", "no");
        assert!(should_retry(&policy(), &t, 1));
        assert!(should_retry(&policy(), &t, 2));
        assert!(!should_retry(&policy(), &t, 3));
        assert!(!should_retry(&policy(), &p, 1));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
