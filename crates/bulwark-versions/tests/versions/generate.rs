//! Deterministic generators of tricky version strings.
//!
//! The seed is fixed so that failures reproduce; set
//! `BULWARK_VERSIONS_SEED=<u64>` to explore other pairs.

use bulwark_versions::Ecosystem;

/// SplitMix64: tiny, seedable, good enough to pick pieces.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(salt: u64) -> Rng {
        let seed = std::env::var("BULWARK_VERSIONS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_b01a_11c0_ffee_u64);
        Rng(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// One generated version of `eco`; mostly valid, sometimes not.
pub(crate) fn version(eco: Ecosystem, rng: &mut Rng) -> String {
    let v = match eco {
        Ecosystem::Debian => debian(rng),
        Ecosystem::Pep440 => pep440(rng),
        Ecosystem::Semver => semver(rng),
        Ecosystem::Alpine => alpine(rng),
    };
    if rng.chance(8) {
        mutate(eco, &v, rng)
    } else {
        v
    }
}

/// Pairs of versions, half of them close to each other so that the
/// comparison goes deep.
pub(crate) fn pairs(eco: Ecosystem, n: usize, salt: u64) -> Vec<(String, String)> {
    let mut rng = Rng::new(salt);
    (0..n)
        .map(|_| {
            let a = version(eco, &mut rng);
            let b = if rng.chance(50) {
                tweak(eco, &a, &mut rng)
            } else {
                version(eco, &mut rng)
            };
            (a, b)
        })
        .collect()
}

/// A small edit that keeps the version plausible.
fn tweak(eco: Ecosystem, v: &str, rng: &mut Rng) -> String {
    let pieces: &[&str] = match eco {
        Ecosystem::Debian => &["0", "1", "~", "+", ".", "a", "~rc1", ".0", "-1", "00"],
        Ecosystem::Pep440 => &[
            "0", ".0", "a1", ".post1", ".dev0", "+local", "-1", "rc", "1",
        ],
        Ecosystem::Semver => &["0", "1", "-0", "-alpha", ".1", "+b", "-rc.1", ".a"],
        Ecosystem::Alpine => &["0", ".0", "a", "_p1", "_rc", "-r0", "-r1", "_alpha2", "1"],
    };
    let mut out = v.to_owned();
    match rng.below(3) {
        0 => out.push_str(rng.pick(pieces)),
        1 if !out.is_empty() => {
            out.pop();
        }
        _ => {
            // Replace one digit by another.
            let digits: Vec<usize> = out
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            if !digits.is_empty() {
                let at = digits[rng.below(digits.len())];
                let d = rng.pick(&["0", "1", "2", "9"]);
                out.replace_range(at..at + 1, d);
            }
        }
    }
    out
}

/// Inserts, deletes or duplicates a character: often invalid.
fn mutate(eco: Ecosystem, v: &str, rng: &mut Rng) -> String {
    let chars: &[&str] = match eco {
        Ecosystem::Debian => &[
            "_", "!", " ", "a", "-", ":", "~", "@", "0", "\t", "\n", "\r",
        ],
        Ecosystem::Pep440 => &[
            "!", "+", "-", "_", ".", "a", "v", " ", "@", "0", "r", "\t", "\x0b", "\x1c",
        ],
        Ecosystem::Semver => &[
            "+", "-", ".", "0", "v", "a", " ", "_", "=", "\t", "\x0b", "\x1c",
        ],
        Ecosystem::Alpine => &["_", "-", ".", "r", "a", "0", "~", "A"],
    };
    let mut out = v.to_owned();
    let at = rng.below(out.len() + 1);
    match rng.below(3) {
        0 => out.insert_str(at, rng.pick(chars)),
        1 if at < out.len() => {
            out.remove(at);
        }
        _ => out = format!("{}{}", rng.pick(chars), out),
    }
    out
}

fn join(rng: &mut Rng, n: usize, items: &[&str], seps: &[&str]) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push_str(rng.pick(seps));
        }
        out.push_str(rng.pick(items));
    }
    out
}

