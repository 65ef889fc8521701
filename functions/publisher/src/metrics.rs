//! CloudWatch metrics as embedded-metric-format (EMF) lines on stdout: Lambda ships stdout to CloudWatch Logs,
//! which turns each such line into a metric point, with no API call on the publishing path and no extra IAM
//! permission. The template's `PostsNeedingReviewAlarm` watches [`POSTS_NEEDING_REVIEW`] in [`NAMESPACE`].

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Postato";
/// One point per post that ended in `needs_review` (its TikTok init outcome is unknown; a person must look).
pub const POSTS_NEEDING_REVIEW: &str = "PostsNeedingReview";

/// One EMF document counting one `metric` at `at`, without dimensions.
fn count_line(metric: &str, at: DateTime<Utc>) -> String {
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{ "Name": metric, "Unit": "Count" }],
            }],
        }),
    );
    document.insert(metric.into(), Value::from(1));
    Value::Object(document).to_string()
}

pub(crate) fn post_needs_review(at: DateTime<Utc>) {
    println!("{}", count_line(POSTS_NEEDING_REVIEW, at));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_needs_review_point_is_one_line_of_cloudwatch_embedded_metric_format() {
        let at = DateTime::from_timestamp_millis(1_767_225_600_123).expect("valid instant");
        let line = count_line(POSTS_NEEDING_REVIEW, at);
        assert!(!line.contains('\n'));
        let parsed: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            parsed,
            json!({
                "_aws": {
                    "Timestamp": 1_767_225_600_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Postato",
                        "Dimensions": [[]],
                        "Metrics": [{ "Name": "PostsNeedingReview", "Unit": "Count" }],
                    }],
                },
                "PostsNeedingReview": 1,
            })
        );
    }
}
