//! TikTok's chunk rules for FILE_UPLOAD (reference §4.1), as one pure function.
//!
//! - `total_chunk_count = floor(video_size / chunk_size)`; the last chunk absorbs the remainder.
//! - Every chunk is 5–64 MB, except that the last may grow up to 128 MB.
//! - Files under 5 MB go in one request (`chunk_size = video_size`); files over 64 MB must be chunked.
//! - 1 to 1000 chunks, uploaded in order.
//!
//! Whether TikTok's "MB" is 10^6 or 2^20 bytes is unconfirmed, so the plan stays valid under both readings: chunks
//! are 10 MiB (well inside 5–64 under either), a file goes whole only below 20 MiB (≪ 64 MB), and the last chunk
//! stays below two chunk sizes (20 MiB ≪ 128 MB).

use std::ops::Range;

const MIB: u64 = 1024 * 1024;

/// The chunk size we aim for: far from both of TikTok's bounds, and small enough that retrying one chunk is cheap.
pub const TARGET_CHUNK_SIZE: u64 = 10 * MIB;
/// TikTok's lower bound for a chunk (except a whole file under it).
pub const MIN_CHUNK_SIZE: u64 = 5 * MIB;
/// TikTok's upper bound for a chunk other than the last.
pub const MAX_CHUNK_SIZE: u64 = 64 * MIB;
/// TikTok's upper bound for the last chunk, which absorbs the remainder. Counted in 10^6 bytes, the stricter reading.
pub const MAX_LAST_CHUNK_SIZE: u64 = 128_000_000;
pub const MAX_CHUNK_COUNT: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkPlanError {
    #[error("a video of 0 bytes cannot be uploaded")]
    Empty,
    #[error("a video of {0} bytes cannot be split into at most 1000 chunks of at most 64 MiB")]
    TooLarge(u64),
}

/// How a file of `video_size` bytes is cut into chunks, with the three numbers TikTok's init expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u32,
}

impl ChunkPlan {
    pub fn for_size(video_size: u64) -> Result<Self, ChunkPlanError> {
        if video_size == 0 {
            return Err(ChunkPlanError::Empty);
        }
        // Below two target chunks the file goes whole (required under 5 MB, allowed up to 64 MB): `floor` would give
        // one chunk anyway, and `chunk_size = video_size` is the form TikTok documents for a single chunk.
        if video_size < 2 * TARGET_CHUNK_SIZE {
            return Ok(Self {
                video_size,
                chunk_size: video_size,
                total_chunk_count: 1,
            });
        }
        // 10 MiB keeps the count ≤ 1000 up to ~10 GB; beyond that grow the chunk so the count still fits.
        let chunk_size = TARGET_CHUNK_SIZE.max(video_size.div_ceil(MAX_CHUNK_COUNT));
        if chunk_size > MAX_CHUNK_SIZE {
            return Err(ChunkPlanError::TooLarge(video_size));
        }
        let count = video_size / chunk_size;
        let plan = Self {
            video_size,
            chunk_size,
            total_chunk_count: u32::try_from(count).unwrap_or(u32::MAX),
        };
        if plan.last_chunk_size() > MAX_LAST_CHUNK_SIZE || count > MAX_CHUNK_COUNT {
            return Err(ChunkPlanError::TooLarge(video_size));
        }
        Ok(plan)
    }

    /// The byte range of chunk `index` (0-based); the last chunk runs to the end of the file.
    pub fn chunk_range(&self, index: u32) -> Option<Range<u64>> {
        if index >= self.total_chunk_count {
            return None;
        }
        let start = u64::from(index) * self.chunk_size;
        let end = if index + 1 == self.total_chunk_count {
            self.video_size
        } else {
            start + self.chunk_size
        };
        Some(start..end)
    }

    pub fn last_chunk_size(&self) -> u64 {
        let full_chunks = u64::from(self.total_chunk_count.saturating_sub(1));
        self.video_size - full_chunks * self.chunk_size
    }

    pub fn is_last(&self, index: u32) -> bool {
        index + 1 == self.total_chunk_count
    }

