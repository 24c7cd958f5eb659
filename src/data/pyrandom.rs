//! CPython's `random` module, reproduced exactly: the same seed gives the same numbers.
//!
//! The paper's data generators call `random.seed(42)` and then `randint` / `choices`; to write
//! files byte-identical to the paper's we need the very same stream. This is the Mersenne
//! Twister MT19937 (`genrand_uint32`, seeded with `init_by_array` from the seed integer's 32-bit
//! words, as `random.seed(int)` does) plus the Python-level algorithms on top of it, as in
//! CPython 3.9–3.13 (they have not changed in that range for integer arguments):
//!
//! - `getrandbits(k)`: k ≤ 32 takes the top k bits of one word; more bits fill 32-bit words
//!   from the least significant end, the last one shifted right.
//! - `_randbelow(n)` (`_randbelow_with_getrandbits`): `getrandbits(n.bit_length())` until < n.
//! - `randrange(a, b)` = `a + _randbelow(b - a)`; `randint(a, b)` = `randrange(a, b + 1)`.
//! - `random()`: 53 bits from two words, `(a >> 5) * 2^26 + (b >> 6)` over 2^53.
//! - `choice(seq)` = `seq[_randbelow(len)]`; `choices(seq, k)` (no weights) picks
//!   `seq[floor(random() * len)]` k times; `shuffle` and `sample` as in `random.py`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A `random.Random` instance.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    mti: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyRandom {{ mti: {} }}", self.mti)
    }
}

impl PyRandom {
    /// `random.Random(seed)` / `random.seed(seed)` for an integer seed (its absolute value is
    /// used, as CPython does).
    pub fn new(seed: i128) -> Self {
        let mut n = seed.unsigned_abs();
        let mut key = Vec::new();
        while n > 0 {
            key.push(n as u32);
            n >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = PyRandom {
            mt: [0; N],
            mti: N + 1,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.mti = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mut i = 1usize;
        let mut j = 0usize;
        let len = key.len();
        let mut k = N.max(len);
        while k > 0 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= len {
                j = 0;
            }
            k -= 1;
        }
        k = N - 1;
        while k > 0 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            k -= 1;
        }
        self.mt[0] = 0x8000_0000;
        self.mti = N;
    }

