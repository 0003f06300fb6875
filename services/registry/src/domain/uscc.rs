//! The Unified Social Credit Code (统一社会信用代码, GB 32100-2015): the key of every enterprise
//! (`enterprises/{uscc}`).
//!
//! What this module is for: turning whatever a caller typed into either a [`Uscc`] — a code that
//! passes the GB 32100-2015 check, or a real early pilot code on the configured allow-list — or
//! reasons a person can read. Handlers parse once at the boundary with [`Uscc::parse`] and from
//! then on hold only valid codes; [`check`] gives the full diagnosis (parts, expected check
//! character, every problem found) for operator tools and bulk-import reports.
//!
//! What it must never do:
//! - panic, on any input: any UTF-8 is welcome (Chinese included) and lengths and positions are
//!   counted in characters, not bytes;
//! - pass a failed checksum silently: an allow-listed code is reported as
//!   [`Verdict::KnownException`] and keeps [`Uscc::is_known_exception`] for its whole life;
//! - hard-code the allow-list: it is configuration ([`KnownExceptions`]);
//! - demand digits in positions 1-2: the registering department and category may be letters;
//! - let the organisation code's own GB 11714 check change the verdict: it is a warning only;
//! - do I/O or logging: everything here is a pure function of its arguments.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;

/// Length of a code in characters (GB 32100-2015, code structure).
pub const LENGTH: usize = 18;

/// The code character set in value order: the character at index `v` has value `v`, 0..=30
/// (GB 32100-2015, code character set). Its length is the checksum modulus.
pub const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Letters GB 32100-2015 leaves out of [`ALPHABET`] because they are easily mistaken for
/// digits or other letters; named so a rejection can say why.
const NEVER_USED_LETTERS: &str = "IOZSV";

/// Checksum modulus: the number of symbols in [`ALPHABET`] (GB 32100-2015, check character).
const MODULUS: u32 = 31;

/// Weight of positions 1..=17: `w_i = 3^(i-1) mod 31` (GB 32100-2015, check character). Every
/// weight is non-zero modulo the prime 31, which is why any single wrong character is caught.
const WEIGHTS: [u32; LENGTH - 1] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Positions (1-based) of the administrative division code (GB 32100-2015, code structure;
/// the code itself is GB/T 2260 and always digits).
const DIVISION_POSITIONS: RangeInclusive<usize> = 3..=8;

/// Positions (1-based) of the organisation code (GB 32100-2015, code structure; GB 11714).
const ORGANIZATION_CODE_POSITIONS: RangeInclusive<usize> = 9..=17;

/// Position (1-based) of the check character (GB 32100-2015, code structure).
const CHECK_POSITION: usize = LENGTH;

/// Weights of the organisation code's first eight characters (GB 11714-1997, check code).
const ORGANIZATION_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Modulus of the organisation code check (GB 11714-1997, check code).
const ORGANIZATION_CODE_MODULUS: u32 = 11;

/// How many bad characters a report lists one by one; beyond this it gives a count, so a
/// pasted document does not turn into a report thousands of lines long.
const MAX_LISTED_CHARACTER_PROBLEMS: usize = 10;

/// Shandong prefecture-level division prefixes (GB/T 2260) and the English city names the
/// programme uses. 3712 was Laiwu, merged into Jinan in 2019: codes issued there before the
/// merger still carry 3712, and the enterprise now belongs to Jinan.
const SHANDONG_CITIES: [(&str, &str); 17] = [
    ("3701", "Jinan"),
    ("3702", "Qingdao"),
    ("3703", "Zibo"),
    ("3704", "Zaozhuang"),
    ("3705", "Dongying"),
    ("3706", "Yantai"),
    ("3707", "Weifang"),
    ("3708", "Jining"),
    ("3709", "Tai'an"),
    ("3710", "Weihai"),
    ("3711", "Rizhao"),
    ("3712", "Jinan"),
    ("3713", "Linyi"),
    ("3714", "Dezhou"),
    ("3715", "Liaocheng"),
    ("3716", "Binzhou"),
    ("3717", "Heze"),
];

/// A valid (or allow-listed) USCC, always 18 upper-case characters.
///
/// Positions 1-17 are always in [`ALPHABET`] with digits in 3-8; position 18 is the computed
/// check character, or, for a known exception only, whatever upper-case letter or digit the
/// allow-listed code carries.
///
/// Why a newtype: handlers, storage and resource names can only hold codes that went through
/// [`Uscc::parse`], so nothing downstream re-checks, or forgets to. The known-exception flag
/// travels with the code so an allow-listed code is never mistaken for one that passed the
/// check. The flag is determined by the code itself (set exactly when its checksum fails), so
/// the derived equality, ordering and hashing agree with those of the code string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc {
    /// The normalised code (see the type's invariant).
    code: String,
    /// The checksum fails and the code is on the allow-list.
    known_exception: bool,
}

impl Uscc {
    /// Trims, upper-cases, and checks. Known exceptions come from the allow-list.
    ///
    /// Accepts [`Verdict::Valid`] and [`Verdict::KnownException`]; see [`check`] for the full
    /// diagnosis of a rejected code.
    pub fn parse(input: &str, known_exceptions: &KnownExceptions) -> Result<Uscc, UsccError> {
        let report = check(input, known_exceptions);
        match report.verdict {
            Verdict::Valid => Ok(Uscc {
                code: report.normalized,
                known_exception: false,
            }),
            Verdict::KnownException => Ok(Uscc {
                code: report.normalized,
                known_exception: true,
            }),
            Verdict::InvalidChecksum => match (report.expected_check_character, report.parts) {
                (Some(expected), Some(parts)) => Err(UsccError::InvalidChecksum {
                    expected,
                    found: parts.check_character,
                }),
                // `check` always fills both for a checksum failure; stay total anyway.
                _ => Err(UsccError::InvalidFormat(report.problems.join("; "))),
            },
            Verdict::InvalidFormat => Err(UsccError::InvalidFormat(report.problems.join("; "))),
        }
    }

