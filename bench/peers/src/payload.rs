//! The benchmark payload: who sent a message, its place in that publisher's sequence, and when.
//!
//! The first 8 bytes hold the publisher index (top 16 bits) and its sequence number (low 48 bits),
//! the next 8 the send time in nanoseconds since the run's origin, both big-endian; the rest is zero
//! padding up to `--payload-bytes`. Publishers and receivers live in one process, so one monotonic
//! origin serves both ends and no clock sync is involved.

use bytes::{BufMut, Bytes, BytesMut};

/// The smallest payload that still carries the stamp.
pub const STAMP_BYTES: usize = 16;

const SEQ_BITS: u32 = 48;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// What a receiver reads back from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u16,
    pub seq: u64,
    pub sent_ns: u64,
}

/// Builds payloads of one size, carving them out of a shared buffer so that a publisher allocates
/// once per few hundred messages rather than once per message.
pub struct PayloadWriter {
    size: usize,
    buf: BytesMut,
}

impl PayloadWriter {
    /// Messages per buffer refill.
    const CHUNK: usize = 512;

    pub fn new(size: usize) -> Self {
        let size = size.max(STAMP_BYTES);
        Self {
            size,
            buf: BytesMut::with_capacity(size * Self::CHUNK),
        }
    }

    pub fn write(&mut self, stamp: Stamp) -> Bytes {
        if self.buf.capacity() < self.size {
            self.buf.reserve(self.size * Self::CHUNK);
        }
        self.buf
            .put_u64((u64::from(stamp.publisher) << SEQ_BITS) | (stamp.seq & SEQ_MASK));
        self.buf.put_u64(stamp.sent_ns);
        self.buf.put_bytes(0, self.size - STAMP_BYTES);
        self.buf.split().freeze()
    }
}

/// Reads a stamp back, or `None` for a payload too short to be one of ours.
pub fn read(payload: &[u8]) -> Option<Stamp> {
    let word = u64::from_be_bytes(payload.get(0..8)?.try_into().ok()?);
    let sent_ns = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    // The shift leaves 16 bits, so the cast cannot truncate.
    let publisher = (word >> SEQ_BITS) as u16;
    Some(Stamp {
        publisher,
        seq: word & SEQ_MASK,
        sent_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp survives the round trip, and the payload has the requested size.
    #[test]
    fn round_trip() {
        let mut writer = PayloadWriter::new(128);
        let stamp = Stamp {
            publisher: 3,
            seq: 123_456_789,
            sent_ns: 987_654_321,
        };
        let bytes = writer.write(stamp);
        assert_eq!(bytes.len(), 128);
        assert_eq!(read(&bytes), Some(stamp));
        let next = writer.write(Stamp { seq: 1, ..stamp });
        assert_eq!(read(&next).map(|s| s.seq), Some(1));
    }

    /// A size below the stamp is raised to the stamp, and a short payload is not misread.
    #[test]
    fn too_small() {
        assert_eq!(
            PayloadWriter::new(4)
                .write(Stamp {
                    publisher: 0,
                    seq: 0,
                    sent_ns: 0
                })
                .len(),
            16
        );
        assert_eq!(read(&[0; 15]), None);
    }
}
