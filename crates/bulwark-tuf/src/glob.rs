//! Target path patterns, matched like python-tuf: the path and the pattern
//! are split on `/`, must have the same number of segments, and each segment
//! matches like Python's `fnmatch` (`*`, `?`, `[seq]`, `[!seq]`).

/// Whether `path` matches `pattern`.
pub(crate) fn path_matches(path: &str, pattern: &str) -> bool {
    let path_parts: Vec<&str> = path.split('/').collect();
    let pattern_parts: Vec<&str> = pattern.split('/').collect();
    path_parts.len() == pattern_parts.len()
        && path_parts
            .iter()
            .zip(&pattern_parts)
            .all(|(segment, pat)| fnmatch(segment, pat))
}

/// Python `fnmatch.fnmatchcase` for one segment.
///
/// The pattern is split into single-character tokens and stars, then matched
/// greedily with backtracking to the last star only: linear in practice and
/// `O(len(name) * len(pattern))` at worst, whatever the pattern.
fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let tokens = tokenize(&pattern.chars().collect::<Vec<char>>());
    let (mut n, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                backtrack = Some((t, n));
                t += 1;
            }
            Some(tok) if tok.matches(name[n]) => {
                n += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, from)) => {
                    t = star + 1;
                    n = from + 1;
                    backtrack = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| matches!(tok, Token::Star))
}

enum Token {
    Star,
    Any,
    Literal(char),
    Class(Class),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star => true,
            Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class(class) => class.matches(c),
        }
    }
}

fn tokenize(mut pattern: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    while let Some((&first, rest)) = pattern.split_first() {
        pattern = rest;
        match first {
            '*' => {
                if !matches!(tokens.last(), Some(Token::Star)) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::Any),
            '[' => match parse_class(rest) {
                Some((class, after)) => {
                    tokens.push(Token::Class(class));
                    pattern = after;
                }
                // No closing bracket: a literal '['.
                None => tokens.push(Token::Literal('[')),
            },
            literal => tokens.push(Token::Literal(literal)),
        }
    }
    tokens
}

struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Parses a class after its `[`; returns it and the pattern after its `]`.
fn parse_class(pattern: &[char]) -> Option<(Class, &[char])> {
    let mut i = 0;
    let negated = pattern.first() == Some(&'!');
    if negated {
        i += 1;
    }
    // A ']' right at the start is a literal member.
    let start = i;
    let mut ranges = Vec::new();
    loop {
        let c = *pattern.get(i)?;
        if c == ']' && i > start {
            return Some((Class { negated, ranges }, &pattern[i + 1..]));
        }
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|&c| c != ']') {
            let hi = pattern[i + 2];
            if c <= hi {
                ranges.push((c, hi));
            }
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn segments_and_wildcards() {
        let cases = [
            ("a/b.txt", "a/*", true),
            ("a/b/c.txt", "a/*", false),
            ("a/b/c.txt", "a/*/*.txt", true),
            ("file.tgz", "*.tgz", true),
            ("file.tgz", "file.t?z", true),
            ("file.tgz", "file.[st]gz", true),
            ("file.tgz", "file.[!t]gz", false),
            ("file.bgz", "file.[a-c]gz", true),
            ("[x", "[x", true),
            ("", "*", true),
            ("targets/foo", "*", false),
        ];
        for (path, pattern, want) in cases {
            assert_eq!(path_matches(path, pattern), want, "{path} vs {pattern}");
        }
    }
}