    /// One 32-bit output of MT19937 (`genrand_uint32`).
    pub fn genrand_uint32(&mut self) -> u32 {
        if self.mti >= N {
            let mag = |y: u32| if y & 1 == 1 { MATRIX_A } else { 0 };
            for kk in 0..N - M {
                let y = (self.mt[kk] & UPPER_MASK) | (self.mt[kk + 1] & LOWER_MASK);
                self.mt[kk] = self.mt[kk + M] ^ (y >> 1) ^ mag(y);
            }
            for kk in N - M..N - 1 {
                let y = (self.mt[kk] & UPPER_MASK) | (self.mt[kk + 1] & LOWER_MASK);
                self.mt[kk] = self.mt[kk + M - N] ^ (y >> 1) ^ mag(y);
            }
            let y = (self.mt[N - 1] & UPPER_MASK) | (self.mt[0] & LOWER_MASK);
            self.mt[N - 1] = self.mt[M - 1] ^ (y >> 1) ^ mag(y);
            self.mti = 0;
        }
        let mut y = self.mt[self.mti];
        self.mti += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `random.getrandbits(k)` for k ≤ 64.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits: at most 64 bits here");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return (self.genrand_uint32() >> (32 - k)) as u64;
        }
        // Least significant word first; the last word keeps its top bits.
        let low = self.genrand_uint32() as u64;
        let high = (self.genrand_uint32() >> (64 - k)) as u64;
        low | (high << 32)
    }

    /// `random._randbelow(n)`: uniform in [0, n), n > 0.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow: n must be positive");
        let k = 64 - n.leading_zeros();
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r
    }

    /// `random.randrange(start, stop)` (step 1): uniform in [start, stop).
    pub fn randrange(&mut self, start: i64, stop: i64) -> i64 {
        assert!(stop > start, "empty range for randrange({start}, {stop})");
        let width = (stop as i128 - start as i128) as u64;
        (start as i128 + self.randbelow(width) as i128) as i64
    }

    /// `random.randint(a, b)`: uniform in [a, b], both ends included.
    pub fn randint(&mut self, a: i64, b: i64) -> i64 {
        assert!(b >= a, "empty range for randint({a}, {b})");
        let width = (b as i128 - a as i128 + 1) as u64;
        (a as i128 + self.randbelow(width) as i128) as i64
    }

    /// `random.random()`: a float in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = (self.genrand_uint32() >> 5) as f64;
        let b = (self.genrand_uint32() >> 6) as f64;
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.choice(seq)`.
    pub fn choice<'a, T>(&mut self, seq: &'a [T]) -> &'a T {
        assert!(!seq.is_empty(), "Cannot choose from an empty sequence");
        &seq[self.randbelow(seq.len() as u64) as usize]
    }

    /// `random.choices(seq, k=k)` without weights (with replacement).
    pub fn choices<T: Clone>(&mut self, seq: &[T], k: usize) -> Vec<T> {
        let n = seq.len() as f64;
        (0..k)
            .map(|_| seq[(self.random() * n).floor() as usize].clone())
            .collect()
    }

    /// `random.shuffle(x)` in place.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }

    /// `random.sample(population, k)`: k distinct positions, in selection order.
    pub fn sample<T: Clone>(&mut self, population: &[T], k: usize) -> Vec<T> {
        let n = population.len();
        assert!(k <= n, "Sample larger than population or is negative");
        let mut setsize = 21usize;
        if k > 5 {
            let e = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
            setsize += 4usize.pow(e);
        }
        let mut result = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u64) as usize;
                result.push(population[pool[j]].clone());
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::new();
            for _ in 0..k {
                let mut j = self.randbelow(n as u64) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u64) as usize;
                }
                selected.insert(j);
                result.push(population[j].clone());
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    //! Expected values were printed by CPython 3.11 (`random.Random(seed)`).
    use super::*;

    #[test]
    fn seed_42_words() {
        let mut r = PyRandom::new(42);
        let got: Vec<u64> = (0..5).map(|_| r.getrandbits(32)).collect();
        assert_eq!(
            got,
            [2746317213, 478163327, 107420369, 3184935163, 1181241943]
        );
    }

    #[test]
    fn other_seeds() {
        let words = |seed: i128| {
            let mut r = PyRandom::new(seed);
            (0..3).map(|_| r.genrand_uint32()).collect::<Vec<_>>()
        };
        assert_eq!(words(0), [3626764237, 1654615998, 3255389356]);
        assert_eq!(words((1 << 40) + 5), [2166296868, 2220160828, 1153647273]);
        assert_eq!(words(-7), [1390851128, 4071050724, 647892279]);
        assert_eq!(words(1 << 32), [485306839, 1508871100, 1794561286]);
        // Past the first refill of the state (624 words).
        let mut r = PyRandom::new(1);
        for _ in 0..1000 {
            r.genrand_uint32();
        }
        assert_eq!(r.genrand_uint32(), 2160508093);
    }

    #[test]
    fn floats() {
        let mut r = PyRandom::new(42);
        assert_eq!(r.random(), 0.6394267984578837);
        assert_eq!(r.random(), 0.025010755222666936);
        assert_eq!(r.random(), 0.27502931836911926);
    }

    #[test]
    fn integers() {
        let mut r = PyRandom::new(42);
        let got: Vec<i64> = (0..20).map(|_| r.randint(0, 9)).collect();
        assert_eq!(
            got,
            [1, 0, 4, 3, 3, 2, 1, 8, 1, 9, 6, 0, 0, 1, 3, 3, 8, 9, 0, 8]
        );
        let mut r = PyRandom::new(42);
        let got: Vec<i64> = (0..10).map(|_| r.randint(0, 999)).collect();
        assert_eq!(got, [654, 114, 25, 759, 281, 250, 228, 142, 754, 104]);
        let mut r = PyRandom::new(42);
        let got: Vec<i64> = (0..3).map(|_| r.randrange(0, 1000)).collect();
        assert_eq!(got, [654, 114, 25]);
        assert_eq!(r.randrange(-5, 5), -1);
        assert_eq!(r.randint(100, 215), 131);
    }

    #[test]
    fn bits() {
        let mut r = PyRandom::new(42);
        assert_eq!(r.getrandbits(0), 0);
        assert_eq!(r.getrandbits(1), 1);
        assert_eq!(r.getrandbits(7), 14);
        assert_eq!(r.getrandbits(33), 4402387665);
        assert_eq!(r.getrandbits(64), 4517457392071889495);
    }

    #[test]
    fn sequences() {
        let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyz".chars().collect();
        let mut r = PyRandom::new(42);
        let s: String = r.choices(&letters, 20).into_iter().collect();
        assert_eq!(s, "qahftrxckafnafqofpva");

        let mut r = PyRandom::new(42);
        let mut x: Vec<u32> = (0..10).collect();
        r.shuffle(&mut x);
        assert_eq!(x, [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]);

        let mut r = PyRandom::new(42);
        let range = |n: usize| (0..n).collect::<Vec<usize>>();
        assert_eq!(r.sample(&range(100), 6), [81, 14, 3, 94, 35, 31]);
        assert_eq!(r.sample(&range(672), 6), [228, 142, 104, 558, 89, 604]);
        assert_eq!(r.sample(&range(10), 10), [6, 0, 8, 7, 1, 5, 9, 2, 3, 4]);
        assert_eq!(*r.choice(&['a', 'b', 'c', 'd', 'e', 'f']), 'b');

        let mut r = PyRandom::new(42);
        assert_eq!(r.sample(&range(672), 6), [654, 114, 25, 281, 250, 228]);
        assert_eq!(r.sample(&range(672), 6), [142, 104, 558, 89, 604, 432]);
    }
}