    /// The chunk to send next when TikTok reports `uploaded_bytes` received (from its `Content-Range`), or `None`
    /// when everything arrived. Bytes past a chunk boundary that TikTok kept are re-sent from that chunk's start,
    /// since TikTok accepts whole chunks only.
    pub fn next_chunk_after(&self, uploaded_bytes: u64) -> Option<u32> {
        if uploaded_bytes >= self.video_size {
            return None;
        }
        let index = u32::try_from(uploaded_bytes / self.chunk_size).unwrap_or(u32::MAX);
        Some(index.min(self.total_chunk_count.saturating_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    /// Every rule of §4.1 under both readings of "MB" where they can both hold.
    fn assert_within_tiktok_rules(plan: &ChunkPlan) {
        let count = u64::from(plan.total_chunk_count);
        assert!(
            (1..=MAX_CHUNK_COUNT).contains(&count),
            "{plan:?}: count out of 1..=1000"
        );
        assert_eq!(
            count,
            plan.video_size / plan.chunk_size,
            "{plan:?}: count must be floor(size / chunk)"
        );
        let ranges: Vec<_> = (0..plan.total_chunk_count)
            .filter_map(|i| plan.chunk_range(i))
            .collect();
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(plan.video_size));
        assert!(
            ranges.windows(2).all(|w| w[0].end == w[1].start),
            "{plan:?}: chunks must be contiguous"
        );
        if plan.total_chunk_count == 1 {
            assert_eq!(
                plan.chunk_size, plan.video_size,
                "{plan:?}: a single chunk is the whole file"
            );
            assert!(plan.video_size <= 64 * MB, "{plan:?}: files over 64 MB must be chunked");
        } else {
            assert!(plan.video_size >= 5 * MIB, "{plan:?}: files under 5 MB must go whole");
            assert!(
                (5 * MIB..=64 * MB).contains(&plan.chunk_size),
                "{plan:?}: chunk outside 5–64 MB"
            );
            assert!(plan.last_chunk_size() >= plan.chunk_size);
            assert!(plan.last_chunk_size() <= 128 * MB, "{plan:?}: last chunk over 128 MB");
        }
    }

    #[test]
    fn chunk_plan_table_follows_tiktok_rules() {
        // (video size, chunk size, chunk count, last chunk size)
        let table: [(u64, u64, u32, u64); 10] = [
            (MB, MB, 1, MB),
            (4_990_000, 4_990_000, 1, 4_990_000),
            (5 * MB, 5 * MB, 1, 5 * MB),
            (64 * MB, 10 * MIB, 6, 64 * MB - 5 * 10 * MIB),
            (64 * MB + 1, 10 * MIB, 6, 64 * MB + 1 - 5 * 10 * MIB),
            (100 * MB, 10 * MIB, 9, 100 * MB - 8 * 10 * MIB),
            (1_000 * MB, 10 * MIB, 95, 1_000 * MB - 94 * 10 * MIB),
            (4_000 * MB, 10 * MIB, 381, 4_000 * MB - 380 * 10 * MIB),
            // 4 GiB, the other reading of "4 GB".
            (4 * 1024 * MIB, 10 * MIB, 409, 4 * 1024 * MIB - 408 * 10 * MIB),
            // TikTok's worked example size: 50,000,123 B.
            (50_000_123, 10 * MIB, 4, 50_000_123 - 3 * 10 * MIB),
        ];
        for (size, chunk, count, last) in table {
            let plan = ChunkPlan::for_size(size).expect("every size in the table is plannable");
            assert_eq!(
                (plan.chunk_size, plan.total_chunk_count, plan.last_chunk_size()),
                (chunk, count, last),
                "plan for {size} bytes"
            );
            assert_within_tiktok_rules(&plan);
        }
    }

    #[test]
    fn sizes_around_every_boundary_stay_within_the_rules() {
        let boundaries = [
            5 * MB,
            5 * MIB,
            10 * MIB,
            20 * MIB,
            64 * MB,
            64 * MIB,
            128 * MB,
            10_000 * MB,
            10_485 * MIB,
        ];
        for boundary in boundaries {
            for size in [boundary - 1, boundary, boundary + 1] {
                let plan = ChunkPlan::for_size(size).expect("plannable");
                assert_within_tiktok_rules(&plan);
            }
        }
    }

    #[test]
    fn very_large_files_grow_the_chunk_to_keep_the_count_under_1000() {
        let plan = ChunkPlan::for_size(20_000 * MB).expect("plannable");
        assert!(plan.chunk_size > TARGET_CHUNK_SIZE);
        assert_within_tiktok_rules(&plan);
        assert_eq!(
            ChunkPlan::for_size(1000 * 64 * MIB + 64 * MIB),
            Err(ChunkPlanError::TooLarge(1001 * 64 * MIB))
        );
        assert_eq!(ChunkPlan::for_size(0), Err(ChunkPlanError::Empty));
    }

    #[test]
    fn resume_points_at_the_chunk_holding_the_next_missing_byte() {
        let plan = ChunkPlan::for_size(50_000_123).expect("plannable");
        assert_eq!(plan.next_chunk_after(0), Some(0));
        assert_eq!(plan.next_chunk_after(10 * MIB), Some(1));
        assert_eq!(plan.next_chunk_after(10 * MIB + 7), Some(1));
        assert_eq!(plan.next_chunk_after(49_000_000), Some(3));
        assert_eq!(plan.next_chunk_after(50_000_123), None);
        assert_eq!(plan.chunk_range(3), Some(30 * MIB..50_000_123));
        assert_eq!(plan.chunk_range(4), None);
    }
}
