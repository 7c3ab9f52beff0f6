//! What both targets share: a panic filter for known, reported crashes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};

/// How often each tolerated panic happened.
static SEEN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Panic messages (substrings, separated by `|`) that `FUZZ_IGNORE_PANIC` tolerates. Empty by
/// default: every panic is a crash. Set it only to keep fuzzing past a crash that is already
/// reported, e.g. `FUZZ_IGNORE_PANIC='local datetime out of valid range'`.
fn ignored() -> Vec<String> {
    std::env::var("FUZZ_IGNORE_PANIC")
        .unwrap_or_default()
        .split('|')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::new()
    }
}

/// Runs `f` on `data`; a panic is a crash (abort, as libFuzzer expects) unless its message
/// contains one of the `FUZZ_IGNORE_PANIC` substrings. A tolerated panic is logged with its input
/// the 1st, 2nd, 4th, 8th... time. Returns whether `f` completed.
pub fn run(data: &[u8], f: impl FnOnce()) -> bool {
    static HOOK: Once = Once::new();
    let ignored = ignored();
    if ignored.is_empty() {
        f();
        return true;
    }
    HOOK.call_once(|| {
        // libfuzzer-sys aborts in its panic hook; keep that for every panic but the tolerated ones.
        let abort_hook = std::panic::take_hook();
        let ignored = ignored.clone();
        std::panic::set_hook(Box::new(move |info| {
            let text = message(info.payload());
            if !ignored.iter().any(|m| text.contains(m.as_str())) {
                abort_hook(info);
            }
        }));
    });
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            let text = message(payload.as_ref());
            let Some(which) = ignored.iter().position(|m| text.contains(m.as_str())) else {
                panic!("unexpected panic: {text}");
            };
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() < ignored.len() {
                seen.resize(ignored.len(), 0);
            }
            seen[which] += 1;
            let n = seen[which];
            if n.is_power_of_two() {
                eprintln!(
                    "TOLERATED PANIC #{n} ({:?}): {text}\n  input: {:?}",
                    ignored[which],
                    String::from_utf8_lossy(data)
                );
            }
            false
        }
    }
}
