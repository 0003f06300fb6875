//! The GB 32100-2015 check character, written once as the tests' oracle: integration tests,
//! the CLI's tests and the reliability suite make valid (and deliberately invalid) unified
//! social credit codes with it and compare the registry's verdicts against it.
//!
//! It must stay independent of the registry's own implementation: it is what that
//! implementation is checked against, so it must never call into it.

/// The 31 characters a code may use, in value order (0-9, then A-Y without I, O, S, V, Z).
pub const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The weight of each of the first 17 positions: 3^i mod 31 (GB 32100-2015).
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character for the first 17 characters of a code.
///
/// # Panics
/// When `first17` is not 17 characters of [`ALPHABET`]: a test oracle fed a malformed body is a
/// broken test, not a verdict.
pub fn check_char(first17: &str) -> char {
    assert_eq!(
        first17.chars().count(),
        17,
        "a code body has 17 characters: {first17}"
    );
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| value(c).unwrap_or_else(|| panic!("{c:?} is outside the alphabet")) * w)
        .sum();
    let check = ((31 - sum % 31) % 31) as usize;
    ALPHABET
        .chars()
        .nth(check)
        .unwrap_or_else(|| unreachable!("a value below 31 names a character"))
}

/// `first17` completed with its check character: a code whose checksum is valid.
pub fn with_check(first17: &str) -> String {
    format!("{first17}{}", check_char(first17))
}

/// Whether `code` is 18 characters of the alphabet ending in its own check character.
/// (Only the checksum: the registration department, category and division tables are the
/// registry's business.)
pub fn valid(code: &str) -> bool {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 || chars.iter().any(|c| value(*c).is_none()) {
        return false;
    }
    let body: String = chars[..17].iter().collect();
    check_char(&body) == chars[17]
}

/// A valid code of an enterprise (department 9, category 1) registered in Jinan (370100),
/// one per `seed`: `91370100MA3C{seed:05}` plus its check character.
pub fn uscc_for(seed: u32) -> String {
    with_check(&format!("91370100MA3C{seed:05}"))
}

/// The weights of the 8 body characters of an organization code (GB 11714-1997), which fills
/// positions 9-17 of a unified code.
pub const ORGANIZATION_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// The check character of an organization code body (8 digits or upper-case letters, valued
/// 0-9 then A=10 … Z=35): `11 - sum mod 11`, where 10 is written `X` and 11 is `0`.
///
/// # Panics
/// When `first8` is not 8 digits or upper-case letters.
pub fn organization_code_check_char(first8: &str) -> char {
    assert_eq!(
        first8.chars().count(),
        8,
        "an organization code body has 8 characters: {first8}"
    );
    let sum: u32 = first8
        .chars()
        .zip(ORGANIZATION_CODE_WEIGHTS)
        .map(|(c, w)| {
            let v = match c {
                '0'..='9' | 'A'..='Z' => c.to_digit(36),
                _ => None,
            };
            v.unwrap_or_else(|| panic!("{c:?} is not a digit or an upper-case letter")) * w
        })
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or_else(|| unreachable!("{d} is below 10")),
    }
}

fn value(c: char) -> Option<u32> {
    ALPHABET.find(c).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two codes published with valid checksums (a Fujian and a Beijing registration).
    const KNOWN_VALID: [&str; 2] = ["91350100M000100Y43", "91110000600037341L"];

    #[test]
    fn the_known_valid_codes_check() {
        for code in KNOWN_VALID {
            assert!(valid(code), "{code}");
            assert_eq!(check_char(&code[..17]), code.chars().last().unwrap());
            assert_eq!(with_check(&code[..17]), code);
        }
    }

    #[test]
    fn any_other_last_character_fails() {
        for code in KNOWN_VALID {
            let others = ALPHABET.chars().filter(|c| !code.ends_with(*c));
            for c in others {
                let wrong = format!("{}{c}", &code[..17]);
                assert!(!valid(&wrong), "{wrong}");
            }
        }
    }

    #[test]
    fn wrong_lengths_and_characters_outside_the_alphabet_are_not_valid() {
        assert!(!valid(""));
        assert!(!valid("91350100M000100Y4"));
        assert!(!valid("91350100M000100Y433"));
        // I, O, S, V, Z are not in the alphabet; lower case is not either.
        assert!(!valid("91350100M000100YO3"));
        assert!(!valid("91110000600037341l"));
    }

    #[test]
    fn the_known_valid_codes_carry_valid_organization_codes() {
        // Positions 9-17 of a unified code are an organization code with its own check.
        for code in KNOWN_VALID {
            assert_eq!(
                organization_code_check_char(&code[8..16]),
                code.chars().nth(16).unwrap(),
                "{code}"
            );
        }
    }

    #[test]
    fn organization_check_values_ten_and_eleven_are_written_x_and_0() {
        // Sums 3, 0 and 2 × 6 = 12 ≡ 1 (mod 11): check values 8, 11 and 10.
        assert_eq!(organization_code_check_char("10000000"), '8');
        assert_eq!(organization_code_check_char("00000000"), '0');
        assert_eq!(organization_code_check_char("00000006"), 'X');
    }

    #[test]
    fn generated_codes_are_valid_and_distinct() {
        let codes: std::collections::BTreeSet<String> = (0..500).map(uscc_for).collect();
        assert_eq!(codes.len(), 500);
        assert!(
            codes
                .iter()
                .all(|c| valid(c) && c.starts_with("91370100MA3C"))
        );
    }
}
