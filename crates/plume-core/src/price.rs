//! The price table: credits a task costs, decided from its validated content.
//!
//! Every number is configuration (the server reads a `[prices]` table over these defaults);
//! the defaults are API.md's "Default prices".

use crate::category::Category;
use crate::content::{ProcessingMode, ValidatedContent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceTable {
    pub banana2_text_to_image: u64,
    pub banana2_image_to_image: u64,
    pub banana2_multi_image_blend: u64,
    /// Size multipliers for Banana2/BananaPro, in percent; the product is rounded up.
    pub size_1k_percent: u64,
    pub size_2k_percent: u64,
    pub size_4k_percent: u64,
    /// BananaPro costs this many times Banana2.
    pub banana_pro_factor: u64,
    pub seedream_text_to_image: u64,
    pub seedream_image_to_image: u64,
    pub remove_bg: u64,
    pub remove_watermark: u64,
    pub veo: u64,
    pub seedance2_5s: u64,
    pub seedance2_10s: u64,
    pub seedance2_15s: u64,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            banana2_text_to_image: 10,
            banana2_image_to_image: 15,
            banana2_multi_image_blend: 20,
            size_1k_percent: 100,
            size_2k_percent: 150,
            size_4k_percent: 200,
            banana_pro_factor: 2,
            seedream_text_to_image: 15,
            seedream_image_to_image: 20,
            remove_bg: 5,
            remove_watermark: 5,
            veo: 60,
            seedance2_5s: 40,
            seedance2_10s: 72,
            seedance2_15s: 100,
        }
    }
}

impl PriceTable {
    /// The credits `content` costs. Content must have come from `validate_content`.
    pub fn price(&self, content: &ValidatedContent) -> u64 {
        match content.category {
            Category::Banana2 | Category::BananaPro => {
                let base = match content.mode {
                    Some(ProcessingMode::ImageToImage) => self.banana2_image_to_image,
                    Some(ProcessingMode::MultiImageBlend) => self.banana2_multi_image_blend,
                    _ => self.banana2_text_to_image,
                };
                let percent = match content.image_size.as_deref() {
                    Some("1K") => self.size_1k_percent,
                    Some("4K") => self.size_4k_percent,
                    _ => self.size_2k_percent,
                };
                let banana2 = (base * percent).div_ceil(100);
                if content.category == Category::BananaPro {
                    banana2 * self.banana_pro_factor
                } else {
                    banana2
                }
            }
            Category::Seedream => match content.mode {
                Some(ProcessingMode::ImageToImage) => self.seedream_image_to_image,
                _ => self.seedream_text_to_image,
            },
            Category::RemoveBg => self.remove_bg,
            Category::RemoveWatermark => self.remove_watermark,
            Category::Veo => self.veo,
            Category::Seedance2 => match content.duration_seconds {
                Some(15) => self.seedance2_15s,
                Some(10) => self.seedance2_10s,
                _ => self.seedance2_5s,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::validate_content;
    use serde_json::json;

    fn price(category: Category, content: serde_json::Value) -> u64 {
        PriceTable::default().price(&validate_content(category, &content).unwrap())
    }

    #[test]
    fn default_prices_follow_the_contract() {
        let img = "https://h/x.png";
        let size = |s: &str| json!({"imageConfig": {"image_size": s}});
        assert_eq!(
            price(
                Category::Banana2,
                json!({"prompt": "p", "generationConfig": size("1K")})
            ),
            10
        );
        assert_eq!(price(Category::Banana2, json!({"prompt": "p"})), 15);
        assert_eq!(
            price(
                Category::Banana2,
                json!({"prompt": "p", "generationConfig": size("4K")})
            ),
            20
        );
        assert_eq!(
            price(
                Category::Banana2,
                json!({"prompt": "p", "imageUrls": [img], "generationConfig": size("2K")})
            ),
            23
        );
        assert_eq!(
            price(
                Category::Banana2,
                json!({"prompt": "p", "processing_mode": "multi_image_blend", "imageUrls": [img, img], "generationConfig": size("4K")})
            ),
            40
        );
        assert_eq!(
            price(
                Category::BananaPro,
                json!({"prompt": "p", "imageUrls": [img], "generationConfig": size("2K")})
            ),
            46
        );
        assert_eq!(price(Category::Seedream, json!({"prompt": "p"})), 15);
        assert_eq!(
            price(
                Category::Seedream,
                json!({"prompt": "p", "imageUrls": [img]})
            ),
            20
        );
        assert_eq!(price(Category::RemoveBg, json!({"imageUrls": [img]})), 5);
        assert_eq!(
            price(Category::RemoveWatermark, json!({"imageUrls": [img]})),
            5
        );
        assert_eq!(price(Category::Veo, json!({"prompt": "p"})), 60);
        assert_eq!(price(Category::Seedance2, json!({"prompt": "p"})), 40);
        assert_eq!(
            price(
                Category::Seedance2,
                json!({"prompt": "p", "videoConfig": {"model": "seedance2-10s"}})
            ),
            72
        );
        assert_eq!(
            price(
                Category::Seedance2,
                json!({"prompt": "p", "videoConfig": {"durationSeconds": 15}})
            ),
            100
        );
    }

    #[test]
    fn table_reads_partial_overrides() {
        let table: PriceTable = serde_json::from_value(json!({"veo": 99})).unwrap();
        assert_eq!(table.veo, 99);
        assert_eq!(table.remove_bg, 5);
        assert!(serde_json::from_value::<PriceTable>(json!({"vео": 1})).is_err());
    }
}
