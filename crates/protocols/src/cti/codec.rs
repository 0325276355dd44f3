//! Frames to messages and back. (Being written: see the module docs.)

use super::{CtiError, CtiMessage};

/// The whole frame's length (header included) once `buf` holds its
/// header; an error when the header claims more than `MAX_FRAME_LEN`.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CtiError> {
    let _ = buf;
    unimplemented!("frame_len")
}

/// Decodes one whole frame (header and body) of protocol `version`.
pub fn decode(frame: &[u8], version: u32) -> Result<CtiMessage, CtiError> {
    let _ = (frame, version);
    unimplemented!("decode")
}

/// Encodes a message as one frame (header and body) of protocol `version`.
pub fn encode(message: &CtiMessage, version: u32) -> Vec<u8> {
    let _ = (message, version);
    unimplemented!("encode")
}

pub(super) fn message_type_name(message_type: u32) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Owned(format!("MESSAGE_TYPE_{message_type}"))
}
