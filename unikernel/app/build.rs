//! Links the post-processed kernel archive (`libhermit.a`) that `pvbench build`
//! produced; the directory arrives in PVBENCH_KERNEL_LIB_DIR.
fn main() {
    println!("cargo:rerun-if-env-changed=PVBENCH_KERNEL_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PVBENCH_KERNEL_VERSION");
    let Ok(dir) = std::env::var("PVBENCH_KERNEL_LIB_DIR") else {
        panic!("PVBENCH_KERNEL_LIB_DIR is not set: build the guest with `pvbench build`");
    };
    println!("cargo:rerun-if-changed={dir}/libhermit.a");
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=static=hermit");
}
