//! A delivery's status: open (`pending`, `retrying`: an attempt is to come) or ended
//! (`delivered`, `failed`, `expired`, `superseded`), as stored, filtered on and shown.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Retrying,
    Delivered,
    Failed,
    Expired,
    Superseded,
}

impl DeliveryStatus {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Retrying,
        Self::Delivered,
        Self::Failed,
        Self::Expired,
        Self::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Retrying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name_and_only_two_are_open() {
        for st in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()), "serde and as_str agree");
        }
        let open: Vec<_> = DeliveryStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [DeliveryStatus::Pending, DeliveryStatus::Retrying]);
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }
}
