//! The header section of a message as `deliver` reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ownmail::message::header::HeaderSection;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let mut h = HeaderSection::read(&mut input, None).unwrap();
    let _ = h.fields().count();
    h.remove("Return-Path");
    let mut out = Vec::new();
    ownmail::message::header::copy_crlf_to_lf(&mut input, &mut out).unwrap();
    assert!(out.len() <= data.len());
});
