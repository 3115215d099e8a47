//! The Hermit kernel, linked whole into a static library.
//!
//! Nothing here but the link: the kernel's entry point and `sys_*` functions are
//! `#[no_mangle]`, and `pvbench build` post-processes the archive so that only
//! they stay global.
#![no_std]

extern crate hermit as _;
