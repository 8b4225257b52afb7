//! A parallel, deterministic, single-member gzip writer (pigz's technique).
//!
//! The input is cut into fixed 1 MiB chunks. Each chunk is deflated on its own thread with the
//! previous 32 KiB as a preset dictionary and ends with a sync flush (the last one with a final
//! block), so the concatenated raw deflate streams form one valid deflate stream inside one gzip
//! member. Kerblam! 1.x decompresses with a single-member `GzDecoder`, so a multi-member file would
//! not do. Chunk boundaries do not depend on the thread count: the output is byte-identical on any
//! machine. The level is 6, flate2's default, as Kerblam! 1.x uses.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

const BLOCK: usize = 1 << 20;
const DICT: usize = 32 * 1024;
const LEVEL: u32 = 6;

/// Gzip-compresses what is written into `inner` on up to `threads` threads.
pub struct GzWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    dict: Vec<u8>,
    crc: Crc,
    pending: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    threads: usize,
    header_done: bool,
}

impl<W: Write> GzWriter<W> {
    /// A writer compressing on `threads` threads (at least one).
    pub fn new(inner: W, threads: u32) -> Self {
        GzWriter {
            inner,
            buf: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            crc: Crc::new(),
            pending: VecDeque::new(),
            threads: threads.max(1) as usize,
            header_done: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown): no name, no time.
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
            self.header_done = true;
        }
        Ok(())
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let chunk = std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(if last { 0 } else { BLOCK }),
        );
        let dict = std::mem::take(&mut self.dict);
        if !last {
            self.dict = chunk[chunk.len().saturating_sub(DICT)..].to_vec();
        }
        while self.pending.len() >= self.threads {
            self.drain_one()?;
        }
        self.pending.push_back(std::thread::spawn(move || {
            deflate_chunk(&chunk, &dict, last)
        }));
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(h) = self.pending.pop_front() {
            let out = h
                .join()
                .map_err(|_| io::Error::other("gzip worker thread panicked"))??;
            self.header()?;
            self.inner.write_all(&out)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header()?;
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        let crc = self.crc.sum();
        let size = self.crc.amount();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&size.to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        if self.buf.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn deflate_chunk(data: &[u8], dict: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(LEVEL), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 16 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => break,
            _ if !last && done_input && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn single_member_round_trip_independent_of_threads() {
        let data: Vec<u8> = (0..3_500_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        let mut outs = Vec::new();
        for threads in [1, 3] {
            let mut w = GzWriter::new(Vec::new(), threads);
            for piece in data.chunks(100_003) {
                w.write_all(piece).unwrap();
            }
            outs.push(w.finish().unwrap());
        }
        assert_eq!(outs[0], outs[1]);
        let mut back = Vec::new();
        // A single-member decoder, as Kerblam! 1.x uses, must see everything.
        flate2::read::GzDecoder::new(&outs[0][..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let empty = GzWriter::new(Vec::new(), 2).finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
