//! One photo under two roster ids (`duplicate_photo`): which people's face hashes lie within
//! [`SAME_PHOTO`] bits of each other.
//!
//! A multi-index over the hashes. Identical hashes (the same file, or a placeholder picture
//! given to many people) are grouped first by sorting, so that a group of thousands costs a
//! sort, not its pairs. The distinct hashes are then split into [`BANDS`] bands of bits; two
//! hashes within `SAME_PHOTO` bits differ in at most `SAME_PHOTO / BANDS` bits of at least one
//! band (pigeonhole), so each hash is compared only with the hashes whose band lies that close
//! to its own, found in a table of each band's values. With 5 bands of 12 or 13 bits and a
//! threshold of 8, that is the hash's own band value and the 13 one bit away: at 100,000
//! uniformly spread hashes, about 800 comparisons a hash (README, Performance). Deviation from
//! plain pigeonhole (threshold + 1 bands, exact band match): its 7-bit bands hold n / 128
//! hashes each, ten times the comparisons.

use super::super::photo::{FaceHash, SAME_PHOTO};

/// How many bands the 64 bits are split into.
const BANDS: usize = 5;

/// A band value shared by more distinct hashes than this (hashes far from uniform, which real
/// faces are not) is compared against its first `MAX_BUCKET` hashes only: the work stays
/// bounded, and a pair it misses there is still found through any other band it is close in.
const MAX_BUCKET: usize = 4096;

/// The bit ranges of the bands: as even as 64 bits allow.
fn bands() -> [(u32, u32); BANDS] {
    let mut out = [(0, 0); BANDS];
    let mut start = 0;
    for (b, band) in out.iter_mut().enumerate() {
        let width = (64 - start) / (BANDS - b) as u32;
        *band = (start, width);
        start += width;
    }
    out
}

fn band_of(hash: u64, (start, width): (u32, u32)) -> usize {
    ((hash >> start) & ((1u64 << width) - 1)) as usize
}

