//! Just enough of ELF to answer one question: is this program bound at start
//! (BIND_NOW) or lazily? Reads the dynamic section of a 64-bit little-endian ELF file.

use crate::missing::{Missing, Val};

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: i64 = 0;
const DT_NEEDED: i64 = 1;
const DT_BIND_NOW: i64 = 24;
const DT_FLAGS: i64 = 30;
const DT_FLAGS_1: i64 = 0x6fff_fffb;
const DF_BIND_NOW: u64 = 0x8;
const DF_1_NOW: u64 = 0x1;

/// What the dynamic section says about binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dynamic {
    /// Has an interpreter (ld.so): dynamically linked.
    pub interpreted: bool,
    /// BIND_NOW in DT_FLAGS or DT_FLAGS_1, or DT_BIND_NOW present: resolved at start.
    pub bind_now: bool,
    /// Number of DT_NEEDED libraries.
    pub needed: u32,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Parses the program headers and the dynamic section of an ELF image.
pub fn dynamic(image: &[u8]) -> Val<Dynamic> {
    let bad = |d: &str| Missing::malformed("ELF", d.to_owned());
    if image.get(..4) != Some(b"\x7fELF") {
        return Err(bad("no ELF magic"));
    }
    if image.get(4) != Some(&2) || image.get(5) != Some(&1) {
        return Err(bad("not 64-bit little-endian"));
    }
    let phoff = u64_at(image, 0x20).ok_or_else(|| bad("short header"))? as usize;
    let phentsize = u16_at(image, 0x36).ok_or_else(|| bad("short header"))? as usize;
    let phnum = u16_at(image, 0x38).ok_or_else(|| bad("short header"))? as usize;
    let mut out = Dynamic {
        interpreted: false,
        bind_now: false,
        needed: 0,
    };
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let kind = u32_at(image, ph).ok_or_else(|| bad("short program header"))?;
        if kind == PT_INTERP {
            out.interpreted = true;
        }
        if kind != PT_DYNAMIC {
            continue;
        }
        let off = u64_at(image, ph + 8).ok_or_else(|| bad("short program header"))? as usize;
        let size = u64_at(image, ph + 32).ok_or_else(|| bad("short program header"))? as usize;
        let mut at = off;
        while at + 16 <= off + size {
            let tag = u64_at(image, at).ok_or_else(|| bad("dynamic section past the end"))? as i64;
            let val = u64_at(image, at + 8).ok_or_else(|| bad("dynamic section past the end"))?;
            match tag {
                DT_NULL => break,
                DT_NEEDED => out.needed += 1,
                DT_BIND_NOW => out.bind_now = true,
                DT_FLAGS if val & DF_BIND_NOW != 0 => out.bind_now = true,
                DT_FLAGS_1 if val & DF_1_NOW != 0 => out.bind_now = true,
                _ => {}
            }
            at += 16;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal image: ELF header, one PT_DYNAMIC header, a dynamic section.
    fn image(entries: &[(i64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 0x40];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let dyn_off = 0x40 + 56;
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&PT_DYNAMIC.to_le_bytes());
        ph[8..16].copy_from_slice(&(dyn_off as u64).to_le_bytes());
        ph[32..40].copy_from_slice(&((entries.len() as u64 + 1) * 16).to_le_bytes());
        b.extend(ph);
        for (t, v) in entries.iter().chain([(DT_NULL, 0)].iter()) {
            b.extend(t.to_le_bytes());
            b.extend(v.to_le_bytes());
        }
        b
    }

    #[test]
    fn finds_bind_now_in_each_place() {
        assert!(!dynamic(&image(&[(DT_NEEDED, 1)])).unwrap().bind_now);
        assert!(
            dynamic(&image(&[(DT_FLAGS, DF_BIND_NOW)]))
                .unwrap()
                .bind_now
        );
        assert!(
            dynamic(&image(&[(DT_FLAGS_1, DF_1_NOW | 0x8000000)]))
                .unwrap()
                .bind_now
        );
        assert!(dynamic(&image(&[(DT_BIND_NOW, 0)])).unwrap().bind_now);
        assert_eq!(
            dynamic(&image(&[(DT_NEEDED, 1), (DT_NEEDED, 9)]))
                .unwrap()
                .needed,
            2
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(dynamic(b"").is_err());
        assert!(dynamic(b"\x7fELF\x01\x01").is_err());
        let mut truncated = image(&[(DT_FLAGS, 8)]);
        truncated.truncate(0x50);
        assert!(dynamic(&truncated).is_err());
    }

    #[test]
    fn reads_a_real_binary() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert!(
            dynamic(&exe).unwrap().interpreted,
            "test binaries are dynamically linked"
        );
    }
}
