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
//! - accept a department/category pair outside the GB 32100-2015 code table ([`CODE_TABLE`]):
//!   such a code has the right shape and may even carry a matching check character, yet no
//!   registry can have issued it (only the allow-list rescues one, as a known exception);
//! - let the organisation code's own GB 11714 check change the verdict: it is a warning only;
//! - do I/O or logging: everything here is a pure function of its arguments;
//! - depend on another Qilu crate: clients (the `qilu` CLI, the demo, the bench, tests) use it
//!   to make and check codes without building a server. The registry re-exports it as
//!   `qilu_registry::domain::uscc`.

#![forbid(unsafe_code)]

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

/// One registering department of the code table and the categories it may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Department {
    /// Position 1 of the code.
    pub code: char,
    /// The department's name as the standard writes it.
    pub name: &'static str,
    /// The categories (position 2) listed under this department, with their names.
    pub categories: &'static [(char, &'static str)],
}

/// The registering department codes (position 1) and the category codes (position 2) each may
/// issue: GB 32100-2015, Table 1 "登记管理部门代码和机构类别代码" (code table of registering
/// departments and organisation categories), as maintained by the national credit code
/// authority. A pair not listed here cannot have been issued: the standard assigns categories per
/// department, so `93` exists and `94` does not. `Y` (其他) has no category subdivision and always
/// uses `1` ("不再具体划分机构类别，统一用1表示").
///
/// A standard's code table, like the check weights, not programme policy: it changes only with
/// the standard. Real codes that do not conform are handled by the allow-list
/// ([`KnownExceptions`]), not by loosening this table.
pub const CODE_TABLE: &[Department] = &[
    Department {
        code: '1',
        name: "机构编制",
        categories: &[
            ('1', "机关"),
            ('2', "事业单位"),
            ('3', "中央编办直接管理机构编制的群众团体"),
            ('9', "其他"),
        ],
    },
    Department {
        code: '2',
        name: "外交",
        categories: &[('1', "外国常驻新闻机构"), ('9', "其他")],
    },
    Department {
        code: '3',
        name: "司法行政",
        categories: &[
            ('1', "律师执业机构"),
            ('2', "公证处"),
            ('3', "基层法律服务所"),
            ('4', "司法鉴定机构"),
            ('5', "仲裁委员会"),
            ('9', "其他"),
        ],
    },
    Department {
        code: '4',
        name: "文化",
        categories: &[('1', "外国在华文化中心"), ('9', "其他")],
    },
    Department {
        code: '5',
        name: "民政",
        categories: &[
            ('1', "社会团体"),
            ('2', "民办非企业单位"),
            ('3', "基金会"),
            ('9', "其他"),
        ],
    },
    Department {
        code: '6',
        name: "旅游",
        categories: &[
            ('1', "外国旅游部门常驻代表机构"),
            ('2', "港澳台地区旅游部门常驻内地（大陆）代表机构"),
            ('9', "其他"),
        ],
    },
    Department {
        code: '7',
        name: "宗教",
        categories: &[('1', "宗教活动场所"), ('2', "宗教院校"), ('9', "其他")],
    },
    Department {
        code: '8',
        name: "工会",
        categories: &[('1', "基层工会"), ('9', "其他")],
    },
    Department {
        code: '9',
        name: "工商",
        categories: &[('1', "企业"), ('2', "个体工商户"), ('3', "农民专业合作社")],
    },
    Department {
        code: 'A',
        name: "中央军委改革和编制办公室",
        categories: &[('1', "军队事业单位"), ('9', "其他")],
    },
    Department {
        code: 'N',
        name: "农业",
        categories: &[
            ('1', "组级集体经济组织"),
            ('2', "村级集体经济组织"),
            ('3', "乡镇级集体经济组织"),
            ('9', "其他"),
        ],
    },
    Department {
        code: 'Y',
        name: "其他",
        categories: &[('1', "其他")],
    },
];

