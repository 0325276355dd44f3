//! A tiny seedable pseudo-random generator (xorshift64), so that a
//! simulator run with a fixed seed makes the same calls.

#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator from `seed`; every seed, 0 included, gives a usable
    /// state (xorshift must not start at 0).
    pub(crate) fn new(seed: u64) -> XorShift {
        // One multiply-xorshift round spreads small seeds over all bits.
        let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
        s = (s ^ (s >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        s ^= s >> 31;
        XorShift(if s == 0 { 0x2545_F491_4F6C_DD1D } else { s })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `ms` scaled by a factor uniform in [0.5, 1.5): durations that vary
    /// around their mean.
    pub(crate) fn around(&mut self, ms: u64) -> u64 {
        let half = ms / 2;
        half + self.below(ms.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(XorShift::new(0).next_u64(), 0);
    }

    #[test]
    fn draws_stay_in_their_range() {
        let mut r = XorShift::new(1);
        for _ in 0..1000 {
            assert!(r.below(6) < 6);
            let d = r.around(1000);
            assert!((500..=1500).contains(&d));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.around(0), 0);
    }
}
