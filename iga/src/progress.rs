//! The progress output of the long operator commands (`rebuild`, `migrate`,
//! `audit verify`): one look for all of them.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar when the total is known, a counter when it is not.
pub fn style(bar: bool) -> ProgressStyle {
    let template = if bar {
        "{spinner} {msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})"
    } else {
        "{spinner} {msg} {pos}"
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

/// A bar of `len` steps saying what is being done.
pub fn bar(len: u64, doing: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(style(true));
    bar.set_message(doing);
    bar
}
