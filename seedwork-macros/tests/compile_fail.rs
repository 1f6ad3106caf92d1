//! Misuse of the macros is a compile error pointing at the user's code.

#[test]
fn misuse_is_reported_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
