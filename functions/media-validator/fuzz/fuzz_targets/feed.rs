//! Fuzzes the probe's state machine: the input is a file, fed either the way the drivers feed it (every requested
//! range in full) or through a store that returns short reads. `feed` must never panic, must only ask for
//! non-empty ranges inside the object, and must end within its read budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_validator::probe::{probe_bytes, Budget, Probe, ReadRequest, Step, UnreadableReason};

/// `Internal` means a parser asked for bytes it already held: a bug even though nothing panicked.
fn assert_not_internal(step: &Step) {
    if let Step::Invalid(unreadable) = step {
        assert_ne!(
            unreadable.reason,
            UnreadableReason::Internal,
            "the probe reported an internal error"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        assert_not_internal(&probe_bytes(data, Budget::default()).0);
        return;
    }
    // Odd modes: every read is cut to at most `cap` bytes, so the probe must cope with partial answers.
    let cap = 1 + usize::from(mode / 2) * 4099;
    let size = data.len() as u64;
    let serve = |start: u64, end: u64| {
        let start = start.min(size);
        let end = end.min(size).min(start + cap as u64);
        (start, &data[start as usize..end as usize])
    };
    let budget = Budget::default();
    let mut probe = Probe::new(budget);
    let mut step = None;
    for request in probe.initial_reads() {
        let (offset, bytes) = match request {
            ReadRequest::Span(range) => serve(range.start, range.end),
            ReadRequest::Suffix(n) => serve(size.saturating_sub(n), size),
        };
        step = Some(probe.feed(offset, bytes, size));
    }
    let mut feeds = 2;
    while let Some(Step::NeedRange(range)) = step {
        assert!(
            range.start < range.end && range.end <= size,
            "asked for {range:?} of {size}"
        );
        feeds += 1;
        assert!(
            feeds <= budget.max_reads + 2,
            "the probe kept asking beyond its read budget"
        );
        let (offset, bytes) = serve(range.start, range.end);
        step = Some(probe.feed(offset, bytes, size));
    }
    if let Some(step) = &step {
        assert_not_internal(step);
    }
});
