//! Rewrites a routing data set in serde_yaml's default style:
//! `serde_yaml::to_string(&value)` (block style, two-space indent,
//! sequences not indented under their key, single quotes where a plain
//! scalar would read as something else). See `../convert.py`.
//!
//! ```sh
//! cargo run --release --manifest-path bench/styles/serde-yaml/Cargo.toml -- IN_DIR OUT_DIR
//! ```

use std::{env, fs, path::Path, process};

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        eprintln!("usage: convert-serde-yaml IN_DIR OUT_DIR");
        process::exit(2);
    };
    if let Err(e) = convert(Path::new(src), Path::new(dst)) {
        eprintln!("{e}");
        process::exit(1);
    }
}

fn convert(src: &Path, dst: &Path) -> Result<(), Box<dyn std::error::Error>> {
    fs::create_dir_all(dst)?;
    let mut names: Vec<String> = fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let from = src.join(&name);
        if name == "calls.csv" {
            fs::copy(&from, dst.join(&name))?;
        }
        if !name.ends_with(".yaml") {
            continue;
        }
        // A generic value, as an export job that builds its document from
        // maps and lists would hold it.
        let data: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(&from)?)
            .map_err(|e| format!("{}: {e}", from.display()))?;
        fs::write(dst.join(&name), serde_yaml::to_string(&data)?)?;
    }
    Ok(())
}
