//! A look at the ELF header before `dlopen`, so a 32-bit library or a random file is skipped with a
//! reason rather than handed to the dynamic loader.

use std::io::Read;
use std::path::Path;

const NATIVE_CLASS: u8 = if cfg!(target_pointer_width = "64") {
    2
} else {
    1
};
const NATIVE_DATA: u8 = if cfg!(target_endian = "little") { 1 } else { 2 };

fn native_machine() -> Option<u16> {
    Some(match std::env::consts::ARCH {
        "x86_64" => 62,
        "x86" => 3,
        "aarch64" => 183,
        "arm" => 40,
        "riscv64" => 243,
        "powerpc64" => 21,
        "s390x" => 22,
        _ => return None,
    })
}

/// `Err(reason)` when `path` is not an ELF shared object this process can load.
pub fn check(path: &Path) -> Result<(), String> {
    let mut head = [0u8; 20];
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let n = f.read(&mut head).map_err(|e| format!("cannot read: {e}"))?;
    if n < 20 || &head[..4] != b"\x7fELF" {
        return Err("not an ELF shared library".to_string());
    }
    if head[4] != NATIVE_CLASS {
        let bits = |c: u8| {
            if c == 1 {
                "32-bit"
            } else if c == 2 {
                "64-bit"
            } else {
                "unknown-class"
            }
        };
        return Err(format!(
            "wrong ELF class: a {} library, but this kerblam is {}",
            bits(head[4]),
            bits(NATIVE_CLASS)
        ));
    }
    if head[5] != NATIVE_DATA {
        return Err("wrong ELF byte order for this machine".to_string());
    }
    let get16 = |i: usize| {
        if NATIVE_DATA == 1 {
            u16::from_le_bytes([head[i], head[i + 1]])
        } else {
            u16::from_be_bytes([head[i], head[i + 1]])
        }
    };
    let e_type = get16(16);
    if e_type != 3 {
        return Err(format!(
            "ELF file of type {e_type}, not a shared object (ET_DYN)"
        ));
    }
    let machine = get16(18);
    if let Some(native) = native_machine()
        && machine != native
    {
        return Err(format!(
            "built for ELF machine {machine}, this machine ({}) is {native}",
            std::env::consts::ARCH
        ));
    }
    Ok(())
}
