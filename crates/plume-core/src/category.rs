//! The seven task categories and the defaults that depend on them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    #[serde(rename = "Banana2")]
    Banana2,
    #[serde(rename = "BananaPro")]
    BananaPro,
    #[serde(rename = "seedream")]
    Seedream,
    #[serde(rename = "remove-bg")]
    RemoveBg,
    #[serde(rename = "remove-watermark")]
    RemoveWatermark,
    #[serde(rename = "veo")]
    Veo,
    #[serde(rename = "seedance2")]
    Seedance2,
}

/// What a category produces, which decides result shape and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryKind {
    /// Generates an image from a prompt (and optional input images).
    Image,
    /// Edits exactly one input image with a local model.
    Edit,
    /// Generates a video.
    Video,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Banana2,
        Category::BananaPro,
        Category::Seedream,
        Category::RemoveBg,
        Category::RemoveWatermark,
        Category::Veo,
        Category::Seedance2,
    ];

    /// The name on the wire (case-sensitive, as the hosted service spells it).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Banana2 => "Banana2",
            Category::BananaPro => "BananaPro",
            Category::Seedream => "seedream",
            Category::RemoveBg => "remove-bg",
            Category::RemoveWatermark => "remove-watermark",
            Category::Veo => "veo",
            Category::Seedance2 => "seedance2",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn kind(self) -> CategoryKind {
        match self {
            Category::Banana2 | Category::BananaPro | Category::Seedream => CategoryKind::Image,
            Category::RemoveBg | Category::RemoveWatermark => CategoryKind::Edit,
            Category::Veo | Category::Seedance2 => CategoryKind::Video,
        }
    }

    /// After this long a task that has not finished becomes status 5 (timeout).
    pub fn default_time_limit(self) -> Duration {
        match self {
            Category::Veo => Duration::from_secs(6 * 3600),
            Category::Seedance2 => Duration::from_secs(48 * 3600),
            _ => Duration::from_secs(30 * 60),
        }
    }

    /// The client's default poll interval.
    pub fn default_poll_interval(self) -> Duration {
        match self {
            Category::RemoveBg | Category::RemoveWatermark => Duration::from_secs(3),
            Category::Veo => Duration::from_secs(10),
            Category::Seedance2 => Duration::from_secs(30),
            _ => Duration::from_secs(5),
        }
    }

    /// The message a chat user is told when no such category exists, shared by client and
    /// server so the advice is the same everywhere.
    pub fn unknown_message(name: &str) -> String {
        let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        format!(
            "unknown category {name:?}; use one of {}. For style transfer use Banana2 with a style prompt",
            names.join(", ")
        )
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(Category::parse("banana2"), None);
        assert!(Category::unknown_message("style").contains("Banana2 with a style prompt"));
    }
}
