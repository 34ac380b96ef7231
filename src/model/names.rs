//! Names the user typed against the names the broker has: suggestions for a typo.

/// Names that contain the input or are within a small edit distance of it.
pub fn closest<'a>(input: &str, names: &[&'a str]) -> Vec<&'a str> {
    let lower = input.to_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|n| {
            let nl = n.to_lowercase();
            let d = if nl.contains(&lower) || lower.contains(&nl) {
                0
            } else {
                levenshtein(&lower, &nl)
            };
            (d <= 2.max(lower.chars().count() / 4)).then_some((d, *n))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = ["billing", "billing.dlq", "shipping", "email.dlq"];
        assert_eq!(closest("biling", &names), vec!["billing"]);
        assert_eq!(closest("dlq", &names), vec!["billing.dlq", "email.dlq"]);
        assert!(closest("zzzzzzzz", &names).is_empty());
    }
}
