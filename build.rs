//! Rebuilds the binary when a file of the browser app (`app/`) is added, changed or removed:
//! `include_dir!` embeds the folder, and Cargo alone would notice only changes to files it
//! already knew.

fn main() {
    println!("cargo:rerun-if-changed=app");
}
