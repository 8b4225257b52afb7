//! A native writer of SIF (Singularity Image Format) files, following the format of
//! `github.com/sylabs/sif` (`pkg/sif`): a 128-byte global header, a table of fixed-size (585-byte)
//! data object descriptors at offset 4096, then the data objects.
//!
//! All integers are little-endian and packed with no padding (Go's `encoding/binary`):
//!
//! - header: launch script `[32]` (`#!/usr/bin/env run-singularity\n`), magic `[10]`
//!   (`SIF_MAGIC\0`), version `[3]` (`01\0`), arch `[3]` (the primary partition's, e.g. `02\0` for
//!   amd64), image id `[16]` (a UUID), then eight `int64`: created, modified, descriptors free,
//!   descriptors total, descriptors offset, descriptors size, data offset, data size;
//! - descriptor: data type `int32` (0x4001 definition file, 0x4002 environment, 0x4003 JSON labels,
//!   0x4004 partition, 0x4006 generic JSON), used `bool`, id `uint32` (1-based), group id `uint32`
//!   (`0xf0000000 | 1` for the default group), linked id `uint32`, offset, size, size with padding,
//!   created, modified, uid, gid (`int64` each), name `[128]`, extra `[384]` (for a partition:
//!   fs type `int32` 1 = squashfs, partition type `int32` 2 = primary system, arch `[3]`).
//!
//! Partitions are aligned to 4096 bytes. The writer is deterministic: times come from the caller,
//! and the image id is derived from a SHA-256 of everything else, so the same inputs give the same
//! bytes.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The launch line at the start of every SIF.
pub const LAUNCH: &str = "#!/usr/bin/env run-singularity\n";
/// Descriptor table capacity (sylabs' default).
pub const DESCRIPTORS: usize = 48;
/// Where descriptors start.
pub const DESCRIPTORS_OFFSET: u64 = 4096;
/// Size of one descriptor.
pub const DESCRIPTOR_SIZE: usize = 585;
/// Size of the global header.
pub const HEADER_SIZE: usize = 128;
const GROUP_MASK: u32 = 0xf000_0000;

/// SIF data object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum DataType {
    /// The definition file.
    Deffile = 0x4001,
    /// Environment variables.
    EnvVar = 0x4002,
    /// JSON labels.
    Labels = 0x4003,
    /// A file system partition.
    Partition = 0x4004,
    /// Generic JSON.
    GenericJson = 0x4006,
}

/// Partition metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1 = squashfs.
    pub fs_type: i32,
    /// 1 = system, 2 = primary system, 3 = data.
    pub part_type: i32,
    /// The SIF arch code, e.g. `*b"02\0"` for amd64.
    pub arch: [u8; 3],
}

/// The content of a data object.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file, streamed.
    File(&'a Path),
}

/// One data object to write.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    /// Its type.
    pub kind: DataType,
    /// Its name (at most 128 bytes).
    pub name: String,
    /// Its content.
    pub data: Data<'a>,
    /// Partition metadata, for partitions.
    pub partition: Option<Partition>,
}

/// The SIF arch code of the machine kerblam runs on.
pub fn host_arch() -> Result<[u8; 3], crate::Error> {
    let code = match (std::env::consts::ARCH, cfg!(target_endian = "little")) {
        ("x86", _) => "01",
        ("x86_64", _) => "02",
        ("arm", _) => "03",
        ("aarch64", _) => "04",
        ("powerpc64", false) => "05",
        ("powerpc64", true) => "06",
        ("mips", _) => "07",
        ("mips64", _) => "09",
        ("s390x", _) => "11",
        ("riscv64", _) => "12",
        (other, _) => return Err(crate::Error::NoArchCode(other.to_string())),
    };
    let b = code.as_bytes();
    Ok([b[0], b[1], 0])
}

fn align(off: u64, a: u64) -> u64 {
    if a == 0 || off % a == 0 {
        off
    } else {
        (off / a + 1) * a
    }
}

/// Write `objects` as a SIF image to `out` (an empty file), stamped with `time` (seconds since
/// the epoch). Returns the image's 16-byte id.
pub fn write(out: &mut File, objects: &[Object<'_>], time: i64) -> io::Result<[u8; 16]> {
    if objects.len() > DESCRIPTORS {
        return Err(io::Error::other("too many SIF data objects"));
    }
    let descriptors_size = (DESCRIPTORS * DESCRIPTOR_SIZE) as u64;
    let data_offset = DESCRIPTORS_OFFSET + descriptors_size;
    let mut hasher = Sha256::new();
    out.write_all(&vec![0u8; data_offset as usize])?;
    let mut pos = data_offset;
    let mut table = Vec::with_capacity(descriptors_size as usize);
    let mut arch = *b"00\0";
    for (i, o) in objects.iter().enumerate() {
        let alignment = if o.kind == DataType::Partition {
            4096
        } else {
            0
        };
        let start = align(pos, alignment);
        out.write_all(&vec![0u8; (start - pos) as usize])?;
        let size = write_data(out, o.data, &mut hasher)?;
        table.extend(descriptor(o, i, start, start - pos + size, size, time)?);
        if let Some(p) = o.partition.filter(|p| p.part_type == 2) {
            arch = p.arch;
        }
        pos = start + size;
    }
    table.resize(descriptors_size as usize, 0);
    hasher.update(&table);
    let id = image_id(hasher);
    let h = header(arch, id, time, objects.len(), pos - data_offset);
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&h)?;
    out.seek(SeekFrom::Start(DESCRIPTORS_OFFSET))?;
    out.write_all(&table)?;
    out.flush()?;
    Ok(id)
}