fn debian(rng: &mut Rng) -> String {
    let mut v = String::new();
    let epoch = rng.chance(25);
    if epoch {
        v.push_str(rng.pick(&["0", "1", "2", "00", "10", "01"]));
        v.push(':');
    }
    let has_revision = rng.chance(55);
    v.push_str(rng.pick(&["0", "1", "2", "9", "10", "01", "00", "1.0", "2.4"]));
    let mut pieces = vec![
        ".", "~", "+", "a", "b", "z", "A", "Z", "1", "0", "01", "10", "9", "~~", ".0", "~rc",
    ];
    if epoch {
        pieces.push(":");
    }
    if has_revision {
        pieces.push("-");
    }
    for _ in 0..rng.below(5) {
        v.push_str(rng.pick(&pieces));
    }
    if has_revision {
        v.push('-');
        let n = 1 + rng.below(3);
        v.push_str(&join(
            rng,
            n,
            &[
                "0", "1", "1ubuntu1", "~", "a", "deb12u1", "0.1", "+b1", "2", "10",
            ],
            &["", ".", "+", "~"],
        ));
    }
    v
}

fn pep440(rng: &mut Rng) -> String {
    let mut v = String::new();
    if rng.chance(10) {
        v.push_str(rng.pick(&["v", "V"]));
    }
    if rng.chance(15) {
        v.push_str(rng.pick(&["0", "1", "2", "01"]));
        v.push('!');
    }
    let n = 1 + rng.below(4);
    v.push_str(&join(
        rng,
        n,
        &["0", "1", "2", "10", "00", "01", "9"],
        &["."],
    ));
    let seps = ["", "", ".", "-", "_"];
    if rng.chance(40) {
        v.push_str(rng.pick(&seps));
        v.push_str(rng.pick(&[
            "a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "A", "RC", "Alpha",
        ]));
        v.push_str(rng.pick(&seps));
        if rng.chance(70) {
            v.push_str(rng.pick(&["0", "1", "2", "10", "01"]));
        }
    }
    if rng.chance(25) {
        if rng.chance(30) {
            v.push('-');
            v.push_str(rng.pick(&["0", "1", "2", "10"]));
        } else {
            v.push_str(rng.pick(&seps));
            v.push_str(rng.pick(&["post", "rev", "r", "POST"]));
            v.push_str(rng.pick(&seps));
            if rng.chance(70) {
                v.push_str(rng.pick(&["0", "1", "2", "10"]));
            }
        }
    }
    if rng.chance(25) {
        v.push_str(rng.pick(&seps));
        v.push_str(rng.pick(&["dev", "DEV"]));
        v.push_str(rng.pick(&seps));
        if rng.chance(70) {
            v.push_str(rng.pick(&["0", "1", "2", "10"]));
        }
    }
    if rng.chance(20) {
        v.push('+');
        let n = 1 + rng.below(3);
        v.push_str(&join(
            rng,
            n,
            &["ubuntu", "1", "01", "a", "abc", "0", "Z", "2"],
            &[".", "-", "_"],
        ));
    }
    if rng.chance(5) {
        v = format!(
            "{}{v}{}",
            rng.pick(&[" ", "\t", ""]),
            rng.pick(&[" ", "\n", ""])
        );
    }
    v
}

fn semver(rng: &mut Rng) -> String {
    let mut v = String::new();
    if rng.chance(10) {
        v.push('v');
    }
    let nums = ["0", "1", "2", "10", "0", "1", "9007199254740991"];
    v.push_str(&join(rng, 3, &nums, &["."]));
    if rng.chance(50) {
        v.push('-');
        let n = 1 + rng.below(3);
        v.push_str(&join(
            rng,
            n,
            &[
                "0", "1", "2", "10", "alpha", "beta", "rc", "a", "A", "-", "0a", "x-y", "11", "Z",
            ],
            &["."],
        ));
    }
    if rng.chance(20) {
        v.push('+');
        let n = 1 + rng.below(2);
        v.push_str(&join(rng, n, &["1", "001", "build", "x-1"], &["."]));
    }
    if rng.chance(3) {
        v = format!(" {v} ");
    }
    v
}

fn alpine(rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    let mut v = join(rng, n, &["0", "1", "2", "10", "01", "00", "9"], &["."]);
    if rng.chance(20) {
        v.push_str(rng.pick(&["a", "b", "z"]));
    }
    for _ in 0..rng.below(3) {
        v.push('_');
        v.push_str(rng.pick(&["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]));
        if rng.chance(60) {
            v.push_str(rng.pick(&["0", "1", "2", "10", "20250503"]));
        }
    }
    if rng.chance(60) {
        v.push_str("-r");
        v.push_str(rng.pick(&["0", "1", "2", "10"]));
    }
    v
}