    /// The code: 18 upper-case characters.
    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The code's fields by position, with the Shandong city where there is one.
    pub fn parts(&self) -> UsccParts {
        parts_of(&self.code)
    }

    /// Whether this code fails the GB 32100-2015 check and was accepted only because it is on
    /// the allow-list; callers should show that rather than present the code as checked.
    pub fn is_known_exception(&self) -> bool {
        self.known_exception
    }

    /// The code as an owned string.
    pub fn into_string(self) -> String {
        self.code
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

impl AsRef<str> for Uscc {
    fn as_ref(&self) -> &str {
        &self.code
    }
}

impl From<Uscc> for String {
    fn from(uscc: Uscc) -> String {
        uscc.code
    }
}

/// The allow-list of real early pilot codes that fail the check (configurable; e.g.
/// `91350100M0001TGQXM`).
///
/// Why it exists: some codes issued during the pilot phase fail the GB 32100-2015 check yet
/// identify real enterprises; refusing them would lock those enterprises out. Each entry is
/// configuration, an explicit and reviewable decision, and a listed code is reported as
/// [`Verdict::KnownException`], never as [`Verdict::Valid`]. The list is consulted only for
/// checksum failures: an entry that is malformed (wrong length, forbidden characters) never
/// makes a malformed code acceptable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownExceptions(BTreeSet<String>);

impl KnownExceptions {
    /// Builds the list, normalising each entry as input is normalised (trim, upper-case) and
    /// dropping blank entries.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(codes: I) -> Self {
        Self(
            codes
                .into_iter()
                .map(|code| normalize(code.as_ref()))
                .filter(|code| !code.is_empty())
                .collect(),
        )
    }

    /// Whether `code`, normalised (trim, upper-case), is on the list.
    pub fn contains(&self, code: &str) -> bool {
        self.0.contains(&normalize(code))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalised entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// The outcome of [`check`].
///
/// Why four outcomes and not a boolean: an allow-listed code is accepted but must stay
/// visible as an exception, and a caller fixing a typo needs to know whether the shape or the
/// checksum is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Well formed, and the check character matches.
    Valid,
    /// Wrong length, a character outside [`ALPHABET`] in positions 1-17, a letter in the
    /// division code, or something other than a letter or digit in position 18.
    InvalidFormat,
    /// Well formed, but the check character does not match (including a letter that never
    /// appears in codes, such as the `Z` of `91350100M000100Y4Z`).
    InvalidChecksum,
    /// The check character does not match, but the code is on the allow-list.
    KnownException,
}

impl Verdict {
    /// Whether [`Uscc::parse`] accepts a code with this verdict.
    pub fn is_accepted(self) -> bool {
        matches!(self, Verdict::Valid | Verdict::KnownException)
    }

    /// A stable UPPER_SNAKE name for reason codes and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "VALID",
            Verdict::InvalidFormat => "INVALID_FORMAT",
            Verdict::InvalidChecksum => "INVALID_CHECKSUM",
            Verdict::KnownException => "KNOWN_EXCEPTION",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a well-formed code by position (GB 32100-2015, code structure).
///
/// Why: callers read "category" and "city" by name instead of slicing strings by position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsccParts {
    /// Position 1: the registering department (1-9, A, N, Y; 9 = market regulation).
    pub registering_department: char,
    /// Position 2: the category within that department (under 9: 1 enterprise, 2 individual
    /// business, 3 farmers' cooperative).
    pub category: char,
    /// Positions 3-8: the administrative division of registration (GB/T 2260), six digits.
    pub division_code: String,
    /// The Shandong city of `division_code` ([`city_for_division`]); `None` outside Shandong
    /// or for a province-level code.
    pub city: Option<&'static str>,
    /// Positions 9-17: the organisation code (GB 11714), its own check character last.
    pub organization_code: String,
    /// Position 18: the check character.
    pub check_character: char,
}

/// Everything [`check`] found out about one input.
///
/// Why a report besides [`Uscc::parse`]: bulk import and operators need every reason a row
/// failed, the expected check character, and warnings that do not reject the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsccReport {
    /// The input trimmed and upper-cased: what was checked.
    pub normalized: String,
    /// The outcome.
    pub verdict: Verdict,
    /// The fields, when the code is well formed (any verdict but `InvalidFormat`).
    pub parts: Option<UsccParts>,
    /// The check character the first 17 characters call for, when the code is well formed.
    pub expected_check_character: Option<char>,
    /// Whether the organisation code's own GB 11714 check passed; `false` also when it could not
    /// be checked (malformed code). A warning only: it never changes `verdict`.
    pub organization_code_check_passed: bool,
    /// Human-readable problems, errors first; warnings start with `warning:`. Empty exactly
    /// when the code is valid and its organisation code check passed.
    pub problems: Vec<String>,
}

/// Why a code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Not 18 characters of the code's shape (see [`Verdict::InvalidFormat`]); the reason says
    /// which.
    #[error("not a Unified Social Credit Code (GB 32100-2015): {0}")]
    InvalidFormat(String),
    /// Well formed, but the check character is wrong: most likely a typo.
    #[error(
        "Unified Social Credit Code check failed (GB 32100-2015): \
         check character is '{found}', expected '{expected}'"
    )]
    InvalidChecksum {
        /// The check character the first 17 characters call for.
        expected: char,
        /// The check character given.
        found: char,
    },
}

