//! The review service's domain: types and rules with no I/O. Everything here is a pure function
//! of its inputs (time is passed in), so each rule is unit-tested with table-driven cases.
//!
//! | module | what it decides |
//! |---|---|
//! | `green` | green data and how its quantities read (tce, kWh) |
//! | `screening` | two-high rule screening: VETO / PASS / NEEDS_REVIEW |
//! | `achievement` | the achievement lifecycle and its appeal |
//! | `expert` | experts, conflicts of interest, automatic assignment |
//! | `review` | an expert's review: scores and veto |
//! | `decision` | the final decision: vetoes, trimmed mean, threshold |
//! | `appeal` | the 30-day appeal window in the programme time zone |
//! | `ids` | typed ids read from resource names |
//! | `refusal` | every precondition a decision refuses, mapped to `FAILED_PRECONDITION` once |

pub mod achievement;
pub mod appeal;
pub mod decision;
pub mod expert;
pub mod green;
pub mod ids;
pub mod refusal;
pub mod review;
pub mod screening;
