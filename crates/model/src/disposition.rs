use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a call or leg ended, across vendors (DESIGN.md, "Disposition"). The raw
/// cause is always kept beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    Busy,
    NoAnswer,
    Rejected,
    Cancelled,
    Failed,
}

impl Disposition {
    pub const ALL: [Disposition; 6] = [
        Disposition::Answered,
        Disposition::Busy,
        Disposition::NoAnswer,
        Disposition::Rejected,
        Disposition::Cancelled,
        Disposition::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no_answer",
            Disposition::Rejected => "rejected",
            Disposition::Cancelled => "cancelled",
            Disposition::Failed => "failed",
        }
    }

    /// Which disposition describes a call whose legs ended differently: an
    /// answered leg makes the call answered; otherwise the most telling failure.
    pub fn rank(self) -> u8 {
        match self {
            Disposition::Answered => 6,
            Disposition::Busy => 5,
            Disposition::Rejected => 4,
            Disposition::NoAnswer => 3,
            Disposition::Failed => 2,
            Disposition::Cancelled => 1,
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a word that is not a disposition or direction.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}, expected one of: {expected}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for Disposition {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Disposition::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownWord {
                what: "disposition",
                value: s.to_owned(),
                expected: "answered, busy, no_answer, rejected, cancelled, failed",
            })
    }
}

/// Direction of a whole call as seen from the system that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Internal => "internal",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            "internal" => Ok(Direction::Internal),
            _ => Err(UnknownWord {
                what: "direction",
                value: s.to_owned(),
                expected: "in, out, internal",
            }),
        }
    }
}
