//! Run with `cargo +nightly fuzz run eval` from the repository root. The property is in
//! check.rs. (Agreement with the reference `kdl` parser is checked by
//! config/tests/kdl_compliance.rs, which knows the spec points where that crate departs
//! from the spec.)
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| check(data));