/// Checks `input` and explains the outcome; never panics.
///
/// The input is trimmed and upper-cased first. The allow-list is consulted only when a
/// well-formed code fails its checksum.
pub fn check(input: &str, known_exceptions: &KnownExceptions) -> UsccReport {
    let normalized = normalize(input);
    let mut problems = format_problems(&normalized);
    let body: String = normalized.chars().take(LENGTH - 1).collect();
    let expected = match check_character(&body) {
        Some(expected) if problems.is_empty() => expected,
        _ => {
            if problems.is_empty() {
                // Unreachable: a well-formed code always has a computable check character.
                problems.push("the first 17 characters cannot be checked".to_owned());
            }
            return UsccReport {
                normalized,
                verdict: Verdict::InvalidFormat,
                parts: None,
                expected_check_character: None,
                organization_code_check_passed: false,
                problems,
            };
        }
    };

    let parts = parts_of(&normalized);
    let verdict = if parts.check_character == expected {
        Verdict::Valid
    } else {
        problems.push(format!(
            "check character is {:?}, expected {:?}",
            parts.check_character, expected
        ));
        if known_exceptions.contains(&normalized) {
            problems.push(
                "accepted only as a known exception: the code is on the allow-list of real \
                 early pilot codes that fail the check"
                    .to_owned(),
            );
            Verdict::KnownException
        } else {
            Verdict::InvalidChecksum
        }
    };

    let organization_code_check_passed = match organization_code_problem(&parts.organization_code) {
        None => true,
        Some(warning) => {
            problems.push(warning);
            false
        }
    };

    UsccReport {
        normalized,
        verdict,
        parts: Some(parts),
        expected_check_character: Some(expected),
        organization_code_check_passed,
        problems,
    }
}

/// The Shandong city of a GB/T 2260 division code: six digits (`370102`) or a four-digit
/// prefecture prefix (`3701`). `None` for anything else, outside Shandong, or for the
/// province-level `3700`.
pub fn city_for_division(division_code: &str) -> Option<&'static str> {
    let well_formed = matches!(division_code.len(), 4 | 6)
        && division_code.bytes().all(|byte| byte.is_ascii_digit());
    if !well_formed {
        return None;
    }
    let prefecture = division_code.get(..4)?;
    SHANDONG_CITIES
        .iter()
        .find(|(prefix, _)| *prefix == prefecture)
        .map(|(_, city)| *city)
}

/// The check character (position 18) for the first 17 characters of a code: `None` unless
/// `first17` is exactly 17 characters of [`ALPHABET`] (upper case, not normalised).
///
/// Only the checksum: it does not require digits in the division code.
pub fn check_character(first17: &str) -> Option<char> {
    let sum = weighted_sum(first17)?;
    symbol((MODULUS - sum % MODULUS) % MODULUS)
}

/// The organisation code's check character (GB 11714-1997) for its first eight characters:
/// digits count their value and letters A=10 … Z=35; `C = 11 - Σ mod 11`, with 10 written `X`
/// and 11 written `0`. `None` unless `first8` is exactly eight digits or upper-case letters.
pub fn organization_code_check_character(first8: &str) -> Option<char> {
    let mut characters = first8.chars();
    let mut sum = 0;
    for weight in ORGANIZATION_CODE_WEIGHTS {
        let value = match characters.next()? {
            // Base-36 digit values are exactly GB 11714's: 0-9, then A=10 … Z=35.
            c @ ('0'..='9' | 'A'..='Z') => c.to_digit(36)?,
            _ => return None,
        };
        sum += value * weight;
    }
    if characters.next().is_some() {
        return None;
    }
    match ORGANIZATION_CODE_MODULUS - sum % ORGANIZATION_CODE_MODULUS {
        10 => Some('X'),
        11 => Some('0'),
        digit => char::from_digit(digit, 10),
    }
}

/// Trim (any Unicode white space, including the ideographic space of Chinese input) and
/// upper-case ASCII letters only: full Unicode upper-casing can turn one character into
/// several (`ﬀ` into `FF`), which would make a non-code look like a code. Anything non-ASCII
/// stays as typed and is reported.
fn normalize(input: &str) -> String {
    input.trim().to_ascii_uppercase()
}

/// The value of `c` in [`ALPHABET`], if it is there.
fn value_of(c: char) -> Option<u32> {
    let index = ALPHABET.chars().position(|symbol| symbol == c)?;
    u32::try_from(index).ok()
}

/// The symbol of `value` in [`ALPHABET`]; `Some` for every value below [`MODULUS`].
fn symbol(value: u32) -> Option<char> {
    ALPHABET.chars().nth(usize::try_from(value).ok()?)
}

/// `Σ v_i·w_i` over exactly 17 characters of [`ALPHABET`].
fn weighted_sum(first17: &str) -> Option<u32> {
    let mut characters = first17.chars();
    let mut sum = 0;
    for weight in WEIGHTS {
        sum += value_of(characters.next()?)? * weight;
    }
    if characters.next().is_some() {
        return None;
    }
    Some(sum)
}