/// Writes the content of one data object to `out` at its position, feeding it to `hasher`.
/// Returns its size.
fn write_data(out: &mut File, data: Data<'_>, hasher: &mut Sha256) -> io::Result<u64> {
    match data {
        Data::Bytes(b) => {
            out.write_all(b)?;
            hasher.update(b);
            Ok(b.len() as u64)
        }
        Data::File(p) => {
            let mut r = BufReader::with_capacity(1 << 20, File::open(p)?);
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                let k = r.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                out.write_all(&buf[..k])?;
                hasher.update(&buf[..k]);
                n += k as u64;
            }
            Ok(n)
        }
    }
}

/// The descriptor of object `o`, the `i`th (0-based), whose `size` bytes start at `start` and take
/// `padded` bytes with the alignment padding before them. Refuses a name longer than 128 bytes.
fn descriptor(
    o: &Object<'_>,
    i: usize,
    start: u64,
    padded: u64,
    size: u64,
    time: i64,
) -> io::Result<Vec<u8>> {
    if o.name.len() > 128 {
        return Err(io::Error::other(format!(
            "SIF object name {:?} is longer than 128 bytes",
            o.name
        )));
    }
    let mut d = Vec::with_capacity(DESCRIPTOR_SIZE);
    d.extend((o.kind as i32).to_le_bytes());
    d.push(1);
    d.extend((i as u32 + 1).to_le_bytes());
    d.extend((GROUP_MASK | 1).to_le_bytes());
    d.extend(0u32.to_le_bytes());
    d.extend((start as i64).to_le_bytes());
    d.extend((size as i64).to_le_bytes());
    d.extend((padded as i64).to_le_bytes());
    d.extend(time.to_le_bytes());
    d.extend(time.to_le_bytes());
    d.extend(0i64.to_le_bytes());
    d.extend(0i64.to_le_bytes());
    let mut name = [0u8; 128];
    name[..o.name.len()].copy_from_slice(o.name.as_bytes());
    d.extend(name);
    let mut extra = [0u8; 384];
    if let Some(p) = o.partition {
        extra[0..4].copy_from_slice(&p.fs_type.to_le_bytes());
        extra[4..8].copy_from_slice(&p.part_type.to_le_bytes());
        extra[8..11].copy_from_slice(&p.arch);
    }
    d.extend(extra);
    debug_assert_eq!(d.len(), DESCRIPTOR_SIZE);
    Ok(d)
}

/// The image id: the first 16 bytes of the SHA-256 of the data objects and the descriptor table,
/// shaped as a version 4 UUID.
fn image_id(hasher: Sha256) -> [u8; 16] {
    let digest = hasher.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x40; // version 4 layout
    id[8] = (id[8] & 0x3f) | 0x80; // RFC 4122 variant
    id
}

/// The global header of an image of `objects` data objects holding `data_size` bytes of data.
fn header(arch: [u8; 3], id: [u8; 16], time: i64, objects: usize, data_size: u64) -> Vec<u8> {
    let descriptors_size = (DESCRIPTORS * DESCRIPTOR_SIZE) as u64;
    let data_offset = DESCRIPTORS_OFFSET + descriptors_size;
    let mut h = Vec::with_capacity(HEADER_SIZE);
    let mut launch = [0u8; 32];
    launch[..LAUNCH.len()].copy_from_slice(LAUNCH.as_bytes());
    h.extend(launch);
    h.extend(b"SIF_MAGIC\0");
    h.extend(b"01\0");
    h.extend(arch);
    h.extend(id);
    for v in [
        time,
        time,
        (DESCRIPTORS - objects) as i64,
        DESCRIPTORS as i64,
        DESCRIPTORS_OFFSET as i64,
        descriptors_size as i64,
        data_offset as i64,
        data_size as i64,
    ] {
        h.extend(v.to_le_bytes());
    }
    debug_assert_eq!(h.len(), HEADER_SIZE);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_sif_spec() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.sif");
        let mut f = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        let part = Partition {
            fs_type: 1,
            part_type: 2,
            arch: *b"02\0",
        };
        let objs = [
            Object {
                kind: DataType::Deffile,
                name: String::new(),
                data: Data::Bytes(b"Bootstrap: scratch\n"),
                partition: None,
            },
            Object {
                kind: DataType::Partition,
                name: String::new(),
                data: Data::Bytes(b"hsqs"),
                partition: Some(part),
            },
        ];
        write(&mut f, &objs, 7).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[..LAUNCH.len()], LAUNCH.as_bytes());
        assert_eq!(&b[32..42], b"SIF_MAGIC\0");
        assert_eq!(&b[45..48], b"02\0");
        let data_off = 4096 + 48 * 585;
        assert_eq!(
            i64::from_le_bytes(b[112..120].try_into().unwrap()),
            data_off
        );
        assert_eq!(
            &b[data_off as usize..data_off as usize + 19],
            b"Bootstrap: scratch\n"
        );
        // The partition is 4096-aligned.
        let d1 = 4096 + 585;
        let off = i64::from_le_bytes(b[d1 + 17..d1 + 25].try_into().unwrap());
        assert_eq!(off % 4096, 0);
        assert_eq!(&b[off as usize..off as usize + 4], b"hsqs");
        assert_eq!(b.len() as i64, off + 4);
    }
}