/// The registering department of position 1, if the code table lists it.
pub fn department(code: char) -> Option<&'static Department> {
    CODE_TABLE.iter().find(|d| d.code == code)
}

/// The name of `category` under `department`, if the code table lists the pair.
pub fn category_name(department_code: char, category: char) -> Option<&'static str> {
    department(department_code)?
        .categories
        .iter()
        .find(|(code, _)| *code == category)
        .map(|(_, name)| *name)
}

/// Why positions 1-2 are not a pair of the code table, or `None` when they are.
fn code_table_error(department_code: char, category: char) -> Option<UsccError> {
    match department(department_code) {
        None => Some(UsccError::UnknownRegisteringDepartment {
            department: department_code,
        }),
        Some(d) if category_name(d.code, category).is_none() => Some(UsccError::UnknownCategory {
            department: d.code,
            department_name: d.name,
            category,
        }),
        Some(_) => None,
    }
}

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
/// check. The flag is determined by the code itself (set exactly when its checksum or its
/// department/category pair fails), so
/// the derived equality, ordering and hashing agree with those of the code string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc {
    /// The normalised code (see the type's invariant).
    code: String,
    /// The checksum or the code table fails and the code is on the allow-list.
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
            Verdict::UnknownDepartmentOrCategory => match report
                .parts
                .and_then(|p| code_table_error(p.registering_department, p.category))
            {
                Some(err) => Err(err),
                // `check` gives this verdict only for a pair outside the table; stay total.
                None => Err(UsccError::InvalidFormat(report.problems.join("; "))),
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

    /// Whether this code fails the GB 32100-2015 check (checksum or code table) and was
    /// accepted only because it is on the allow-list; callers should show that rather than
    /// present the code as checked.
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
/// makes a malformed code acceptable. It also rescues a well-formed code whose department and
/// category pair is outside the GB 32100-2015 code table ([`CODE_TABLE`]): such a code too can
/// only be a real, non-conforming code that an operator chose to list.
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
    /// The check character does not match, or the department/category pair is outside the
    /// code table, but the code is on the allow-list.
    KnownException,
    /// Well formed, but positions 1-2 are not a registering department and category pair of
    /// the GB 32100-2015 code table ([`CODE_TABLE`]), so no registry can have issued it. Takes
    /// precedence over a checksum failure (both are reported in the problems).
    UnknownDepartmentOrCategory,
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
            Verdict::UnknownDepartmentOrCategory => "UNKNOWN_DEPARTMENT_OR_CATEGORY",
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
    /// The department's name in the code table ([`CODE_TABLE`]), e.g. `工商` for 9; `None` for
    /// a department the table does not list.
    pub registering_department_name: Option<&'static str>,
    /// Position 2: the category within that department (under 9: 1 enterprise, 2 individual
    /// business, 3 farmers' cooperative).
    pub category: char,
    /// The category's name under its department in the code table, e.g. `企业` for 91; `None`
    /// for a pair the table does not list.
    pub category_name: Option<&'static str>,
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
    /// Position 1 is not a registering department of the GB 32100-2015 code table.
    #[error(
        "not a Unified Social Credit Code (GB 32100-2015): position 1 is '{department}', \
         which is not a registering department of the code table (1-9, A, N, Y)"
    )]
    UnknownRegisteringDepartment {
        /// Position 1 as given.
        department: char,
    },
    /// Position 2 is not a category the code table lists under the department of position 1.
    #[error(
        "not a Unified Social Credit Code (GB 32100-2015): category '{category}' is not listed \
         under registering department '{department}' ({department_name}) in the code table"
    )]
    UnknownCategory {
        /// Position 1.
        department: char,
        /// The department's name in the code table.
        department_name: &'static str,
        /// Position 2 as given.
        category: char,
    },
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
    let table_error = code_table_error(parts.registering_department, parts.category);
    if let Some(err) = &table_error {
        problems.push(match err {
            UsccError::UnknownCategory {
                department,
                department_name,
                category,
            } => format!(
                "category {category:?} at position 2 is not listed under registering department \
                 {department:?} ({department_name}) in the GB 32100-2015 code table"
            ),
            _ => format!(
                "registering department {:?} at position 1 is not in the GB 32100-2015 code \
                 table (1-9, A, N, Y)",
                parts.registering_department
            ),
        });
    }
    let checksum_ok = parts.check_character == expected;
    if !checksum_ok {
        problems.push(format!(
            "check character is {:?}, expected {:?}",
            parts.check_character, expected
        ));
    }
    let verdict = if checksum_ok && table_error.is_none() {
        Verdict::Valid
    } else if known_exceptions.contains(&normalized) {
        problems.push(
            "accepted only as a known exception: the code is on the allow-list of real \
             early pilot codes that fail the check"
                .to_owned(),
        );
        Verdict::KnownException
    } else if table_error.is_some() {
        Verdict::UnknownDepartmentOrCategory
    } else {
        Verdict::InvalidChecksum
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
        registering_department_name: None,
        category: '0',
        category_name: None,
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
    parts.registering_department_name = department(parts.registering_department).map(|d| d.name);
    parts.category_name = category_name(parts.registering_department, parts.category);
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
                let (department, category) = (changed[0], changed[1]);
                let expected =
                    if DIVISION_POSITIONS.contains(&position) && !replacement.is_ascii_digit() {
                        Verdict::InvalidFormat
                    } else if category_name(department, category).is_none() {
                        Verdict::UnknownDepartmentOrCategory
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
        // Letters where the code table has them: departments A, N and Y.
        for prefix in ["Y1", "N2", "A1", "A9", "N9"] {
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

    /// The code table as GB 32100-2015 Table 1 gives it, written out independently of
    /// [`CODE_TABLE`]: every listed (department, category) pair.
    const STANDARD_PAIRS: &[(&str, &str)] = &[
        ("11", "机关"),
        ("12", "事业单位"),
        ("13", "中央编办直接管理机构编制的群众团体"),
        ("19", "其他"),
        ("21", "外国常驻新闻机构"),
        ("29", "其他"),
        ("31", "律师执业机构"),
        ("32", "公证处"),
        ("33", "基层法律服务所"),
        ("34", "司法鉴定机构"),
        ("35", "仲裁委员会"),
        ("39", "其他"),
        ("41", "外国在华文化中心"),
        ("49", "其他"),
        ("51", "社会团体"),
        ("52", "民办非企业单位"),
        ("53", "基金会"),
        ("59", "其他"),
        ("61", "外国旅游部门常驻代表机构"),
        ("62", "港澳台地区旅游部门常驻内地（大陆）代表机构"),
        ("69", "其他"),
        ("71", "宗教活动场所"),
        ("72", "宗教院校"),
        ("79", "其他"),
        ("81", "基层工会"),
        ("89", "其他"),
        ("91", "企业"),
        ("92", "个体工商户"),
        ("93", "农民专业合作社"),
        ("A1", "军队事业单位"),
        ("A9", "其他"),
        ("N1", "组级集体经济组织"),
        ("N2", "村级集体经济组织"),
        ("N3", "乡镇级集体经济组织"),
        ("N9", "其他"),
        ("Y1", "其他"),
    ];

    /// A code with `head` in positions 1-2 and the right check characters (GB 32100 and
    /// GB 11714).
    fn code_with_head(head: &str) -> String {
        with_check_character(&format!("{head}370100MA3C00003"))
    }

    #[test]
    fn every_pair_of_the_code_table_is_valid_and_named() {
        assert_eq!(listed_pairs().len(), STANDARD_PAIRS.len());
        for &(head, name) in STANDARD_PAIRS {
            let code = code_with_head(head);
            let report = check(&code, &no_exceptions());
            assert_eq!(
                report.verdict,
                Verdict::Valid,
                "{head}: {:?}",
                report.problems
            );
            let parts = report.parts.unwrap();
            assert_eq!(parts.category_name, Some(name), "{head}");
            assert!(parts.registering_department_name.is_some(), "{head}");
            assert!(Uscc::parse(&code, &no_exceptions()).is_ok(), "{head}");
        }
    }

    #[test]
    fn pairs_outside_the_code_table_are_rejected_with_their_reason() {
        // Every two-symbol head of the alphabet that the table does not list, each with a
        // matching check character: the checksum alone would pass them all.
        let listed: BTreeSet<String> = STANDARD_PAIRS
            .iter()
            .map(|(h, _)| (*h).to_owned())
            .collect();
        let mut rejected = 0;
        for department_code in ALPHABET.chars() {
            for category in ALPHABET.chars() {
                let head: String = [department_code, category].into_iter().collect();
                if listed.contains(&head) {
                    continue;
                }
                rejected += 1;
                let code = code_with_head(&head);
                let report = check(&code, &no_exceptions());
                assert_eq!(
                    report.verdict,
                    Verdict::UnknownDepartmentOrCategory,
                    "{head}"
                );
                assert!(!report.verdict.is_accepted());
                assert_eq!(report.problems.len(), 1, "{head}: {:?}", report.problems);
                let expected = if department(department_code).is_some() {
                    UsccError::UnknownCategory {
                        department: department_code,
                        department_name: department(department_code).unwrap().name,
                        category,
                    }
                } else {
                    UsccError::UnknownRegisteringDepartment {
                        department: department_code,
                    }
                };
                assert_eq!(
                    Uscc::parse(&code, &no_exceptions()),
                    Err(expected),
                    "{head}"
                );
                // On the allow-list it is a known exception, never a pass.
                let listed_code = KnownExceptions::new([code.as_str()]);
                assert_eq!(check(&code, &listed_code).verdict, Verdict::KnownException);
                assert!(
                    Uscc::parse(&code, &listed_code)
                        .unwrap()
                        .is_known_exception()
                );
            }
        }
        assert_eq!(rejected, 31 * 31 - STANDARD_PAIRS.len());
    }

    #[test]
    fn neighbours_of_listed_pairs_are_named_precisely() {
        use Verdict::{UnknownDepartmentOrCategory as Unknown, Valid};
        // (head, verdict, reason) — the reason as convert.rs names it.
        let cases: &[(&str, Verdict, Option<&str>)] = &[
            ("91", Valid, None),
            ("93", Valid, None),
            ("94", Unknown, Some("UNKNOWN_CATEGORY")),
            ("99", Unknown, Some("UNKNOWN_CATEGORY")),
            ("90", Unknown, Some("UNKNOWN_CATEGORY")),
            ("9A", Unknown, Some("UNKNOWN_CATEGORY")),
            ("14", Unknown, Some("UNKNOWN_CATEGORY")),
            ("18", Unknown, Some("UNKNOWN_CATEGORY")),
            ("22", Unknown, Some("UNKNOWN_CATEGORY")),
            ("36", Unknown, Some("UNKNOWN_CATEGORY")),
            ("42", Unknown, Some("UNKNOWN_CATEGORY")),
            ("54", Unknown, Some("UNKNOWN_CATEGORY")),
            ("63", Unknown, Some("UNKNOWN_CATEGORY")),
            ("73", Unknown, Some("UNKNOWN_CATEGORY")),
            ("82", Unknown, Some("UNKNOWN_CATEGORY")),
            ("A2", Unknown, Some("UNKNOWN_CATEGORY")),
            ("N4", Unknown, Some("UNKNOWN_CATEGORY")),
            ("Y2", Unknown, Some("UNKNOWN_CATEGORY")),
            ("Y9", Unknown, Some("UNKNOWN_CATEGORY")),
            ("01", Unknown, Some("UNKNOWN_REGISTERING_DEPARTMENT")),
            ("B1", Unknown, Some("UNKNOWN_REGISTERING_DEPARTMENT")),
            ("M1", Unknown, Some("UNKNOWN_REGISTERING_DEPARTMENT")),
            ("P1", Unknown, Some("UNKNOWN_REGISTERING_DEPARTMENT")),
            ("X1", Unknown, Some("UNKNOWN_REGISTERING_DEPARTMENT")),
        ];
        for &(head, verdict, reason) in cases {
            let code = code_with_head(head);
            assert_eq!(check(&code, &no_exceptions()).verdict, verdict, "{head}");
            let err = Uscc::parse(&code, &no_exceptions()).err();
            let got = err.as_ref().map(|e| match e {
                UsccError::UnknownCategory { .. } => "UNKNOWN_CATEGORY",
                UsccError::UnknownRegisteringDepartment { .. } => "UNKNOWN_REGISTERING_DEPARTMENT",
                _ => "OTHER",
            });
            assert_eq!(got, reason, "{head}");
        }
        assert_eq!(
            Uscc::parse(&code_with_head("94"), &no_exceptions())
                .unwrap_err()
                .to_string(),
            "not a Unified Social Credit Code (GB 32100-2015): category '4' is not listed under \
             registering department '9' (工商) in the code table"
        );
        assert_eq!(
            Uscc::parse(&code_with_head("B1"), &no_exceptions())
                .unwrap_err()
                .to_string(),
            "not a Unified Social Credit Code (GB 32100-2015): position 1 is 'B', which is not a \
             registering department of the code table (1-9, A, N, Y)"
        );
    }

    #[test]
    fn an_unknown_pair_outweighs_a_checksum_failure_and_both_are_reported() {
        let code = code_with_head("B1");
        let wrong = format!(
            "{}{}",
            &code[..17],
            if code.ends_with('0') { '1' } else { '0' }
        );
        let report = check(&wrong, &no_exceptions());
        assert_eq!(report.verdict, Verdict::UnknownDepartmentOrCategory);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(report.problems[0].contains("registering department 'B'"));
        assert!(report.problems[1].starts_with("check character is"));
        assert_eq!(
            report
                .parts
                .as_ref()
                .map(|p| (p.registering_department_name, p.category_name)),
            Some((None, None))
        );
        // The pilot code's pair (91) is listed: still a known exception for its checksum.
        assert_eq!(
            check(PILOT_CODE, &pilot_allow_list()).verdict,
            Verdict::KnownException
        );
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
                registering_department_name: Some("工商"),
                category: '1',
                category_name: Some("企业"),
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
        assert_eq!(
            Verdict::UnknownDepartmentOrCategory.as_str(),
            "UNKNOWN_DEPARTMENT_OR_CATEGORY"
        );
        assert!(!Verdict::UnknownDepartmentOrCategory.is_accepted());
        assert!(Verdict::Valid.is_accepted() && Verdict::KnownException.is_accepted());
        assert!(!Verdict::InvalidFormat.is_accepted() && !Verdict::InvalidChecksum.is_accepted());
    }

    /// Any symbol of the alphabet.
    fn symbol_strategy() -> impl Strategy<Value = char> {
        proptest::sample::select(ALPHABET.chars().collect::<Vec<_>>())
    }

    /// Every department/category pair of the code table.
    fn listed_pairs() -> Vec<(char, char)> {
        CODE_TABLE
            .iter()
            .flat_map(|d| d.categories.iter().map(move |(c, _)| (d.code, *c)))
            .collect()
    }

    /// A random 17-character body: a listed department/category pair in positions 1-2, any
    /// symbols in 9-17, digits in 3-8.
    fn body() -> impl Strategy<Value = String> {
        let digits: Vec<char> = ('0'..='9').collect();
        (
            proptest::sample::select(listed_pairs()),
            proptest::collection::vec(proptest::sample::select(digits), 6),
            proptest::collection::vec(symbol_strategy(), 9),
        )
            .prop_map(|((department, category), division, organization)| {
                [department, category]
                    .into_iter()
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