/// Every reason `normalized` is not a well-formed code; empty when it is.
fn format_problems(normalized: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let length = normalized.chars().count();
    let length_is_right = length == LENGTH;
    if !length_is_right {
        problems.push(format!("length {length}, expected {LENGTH}"));
    }

    let mut character_problems = 0;
    for (index, c) in normalized.chars().enumerate() {
        let position = index + 1;
        // A letter or digit outside the alphabet in position 18 is a wrong check character,
        // judged (and reported) by the checksum like any other: `91350100M000100Y4Z`.
        let is_check_candidate =
            length_is_right && position == CHECK_POSITION && c.is_ascii_alphanumeric();
        let problem = if value_of(c).is_none() && !is_check_candidate {
            Some(if NEVER_USED_LETTERS.contains(c) {
                format!(
                    "character {c:?} at position {position} is not in the GB 32100 alphabet \
                     (I, O, Z, S, V never appear)"
                )
            } else {
                format!(
                    "character {c:?} at position {position} is not in the GB 32100 alphabet \
                     (digits and upper-case letters except I, O, Z, S, V)"
                )
            })
        } else if length_is_right && DIVISION_POSITIONS.contains(&position) && !c.is_ascii_digit() {
            // Positions only mean something in an 18-character code: with a character missing,
            // "a letter in the division code" would point at the wrong place.
            Some(format!(
                "character {c:?} at position {position} is a letter, but positions 3-8 \
                 (administrative division code, GB/T 2260) must be digits"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            character_problems += 1;
            if character_problems <= MAX_LISTED_CHARACTER_PROBLEMS {
                problems.push(problem);
            }
        }
    }
    if character_problems > MAX_LISTED_CHARACTER_PROBLEMS {
        problems.push(format!(
            "and {} more characters that are not allowed",
            character_problems - MAX_LISTED_CHARACTER_PROBLEMS
        ));
    }
    problems
}

/// Splits a well-formed code into its fields. Total: extra characters are ignored and missing
/// ones leave `'0'` or an empty string, though callers only pass well-formed codes.
fn parts_of(code: &str) -> UsccParts {
    let mut parts = UsccParts {
        registering_department: '0',
        category: '0',
        division_code: String::with_capacity(6),
        city: None,
        organization_code: String::with_capacity(9),
        check_character: '0',
    };
    for (index, c) in code.chars().enumerate() {
        match index + 1 {
            1 => parts.registering_department = c,
            2 => parts.category = c,
            position if DIVISION_POSITIONS.contains(&position) => parts.division_code.push(c),
            position if ORGANIZATION_CODE_POSITIONS.contains(&position) => {
                parts.organization_code.push(c);
            }
            CHECK_POSITION => parts.check_character = c,
            _ => {}
        }
    }
    parts.city = city_for_division(&parts.division_code);
    parts
}

/// The warning for a failed GB 11714 organisation code check, or `None` when it passes.
fn organization_code_problem(organization_code: &str) -> Option<String> {
    let first8: String = organization_code.chars().take(8).collect();
    let found = organization_code.chars().nth(8);
    match (organization_code_check_character(&first8), found) {
        (Some(expected), Some(found)) if expected == found => None,
        (Some(expected), Some(found)) => Some(format!(
            "warning: organisation code check (GB 11714) failed: character at position 17 is \
             {found:?}, expected {expected:?}; this does not change the verdict"
        )),
        _ => Some(
            "warning: organisation code (positions 9-17, GB 11714) could not be checked; \
             this does not change the verdict"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WORKED_EXAMPLE: &str = "91350100M000100Y43";
    const ALSO_VALID: &str = "91110000600037341L";
    const PILOT_CODE: &str = "91350100M0001TGQXM";

    fn no_exceptions() -> KnownExceptions {
        KnownExceptions::default()
    }

    fn pilot_allow_list() -> KnownExceptions {
        KnownExceptions::new([PILOT_CODE])
    }

    /// `body` followed by its computed check character.
    fn with_check_character(body: &str) -> String {
        let check = check_character(body).expect("a 17-character alphabet body");
        format!("{body}{check}")
    }

    /// Every code that differs from `code` in exactly one position, with the verdict it must get.
    fn single_substitutions(code: &str) -> Vec<(String, usize, Verdict)> {
        let original: Vec<char> = code.chars().collect();
        let mut out = Vec::new();
        for (index, &was) in original.iter().enumerate() {
            let position = index + 1;
            for replacement in ALPHABET.chars().filter(|&c| c != was) {
                let mut changed = original.clone();
                changed[index] = replacement;
                let expected =
                    if DIVISION_POSITIONS.contains(&position) && !replacement.is_ascii_digit() {
                        Verdict::InvalidFormat
                    } else {
                        Verdict::InvalidChecksum
                    };
                out.push((changed.into_iter().collect(), position, expected));
            }
        }
        out
    }

    #[test]
    fn weights_are_powers_of_three_mod_31_and_never_zero() {
        let mut power = 1;
        for (index, &weight) in WEIGHTS.iter().enumerate() {
            assert_eq!(weight, power, "weight of position {}", index + 1);
            // 31 is prime, so a non-zero weight is coprime to it: w·d ≡ 0 (mod 31) only for d ≡ 0.
            assert!(weight > 0 && weight < MODULUS);
            power = power * 3 % MODULUS;
        }
    }

    #[test]
    fn alphabet_has_31_symbols_in_value_order_and_never_i_o_z_s_v() {
        assert_eq!(ALPHABET.chars().count(), MODULUS as usize);
        for (value, c) in ALPHABET.chars().enumerate() {
            assert_eq!(value_of(c), Some(value as u32));
            assert_eq!(symbol(value as u32), Some(c));
        }
        for c in NEVER_USED_LETTERS.chars() {
            assert_eq!(value_of(c), None, "{c}");
        }
        assert_eq!(symbol(MODULUS), None);
    }

    #[test]
    fn worked_example_of_the_standard_sums_to_1640() {
        assert_eq!(weighted_sum("91350100M000100Y4"), Some(1640));
        assert_eq!(check_character("91350100M000100Y4"), Some('3'));
    }

    #[test]
    fn verdicts_follow_the_standard_and_the_allow_list() {
        use Verdict::{InvalidChecksum, InvalidFormat, KnownException, Valid};
        const LISTED: bool = true;
        const UNLISTED: bool = false;
        // (input, pilot code allow-listed?, verdict)
        let cases: &[(&str, bool, Verdict)] = &[
            (WORKED_EXAMPLE, UNLISTED, Valid),
            (ALSO_VALID, UNLISTED, Valid),
            ("91350100M000100Y4Z", UNLISTED, InvalidChecksum),
            ("91310115MA1H8R7C6D", UNLISTED, InvalidChecksum),
            (PILOT_CODE, UNLISTED, InvalidChecksum),
            (PILOT_CODE, LISTED, KnownException),
            ("  91350100m0001tgqxm\n", LISTED, KnownException),
            // A valid code stays Valid even when listed.
            (WORKED_EXAMPLE, LISTED, Valid),
            // Lower case and padding (ASCII and ideographic spaces) are accepted.
            ("  91350100m000100y43\t", UNLISTED, Valid),
            ("\u{3000}91110000600037341l\u{3000}", UNLISTED, Valid),
            // Wrong length.
            ("", UNLISTED, InvalidFormat),
            ("   ", UNLISTED, InvalidFormat),
            ("91350100M000100Y4", UNLISTED, InvalidFormat),
            ("91350100M000100Y433", UNLISTED, InvalidFormat),
            ("91350100M0001TGQX", LISTED, InvalidFormat),
            // I, O, Z, S, V never appear (upper-casing does not rescue them).
            ("91350100I000100Y43", UNLISTED, InvalidFormat),
            ("91350100o000100Y43", UNLISTED, InvalidFormat),
            ("91350100M000100Z43", UNLISTED, InvalidFormat),
            ("S1350100M000100Y43", UNLISTED, InvalidFormat),
            ("9V350100M000100Y43", UNLISTED, InvalidFormat),
            // Letters in the division code (positions 3-8).
            ("91A50100M000100Y43", UNLISTED, InvalidFormat),
            ("913501M0M000100Y43", UNLISTED, InvalidFormat),
            // Chinese and other non-ASCII characters, counted as characters.
            ("91350100中000100Y43", UNLISTED, InvalidFormat),
            ("统一社会信用代码", UNLISTED, InvalidFormat),
            (
                "９１３５０１００Ｍ０００１００Ｙ４３",
                UNLISTED,
                InvalidFormat,
            ),
            // Unicode upper-casing would turn "ﬀ" into "FF"; it stays a rejected character.
            ("91350100M00010ﬀ43", UNLISTED, InvalidFormat),
            ("91350100-000100Y43", UNLISTED, InvalidFormat),
            // Position 18 is judged by the checksum if it is a letter or digit, else by format.
            ("91350100M000100Y4z", UNLISTED, InvalidChecksum),
            ("91350100M000100Y4O", UNLISTED, InvalidChecksum),
            ("91350100M000100Y4Z", LISTED, InvalidChecksum),
            ("91350100M000100Y4-", UNLISTED, InvalidFormat),
            ("91350100M000100Y4中", UNLISTED, InvalidFormat),
            ("91350100M000100Y4３", UNLISTED, InvalidFormat),
        ];
        for &(input, listed, verdict) in cases {
            let list = if listed {
                pilot_allow_list()
            } else {
                no_exceptions()
            };
            let report = check(input, &list);
            assert_eq!(report.verdict, verdict, "{input:?}: {:?}", report.problems);
            let well_formed = verdict != InvalidFormat;
            assert_eq!(report.parts.is_some(), well_formed, "{input:?}");
            assert_eq!(
                report.expected_check_character.is_some(),
                well_formed,
                "{input:?}"
            );
            assert_eq!(report.problems.is_empty(), verdict == Valid, "{input:?}");
            let parsed = Uscc::parse(input, &list);
            assert_eq!(parsed.is_ok(), verdict.is_accepted(), "{input:?}");
            assert_eq!(
                parsed.map(|uscc| uscc.is_known_exception()).ok(),
                verdict.is_accepted().then_some(verdict == KnownException),
                "{input:?}"
            );
        }
    }

    #[test]
    fn expected_check_characters_match_the_standard() {
        let cases: &[(&str, char)] = &[
            (WORKED_EXAMPLE, '3'),
            (ALSO_VALID, 'L'),
            ("91350100M000100Y4Z", '3'),
            ("91350100M000100Y4z", '3'),
        ];
        for &(input, expected) in cases {
            let report = check(input, &no_exceptions());
            assert_eq!(report.expected_check_character, Some(expected), "{input:?}");
        }
    }

    #[test]
    fn normalisation_trims_and_upper_cases_ascii_only() {
        let cases: &[(&str, &str)] = &[
            ("  91350100m000100y43\t", WORKED_EXAMPLE),
            ("\u{3000}91110000600037341l\u{3000}", ALSO_VALID),
            ("\n\r 91350100m0001tgqxm ", PILOT_CODE),
            ("   ", ""),
            ("统一社会信用代码", "统一社会信用代码"),
            ("ﬀ ß ı", "ﬀ ß ı"),
            ("ａｂｃ abc", "ａｂｃ ABC"),
        ];
        for &(input, normalized) in cases {
            assert_eq!(
                check(input, &no_exceptions()).normalized,
                normalized,
                "{input:?}"
            );
        }
    }

    #[test]
    fn problems_are_human_readable() {
        let cases: &[(&str, &[&str])] = &[
            ("91350100M000100Y4", &["length 17, expected 18"]),
            ("", &["length 0, expected 18"]),
            (
                "91350100O000100Y43",
                &[
                    "character 'O' at position 9 is not in the GB 32100 alphabet (I, O, Z, S, V never appear)",
                ],
            ),
            (
                "91350100M000100Y4Z",
                &["check character is 'Z', expected '3'"],
            ),
            (
                "91A50100M000100Y43",
                &[
                    "character 'A' at position 3 is a letter, but positions 3-8 (administrative division code, GB/T 2260) must be digits",
                ],
            ),
            (
                "91350100中00100Y43",
                &[
                    "length 17, expected 18",
                    "character '中' at position 9 is not in the GB 32100 alphabet (digits and upper-case letters except I, O, Z, S, V)",
                ],
            ),
        ];
        for (input, problems) in cases {
            assert_eq!(
                check(input, &no_exceptions()).problems,
                *problems,
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_long_paste_lists_ten_bad_characters_then_a_count() {
        let input = "中".repeat(1000);
        let report = check(&input, &no_exceptions());
        assert_eq!(report.verdict, Verdict::InvalidFormat);
        assert_eq!(report.problems.len(), 1 + MAX_LISTED_CHARACTER_PROBLEMS + 1);
        assert_eq!(report.problems[0], "length 1000, expected 18");
        assert_eq!(
            report.problems.last().map(String::as_str),
            Some("and 990 more characters that are not allowed")
        );
    }

    #[test]
    fn letters_are_allowed_in_positions_1_and_2() {
        for prefix in ["Y1", "N2", "A1", "9A", "YY"] {
            let code = with_check_character(&format!("{prefix}350100M000100Y4"));
            let report = check(&code, &no_exceptions());
            assert_eq!(
                report.verdict,
                Verdict::Valid,
                "{code}: {:?}",
                report.problems
            );
            let uscc = Uscc::parse(&code, &no_exceptions()).unwrap();
            let mut chars = prefix.chars();
            assert_eq!(Some(uscc.parts().registering_department), chars.next());
            assert_eq!(Some(uscc.parts().category), chars.next());
        }
    }

    #[test]
    fn parse_returns_the_normalised_code_or_the_reason() {
        let uscc = Uscc::parse(" 91350100m000100y43 ", &no_exceptions()).unwrap();
        assert_eq!(uscc.as_str(), WORKED_EXAMPLE);
        assert_eq!(uscc.to_string(), WORKED_EXAMPLE);
        assert!(!uscc.is_known_exception());
        assert_eq!(uscc, Uscc::parse(WORKED_EXAMPLE, &no_exceptions()).unwrap());
        assert_eq!(String::from(uscc.clone()), WORKED_EXAMPLE);
        assert_eq!(uscc.into_string(), WORKED_EXAMPLE);

        let pilot = Uscc::parse(PILOT_CODE, &pilot_allow_list()).unwrap();
        assert!(pilot.is_known_exception());
        assert_eq!(pilot.as_str(), PILOT_CODE);

        let expected = check_character("91350100M0001TGQX").unwrap();
        assert_eq!(
            Uscc::parse(PILOT_CODE, &no_exceptions()),
            Err(UsccError::InvalidChecksum {
                expected,
                found: 'M'
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y4Z", &no_exceptions()),
            Err(UsccError::InvalidChecksum {
                expected: '3',
                found: 'Z'
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y4", &no_exceptions()),
            Err(UsccError::InvalidFormat(
                "length 17, expected 18".to_owned()
            ))
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            UsccError::InvalidChecksum {
                expected: '3',
                found: 'Z'
            }
            .to_string(),
            "Unified Social Credit Code check failed (GB 32100-2015): check character is 'Z', expected '3'"
        );
        assert_eq!(
            UsccError::InvalidFormat("length 17, expected 18".to_owned()).to_string(),
            "not a Unified Social Credit Code (GB 32100-2015): length 17, expected 18"
        );
    }

    #[test]
    fn allow_list_entries_are_normalised_and_only_rescue_checksum_failures() {
        let list = KnownExceptions::new(vec![" 91350100m0001tgqxm\t".to_owned(), "  ".to_owned()]);
        assert_eq!(list.len(), 1);
        assert!(!list.is_empty());
        assert!(list.contains(PILOT_CODE));
        assert!(list.contains("91350100m0001tgqxm"));
        assert_eq!(list.iter().collect::<Vec<_>>(), [PILOT_CODE]);
        assert!(KnownExceptions::default().is_empty());
        assert!(!KnownExceptions::default().contains(PILOT_CODE));

        // A malformed entry never makes a malformed code acceptable.
        let malformed = KnownExceptions::new(["91350100O0001TGQXM", "91350100M0001TGQX"]);
        for code in malformed.iter() {
            assert_eq!(
                check(code, &malformed).verdict,
                Verdict::InvalidFormat,
                "{code}"
            );
        }
    }

    #[test]
    fn a_letter_that_never_appears_in_position_18_is_a_checksum_failure() {
        for letter in NEVER_USED_LETTERS.chars() {
            let code = format!("91350100M000100Y4{letter}");
            assert_eq!(
                Uscc::parse(&code, &no_exceptions()),
                Err(UsccError::InvalidChecksum {
                    expected: '3',
                    found: letter
                })
            );
            // Like any checksum failure, it is accepted only when allow-listed, and flagged.
            let listed = Uscc::parse(&code, &KnownExceptions::new([&code])).unwrap();
            assert!(listed.is_known_exception());
            assert_eq!(listed.parts().check_character, letter);
        }
    }

    #[test]
    fn parts_name_each_position() {
        let parts = Uscc::parse(WORKED_EXAMPLE, &no_exceptions())
            .unwrap()
            .parts();
        assert_eq!(
            parts,
            UsccParts {
                registering_department: '9',
                category: '1',
                division_code: "350100".to_owned(),
                city: None,
                organization_code: "M000100Y4".to_owned(),
                check_character: '3',
            }
        );
        let report = check("91350100M000100Y4Z", &no_exceptions());
        assert_eq!(report.parts.map(|p| p.check_character), Some('Z'));
    }

    #[test]
    fn shandong_codes_carry_their_city() {
        let code = with_check_character("91370200163562681");
        let uscc = Uscc::parse(&code, &no_exceptions()).unwrap();
        assert_eq!(uscc.parts().division_code, "370200");
        assert_eq!(uscc.parts().city, Some("Qingdao"));
        let laiwu = with_check_character("91371200163562681");
        let report = check(&laiwu, &no_exceptions());
        assert_eq!(report.parts.and_then(|p| p.city), Some("Jinan"));
    }

    #[test]
    fn city_lookup_covers_every_shandong_prefecture() {
        let cases: &[(&str, Option<&str>)] = &[
            ("3701", Some("Jinan")),
            ("370102", Some("Jinan")),
            ("3702", Some("Qingdao")),
            ("370211", Some("Qingdao")),
            ("3703", Some("Zibo")),
            ("3704", Some("Zaozhuang")),
            ("3705", Some("Dongying")),
            ("3706", Some("Yantai")),
            ("3707", Some("Weifang")),
            ("3708", Some("Jining")),
            ("3709", Some("Tai'an")),
            ("3710", Some("Weihai")),
            ("3711", Some("Rizhao")),
            ("3712", Some("Jinan")),
            ("371202", Some("Jinan")),
            ("3713", Some("Linyi")),
            ("3714", Some("Dezhou")),
            ("3715", Some("Liaocheng")),
            ("3716", Some("Binzhou")),
            ("371700", Some("Heze")),
            ("370000", None),
            ("3718", None),
            ("3799", None),
            ("350100", None),
            ("110000", None),
            ("", None),
            ("37", None),
            ("37010", None),
            ("3701020", None),
            ("3701AB", None),
            (" 3701", None),
            ("３７０１", None),
            ("济南", None),
        ];
        for (division, city) in cases {
            assert_eq!(city_for_division(division), *city, "{division:?}");
        }
    }

    #[test]
    fn check_character_needs_exactly_17_alphabet_characters() {
        let cases: &[(&str, Option<char>)] = &[
            ("91350100M000100Y4", Some('3')),
            ("91110000600037341", Some('L')),
            ("91350100M000100Y", None),
            ("91350100M000100Y43", None),
            ("91350100m000100y4", None),
            ("91350100O000100Y4", None),
            ("91350100中000100Y4", None),
            ("", None),
            // Only the checksum: letters in the division code are the format check's business.
            ("91A50100M000100Y4", check_character("91A50100M000100Y4")),
        ];
        for (body, expected) in cases {
            assert_eq!(check_character(body), *expected, "{body:?}");
        }
        assert!(check_character("91A50100M000100Y4").is_some());
    }

    #[test]
    fn organisation_code_check_is_a_warning_only() {
        for code in [WORKED_EXAMPLE, ALSO_VALID] {
            let report = check(code, &no_exceptions());
            assert!(report.organization_code_check_passed, "{code}");
            assert!(report.problems.is_empty(), "{code}");
        }
        // Passes the GB 32100 check, but M000100Y5 fails GB 11714 (it calls for '4').
        let code = with_check_character("91350100M000100Y5");
        let report = check(&code, &no_exceptions());
        assert_eq!(report.verdict, Verdict::Valid);
        assert!(!report.organization_code_check_passed);
        assert_eq!(
            report.problems,
            [
                "warning: organisation code check (GB 11714) failed: character at position 17 is '5', expected '4'; this does not change the verdict"
            ]
        );
        let uscc = Uscc::parse(&code, &no_exceptions()).unwrap();
        assert!(!uscc.is_known_exception());

        // Checksum failure and organisation code warning together: errors first.
        let report = check("91310115MA1H8R7C6D", &no_exceptions());
        assert_eq!(report.verdict, Verdict::InvalidChecksum);
        assert!(!report.organization_code_check_passed);
        assert_eq!(report.problems.len(), 2);
        assert!(report.problems[1].starts_with("warning:"));

        // The pilot code's organisation code happens to pass.
        assert!(check(PILOT_CODE, &pilot_allow_list()).organization_code_check_passed);
        // A malformed code cannot be checked.
        assert!(!check("91350100M000100Y4", &no_exceptions()).organization_code_check_passed);
    }

    #[test]
    fn organisation_code_check_character_follows_gb_11714() {
        let cases: &[(&str, Option<char>)] = &[
            ("M000100Y", Some('4')),
            ("60003734", Some('1')),
            ("M0001TGQ", Some('X')),
            ("MA1H8R7C", Some('4')),
            // Σ = 0 → 11 → '0'.
            ("00000000", Some('0')),
            // GB 11714 letters include those the USCC alphabet leaves out.
            (
                "Z0000000",
                check_character_for_gb_11714(&[35, 0, 0, 0, 0, 0, 0, 0]),
            ),
            ("m000100y", None),
            ("M000100", None),
            ("M000100Y4", None),
            ("M000100中", None),
        ];
        for (first8, expected) in cases {
            assert_eq!(
                organization_code_check_character(first8),
                *expected,
                "{first8:?}"
            );
        }
    }

    /// Independent reimplementation of GB 11714 from the values, for the table above.
    fn check_character_for_gb_11714(values: &[u32; 8]) -> Option<char> {
        let sum: u32 = values
            .iter()
            .zip([3, 7, 9, 10, 5, 8, 4, 2])
            .map(|(v, w)| v * w)
            .sum();
        match 11 - sum % 11 {
            10 => Some('X'),
            11 => Some('0'),
            d => char::from_digit(d, 10),
        }
    }

    #[test]
    fn every_single_character_substitution_is_rejected() {
        let letter_prefixed = with_check_character("Y1370200MA3C00004");
        for code in [WORKED_EXAMPLE, ALSO_VALID, letter_prefixed.as_str()] {
            assert_eq!(
                check(code, &no_exceptions()).verdict,
                Verdict::Valid,
                "{code}"
            );
            let substitutions = single_substitutions(code);
            // Exhaustive: 18 positions × 30 other symbols.
            assert_eq!(substitutions.len(), LENGTH * (ALPHABET.len() - 1));
            for (changed, position, expected) in substitutions {
                let verdict = check(&changed, &no_exceptions()).verdict;
                assert_eq!(
                    verdict, expected,
                    "{code} → {changed} (position {position})"
                );
            }
        }
    }

    #[test]
    fn a_valid_code_weighs_to_zero_mod_31() {
        // Why substitutions are always caught: Σ v_i·w_i + v_18 ≡ 0 (mod 31), and changing one
        // v_i by d ≢ 0 shifts the sum by w_i·d ≢ 0 because w_i is coprime to the prime 31.
        for code in [WORKED_EXAMPLE, ALSO_VALID] {
            let body: String = code.chars().take(17).collect();
            let last = code.chars().last().and_then(value_of).unwrap();
            assert_eq!((weighted_sum(&body).unwrap() + last) % MODULUS, 0, "{code}");
        }
    }

    #[test]
    fn verdict_names_are_stable() {
        assert_eq!(Verdict::Valid.to_string(), "VALID");
        assert_eq!(Verdict::InvalidFormat.as_str(), "INVALID_FORMAT");
        assert_eq!(Verdict::InvalidChecksum.as_str(), "INVALID_CHECKSUM");
        assert_eq!(Verdict::KnownException.as_str(), "KNOWN_EXCEPTION");
        assert!(Verdict::Valid.is_accepted() && Verdict::KnownException.is_accepted());
        assert!(!Verdict::InvalidFormat.is_accepted() && !Verdict::InvalidChecksum.is_accepted());
    }

    /// Any symbol of the alphabet.
    fn symbol_strategy() -> impl Strategy<Value = char> {
        proptest::sample::select(ALPHABET.chars().collect::<Vec<_>>())
    }

    /// A random 17-character body: any symbols in positions 1-2 and 9-17, digits in 3-8.
    fn body() -> impl Strategy<Value = String> {
        let digits: Vec<char> = ('0'..='9').collect();
        (
            proptest::collection::vec(symbol_strategy(), 2),
            proptest::collection::vec(proptest::sample::select(digits), 6),
            proptest::collection::vec(symbol_strategy(), 9),
        )
            .prop_map(|(head, division, organization)| {
                head.into_iter()
                    .chain(division)
                    .chain(organization)
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn a_body_with_its_computed_check_character_is_valid(body in body()) {
            let code = with_check_character(&body);
            let report = check(&code, &no_exceptions());
            prop_assert_eq!(report.verdict, Verdict::Valid);
            let uscc = Uscc::parse(&code, &no_exceptions()).unwrap();
            prop_assert!(!uscc.is_known_exception());
            prop_assert_eq!(uscc.as_str(), code.as_str());
            let parts = uscc.parts();
            prop_assert_eq!(
                format!(
                    "{}{}{}{}{}",
                    parts.registering_department,
                    parts.category,
                    parts.division_code,
                    parts.organization_code,
                    parts.check_character
                ),
                code.clone()
            );
            // Case and padding never matter.
            let padded = format!("  {}\t", code.to_ascii_lowercase());
            prop_assert_eq!(Uscc::parse(&padded, &no_exceptions()).unwrap(), uscc);
        }

        #[test]
        fn every_single_substitution_of_a_random_valid_code_is_rejected(body in body()) {
            let code = with_check_character(&body);
            for (changed, position, expected) in single_substitutions(&code) {
                let verdict = check(&changed, &no_exceptions()).verdict;
                prop_assert_eq!(verdict, expected, "{} → {} at {}", code, changed, position);
            }
        }

        #[test]
        fn any_check_character_but_the_computed_one_fails(
            body in body(),
            last in symbol_strategy(),
        ) {
            let code = format!("{body}{last}");
            let expected = check_character(&body).unwrap();
            let report = check(&code, &no_exceptions());
            let unlisted = if last == expected { Verdict::Valid } else { Verdict::InvalidChecksum };
            prop_assert_eq!(report.verdict, unlisted);
            prop_assert_eq!(report.expected_check_character, Some(expected));
            // On the allow-list, the failure becomes a known exception, never a pass.
            let listed = KnownExceptions::new([code.as_str()]);
            let on_list = if last == expected { Verdict::Valid } else { Verdict::KnownException };
            prop_assert_eq!(check(&code, &listed).verdict, on_list);
            prop_assert_eq!(
                Uscc::parse(&code, &listed).map(|u| u.is_known_exception()),
                Ok(last != expected)
            );
        }

        #[test]
        fn any_input_gets_a_verdict_without_panicking(input in any::<String>()) {
            let report = check(&input, &no_exceptions());
            let parsed = Uscc::parse(&input, &no_exceptions());
            prop_assert_eq!(parsed.is_ok(), report.verdict.is_accepted());
            prop_assert_eq!(report.normalized.as_str(), input.trim().to_ascii_uppercase());
            if report.verdict == Verdict::InvalidFormat {
                prop_assert!(!report.problems.is_empty());
                prop_assert!(report.parts.is_none());
            }
        }

        #[test]
        fn near_codes_get_a_verdict_without_panicking(input in "[0-9A-Za-z中 ]{0,20}") {
            let report = check(&input, &pilot_allow_list());
            if let Ok(uscc) = Uscc::parse(&input, &pilot_allow_list()) {
                prop_assert_eq!(uscc.as_str().chars().count(), LENGTH);
                prop_assert!(report.verdict.is_accepted());
            } else {
                prop_assert!(!report.verdict.is_accepted());
                prop_assert!(!report.problems.is_empty());
            }
        }

        #[test]
        fn city_lookup_never_panics(division in any::<String>()) {
            let _ = city_for_division(&division);
        }
    }
}
