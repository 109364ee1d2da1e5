//! Buffer names, as the allocator HAL and the processes it delegates heaps to set them: the
//! caller's name first, cleaned of what would garble fdinfo, debugfs and logs, within the bytes
//! the kernel keeps. Never a reason to fail an allocation.

use crate::buffer::truncate_at_char_boundary;
use crate::DMA_BUF_NAME_LEN;

/// The kernel keeps this many bytes of a dma-buf name (DMA_BUF_NAME_LEN, less the NUL).
pub const KERNEL_NAME_BYTES: usize = DMA_BUF_NAME_LEN - 1;

/// Unicode general category Cf (format), from the Unicode Character Database's
/// `extracted/DerivedGeneralCategory.txt` (Unicode 15.1): bidirectional overrides and isolates,
/// zero-width spaces and joiners, the BOM, invisible operators, tags.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

pub fn is_format_char(c: char) -> bool {
    FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// A debug name as the allocator HAL and its client library give it to the kernel: at most
/// `max_bytes` of it, format characters (Cf) dropped, since they hide or reorder what a reader of fdinfo, debugfs
/// or a log sees, and control characters (C0, DEL, C1) and whitespace replaced by `_`: they end
/// lines and split the whitespace-separated columns of the kernel's dma-buf debugfs. May be
/// empty; [`buffer_label`] then uses the heap's name.
pub fn sanitize(raw: &str, max_bytes: usize) -> String {
    // Cut by bytes before looking at a single character: a hostile multi-megabyte name then
    // costs what a short one does.
    let cut = truncate_at_char_boundary(raw, max_bytes);
    cut.chars()
        .filter(|&c| !is_format_char(c))
        .map(|c| {
            if c.is_control() || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The dma-buf name, within the [`KERNEL_NAME_BYTES`] the kernel keeps: the sanitised debug
/// `name` first, cut at a character boundary, then `#<batch index>` and `@<heap>` as long as
/// each fits whole. An empty name becomes the heap's name (without the `@<heap>` again).
pub fn buffer_label(name: &str, heap: &str, batch_index: Option<u32>) -> String {
    let (name, heap_suffix) = if name.is_empty() {
        (heap, None)
    } else {
        (name, Some(heap))
    };
    let mut label = truncate_at_char_boundary(name, KERNEL_NAME_BYTES).to_owned();
    let suffixes = [
        batch_index.map(|i| format!("#{i}")),
        heap_suffix.map(|h| format!("@{h}")),
    ];
    for suffix in suffixes.into_iter().flatten() {
        if label.len() + suffix.len() > KERNEL_NAME_BYTES {
            break;
        }
        label.push_str(&suffix);
    }
    label
}
