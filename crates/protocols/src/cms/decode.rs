//! Placeholder: the decoder is being written.
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Invalid(String),
}

pub fn decode(_input: &[u8]) -> Result<CmsBatch, DecodeError> {
    Err(DecodeError::Invalid("not yet written".into()))
}

pub fn decode_record(_session: &str, _raw: &[u8]) -> Result<CmsRecord, DecodeError> {
    Err(DecodeError::Invalid("not yet written".into()))
}
