//! Link settings for the daemon's binary alone.
//!
//! A static-pie binary relocates itself at start, reading every entry of its relocation table:
//! in the classic format (`.rela.dyn`, 24 bytes a pointer) that was 475 KiB of the file, all of
//! it resident for the life of the process. Packed relative relocations (`DT_RELR`, a bitmap
//! per run of pointers) hold the same in a few KiB. Only the crt-static build gets them: its
//! libc (glibc 2.36, inside the binary) applies them itself, while a dynamic build would need
//! glibc 2.36 or later on the host that runs it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name| std::env::var(name).unwrap_or_default();
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if crt_static && var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
