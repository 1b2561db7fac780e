//! The on-disk format of the write-ahead log: a segment's header and the frames that follow it.
//!
//! This is Switchyard's own format, written by hand because it is the storage's whole job (the
//! embedded engines looked at either rewrite pages per commit or hold a lock across the fsync).
//!
//! A segment file is a 28-byte header, then frames back to back:
//!
//! ```text
//! header: magic "SYWAL001" (8) | salt u64 (8) | first frame's sequence u64 (8) | CRC32C of those 24 (4)
//! frame:  payload length u32 (4) | CRC32C (4) | sequence u64 (8) | payload
//! ```
//!
//! Integers are little-endian. A frame's CRC32C covers the segment's salt, the length, the sequence
//! and the payload. The salt is random per segment, so bytes a client put in a payload can never pass
//! for a frame, whatever they hold; and a frame copied from another segment does not check either.
//! Sequences rise by one from frame to frame across the whole log, so a frame out of place is caught
//! too. One frame is what one group commit writes, so a crash can tear at most the last frame.

use crate::storage::StorageError;

/// The segment magic: the format's name and version.
pub const MAGIC: &[u8; 8] = b"SYWAL001";
pub const HEADER_LEN: usize = 28;
pub const FRAME_HEADER_LEN: usize = 16;
/// The largest payload a frame may carry; a length past it is damage, not a frame.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// What a segment's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub salt: u64,
    pub first_sequence: u64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8..16].copy_from_slice(&self.salt.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.first_sequence.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..24]);
        bytes[24..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// The header at the start of `bytes`, if it is one: whole, with the magic and a matching CRC.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..HEADER_LEN)?;
        let crc = u32::from_le_bytes(bytes[24..28].try_into().ok()?);
        if &bytes[..8] != MAGIC || crc32c::crc32c(&bytes[..24]) != crc {
            return None;
        }
        Some(Self {
            salt: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            first_sequence: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
        })
    }
}

/// Appends the frame of `payload` with `sequence` to `out`, checksummed with `salt`.
pub fn encode_frame(
    salt: u64,
    sequence: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), StorageError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(StorageError::FrameTooLarge {
            bytes: payload.len(),
            limit: MAX_PAYLOAD,
        });
    }
    // Cannot truncate: MAX_PAYLOAD fits in a u32.
    let length = payload.len() as u32;
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&frame_crc(salt, length, sequence, payload).to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A frame found in a segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub sequence: u64,
    pub payload: &'a [u8],
    /// Bytes the whole frame takes, header included.
    pub len: usize,
}

/// The frame at the start of `bytes` if it is whole and its checksum matches under `salt`.
pub fn decode_frame(salt: u64, bytes: &[u8]) -> Option<Frame<'_>> {
    let header = bytes.get(..FRAME_HEADER_LEN)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let sequence = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let payload_len = usize::try_from(length).ok()?;
    if payload_len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + payload_len)?;
    (frame_crc(salt, length, sequence, payload) == crc).then_some(Frame {
        sequence,
        payload,
        len: FRAME_HEADER_LEN + payload_len,
    })
}

fn frame_crc(salt: u64, length: u32, sequence: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32c::crc32c(&salt.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &length.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &sequence.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_header_round_trips_and_any_damage_is_seen() {
        let header = SegmentHeader {
            salt: 0x1234_5678_9abc_def0,
            first_sequence: 42,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Some(header));
        assert_eq!(SegmentHeader::decode(&bytes[..HEADER_LEN - 1]), None);
        for at in 0..HEADER_LEN {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert_eq!(SegmentHeader::decode(&damaged), None, "byte {at}");
        }
    }

    #[test]
    fn a_frame_checks_only_under_its_own_salt() {
        let mut bytes = Vec::new();
        encode_frame(7, 1, b"hello", &mut bytes).unwrap();
        let frame = decode_frame(7, &bytes).unwrap();
        assert_eq!(
            (frame.sequence, frame.payload, frame.len),
            (1, &b"hello"[..], 21)
        );
        assert_eq!(decode_frame(8, &bytes), None);
        assert_eq!(decode_frame(7, &bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_payload_too_large_is_refused_when_written() {
        let payload = vec![0; MAX_PAYLOAD + 1];
        let error = encode_frame(1, 1, &payload, &mut Vec::new()).unwrap_err();
        assert!(matches!(error, StorageError::FrameTooLarge { .. }));
    }

    proptest! {
        /// Frames read back as written, and a flipped bit anywhere in one makes it fail its check.
        #[test]
        fn frames_round_trip_and_no_flipped_bit_passes(
            salt: u64,
            sequence: u64,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut bytes = Vec::new();
            encode_frame(salt, sequence, &payload, &mut bytes).unwrap();
            let frame = decode_frame(salt, &bytes).unwrap();
            prop_assert_eq!(frame.sequence, sequence);
            prop_assert_eq!(frame.payload, &payload[..]);
            prop_assert_eq!(frame.len, bytes.len());
            let at = flip.index(bytes.len());
            bytes[at] ^= 1 << bit;
            let damaged = decode_frame(salt, &bytes);
            // A flip in the length may make a shorter, different frame; it still never checks.
            prop_assert!(damaged.is_none(), "a damaged frame passed: {:?}", damaged);
        }
    }
}