/// Every pair of `hashes` (by index, the smaller first, sorted) within [`SAME_PHOTO`] bits,
/// identical ones included. Pairs are what the tests check; the plan uses [`neighbours`],
/// which never lists the pairs of a large group of identical hashes.
pub fn near_pairs(hashes: &[FaceHash]) -> Vec<(usize, usize)> {
    let groups = Groups::of(hashes.iter().copied().enumerate());
    let mut pairs = Vec::new();
    for g in &groups.members {
        for (k, &a) in g.iter().enumerate() {
            for &b in &g[k + 1..] {
                pairs.push((a.min(b), a.max(b)));
            }
        }
    }
    for (x, y) in groups.near() {
        for &a in &groups.members[x] {
            for &b in &groups.members[y] {
                pairs.push((a.min(b), a.max(b)));
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

/// For each person with a face hash (by index, as given), the other people within
/// [`SAME_PHOTO`] bits: the groups of people, each person listed with every other member of
/// their group of identical hashes and of the groups near it. Sorted by person.
pub(crate) fn neighbours(people: impl IntoIterator<Item = (usize, FaceHash)>) -> Neighbours {
    let groups = Groups::of(people);
    let mut near: Vec<Vec<usize>> = vec![Vec::new(); groups.members.len()];
    for (x, y) in groups.near() {
        near[x].push(y);
        near[y].push(x);
    }
    Neighbours { groups, near }
}

/// The result of [`neighbours`]: groups of identical hashes and which groups are near.
pub(crate) struct Neighbours {
    groups: Groups,
    near: Vec<Vec<usize>>,
}

impl Neighbours {
    /// Each person who has at least one other person within the threshold, with an iterator
    /// over those others (identical hashes first).
    pub(crate) fn each(&self) -> impl Iterator<Item = (usize, impl Iterator<Item = usize> + '_)> {
        self.groups
            .members
            .iter()
            .enumerate()
            .filter(|(g, members)| members.len() > 1 || !self.near[*g].is_empty())
            .flat_map(move |(g, members)| {
                members.iter().map(move |&person| {
                    let same = members.iter().copied().filter(move |&o| o != person);
                    let close = self.near[g]
                        .iter()
                        .flat_map(move |&h| self.groups.members[h].iter().copied());
                    (person, same.chain(close))
                })
            })
    }
}

/// People grouped by identical hash.
struct Groups {
    hashes: Vec<u64>,
    members: Vec<Vec<usize>>,
}

impl Groups {
    fn of(people: impl IntoIterator<Item = (usize, FaceHash)>) -> Groups {
        let mut sorted: Vec<(u64, usize)> = people.into_iter().map(|(i, h)| (h.0, i)).collect();
        sorted.sort_unstable();
        let mut groups = Groups {
            hashes: Vec::new(),
            members: Vec::new(),
        };
        for (hash, person) in sorted {
            if groups.hashes.last() != Some(&hash) {
                groups.hashes.push(hash);
                groups.members.push(Vec::new());
            }
            groups.members.last_mut().expect("pushed").push(person);
        }
        groups
    }

    /// The pairs of distinct hashes (by group, the smaller first) within the threshold.
    fn near(&self) -> Vec<(usize, usize)> {
        let hashes = &self.hashes;
        let radius = SAME_PHOTO / BANDS as u32;
        let mut pairs = Vec::new();
        for (b, band) in bands().into_iter().enumerate() {
            // The groups by this band's value: offsets into one list (a counting sort).
            let values = 1usize << band.1;
            let mut start = vec![0u32; values + 1];
            for &h in hashes {
                start[band_of(h, band) + 1] += 1;
            }
            for v in 0..values {
                start[v + 1] += start[v];
            }
            let mut fill = start.clone();
            let mut by_band = vec![0u32; hashes.len()];
            for (g, &h) in hashes.iter().enumerate() {
                let v = band_of(h, band);
                by_band[fill[v] as usize] = g as u32;
                fill[v] += 1;
            }
            let mut probe = |g: usize, value: usize| {
                let bucket = &by_band[start[value] as usize..start[value + 1] as usize];
                for &other in &bucket[..bucket.len().min(MAX_BUCKET)] {
                    let other = other as usize;
                    if other <= g || (hashes[g] ^ hashes[other]).count_ones() > SAME_PHOTO {
                        continue;
                    }
                    // Reported by the first band in which the two are within the radius, so
                    // each pair comes once.
                    let first = bands()
                        .into_iter()
                        .position(|c| {
                            ((band_of(hashes[g], c) ^ band_of(hashes[other], c)) as u64)
                                .count_ones()
                                <= radius
                        })
                        .expect("this band is one");
                    if first == b {
                        pairs.push((g, other));
                    }
                }
            };
            for (g, &h) in hashes.iter().enumerate() {
                let v = band_of(h, band);
                probe(g, v);
                if radius >= 1 {
                    for i in 0..band.1 {
                        probe(g, v ^ (1 << i));
                        if radius >= 2 {
                            for j in i + 1..band.1 {
                                probe(g, v ^ (1 << i) ^ (1 << j));
                            }
                        }
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn flip(rng: &mut Rng, hash: u64, bits: u32) -> u64 {
        let mut out = hash;
        while (out ^ hash).count_ones() < bits {
            out ^= 1 << (rng.next() % 64);
        }
        out
    }

    /// Every pair by comparing all pairs: the reference for small sets.
    fn brute(hashes: &[FaceHash]) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for i in 0..hashes.len() {
            for j in i + 1..hashes.len() {
                if hashes[i].same_photo(hashes[j]) {
                    pairs.push((i, j));
                }
            }
        }
        pairs
    }

    #[test]
    fn the_bands_cover_the_64_bits() {
        let b = bands();
        assert_eq!(b[0].0, 0);
        assert_eq!(b[BANDS - 1].0 + b[BANDS - 1].1, 64);
        assert!(b.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
        assert!(b.iter().all(|&(_, w)| (12..=13).contains(&w)));
    }

    /// The random hashes' own near pairs, for the seed below.
    const CHANCE: &[(usize, usize)] = &[(24717, 79442), (44927, 63767), (69827, 98047)];

    #[test]
    fn a_hundred_thousand_people_with_planted_copies() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut hashes: Vec<FaceHash> = (0..100_000).map(|_| FaceHash(rng.next())).collect();
        // Copies at every distance up to the threshold and just past it, a group of three,
        // and a placeholder picture given to 50 people.
        let mut expected = Vec::new();
        let mut originals = (0..).map(|k: usize| k * 331 % 100_000);
        for d in 0..=SAME_PHOTO + 2 {
            for _ in 0..20 {
                let a = originals.next().expect("endless");
                let copy = FaceHash(flip(&mut rng, hashes[a].0, d));
                hashes.push(copy);
                if d <= SAME_PHOTO {
                    expected.push((a, hashes.len() - 1));
                }
            }
        }
        let a = hashes.len();
        hashes.push(FaceHash(rng.next()));
        hashes.push(FaceHash(flip(&mut rng, hashes[a].0, 3)));
        hashes.push(FaceHash(flip(&mut rng, hashes[a].0, 4)));
        expected.push((a, a + 1));
        expected.push((a, a + 2));
        if hashes[a + 1].same_photo(hashes[a + 2]) {
            expected.push((a + 1, a + 2));
        }
        let placeholder = FaceHash(rng.next());
        let first = hashes.len();
        hashes.extend(std::iter::repeat_n(placeholder, 50));
        for i in first..first + 50 {
            for j in i + 1..first + 50 {
                expected.push((i, j));
            }
        }
        expected.sort_unstable();
        expected.dedup();
        let found = near_pairs(&hashes);
        // 100,000 random 64-bit hashes hold about 1.2 pairs within 8 bits by chance (5e9
        // pairs, each with C(64, <=8) / 2^64 = 2.4e-10); with this seed, these.
        let by_chance: Vec<(usize, usize)> = found
            .iter()
            .copied()
            .filter(|p| expected.binary_search(p).is_err())
            .collect();
        assert_eq!(by_chance, CHANCE);
        for &(a, b) in &by_chance {
            assert!(b < 100_000 && hashes[a].same_photo(hashes[b]), "{a} {b}");
        }
        expected.extend(by_chance);
        expected.sort_unstable();
        assert_eq!(found, expected);

        let n = neighbours(hashes.iter().copied().enumerate());
        let listed: Vec<(usize, usize)> = n.each().map(|(p, o)| (p, o.count())).collect();
        assert_eq!(
            listed.len(),
            20 * (SAME_PHOTO as usize + 1) * 2 + 3 + 50 + 2 * CHANCE.len()
        );
        assert!(listed.iter().any(|&(p, count)| p == first && count == 49));
    }

    #[test]
    fn small_sets_agree_with_comparing_every_pair() {
        let mut rng = Rng(7);
        for round in 0..50 {
            // Few distinct bits: many near pairs, crowded bands.
            let base = rng.next();
            let hashes: Vec<FaceHash> = (0..60)
                .map(|_| {
                    let bits = (rng.next() % 14) as u32;
                    FaceHash(flip(&mut rng, base, bits))
                })
                .collect();
            assert_eq!(near_pairs(&hashes), brute(&hashes), "round {round}");
        }
    }
}
