//! The read side of permessage-deflate: compressed data frames inflated as
//! they arrive, before the application (or the assembler) sees them.

use crate::error::ProtocolError;
use crate::ws::deflate::{DeflateParams, Inflater};
use crate::ws::frame::{Frame, OpCode};
use crate::ws::role::Role;
use crate::ws::utf8::Utf8Validator;

const RSV1: u8 = 0b100;

/// Inflation state of one connection's incoming messages.
#[derive(Debug)]
pub(crate) struct InflateState {
    inflater: Inflater,
    /// A compressed message is in progress.
    active: bool,
    text: bool,
    utf8: Utf8Validator,
}

impl InflateState {
    pub(crate) fn new(params: &DeflateParams, role: Role) -> Self {
        let (no_context, bits) = params.theirs(role);
        InflateState {
            inflater: Inflater::new(no_context, bits),
            active: false,
            text: false,
            utf8: Utf8Validator::new(),
        }
    }

    /// Replaces a compressed frame's payload by its inflated bytes (RSV1
    /// cleared), checking the message's inflated size against `max` and
    /// its text as UTF-8. Other frames pass through.
    pub(crate) fn frame(&mut self, frame: &mut Frame, max: usize) -> Result<(), ProtocolError> {
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                if frame.rsv & RSV1 == 0 {
                    return Ok(());
                }
                self.active = true;
                self.text = frame.opcode == OpCode::Text;
                self.utf8.reset();
            }
            OpCode::Continuation if self.active => {}
            _ => return Ok(()),
        }
        let out = self.inflater.inflate(&frame.payload, frame.fin, max)?;
        if self.text {
            self.utf8
                .feed(&out)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            if frame.fin {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if frame.fin {
            self.active = false;
        }
        frame.payload = out;
        frame.rsv &= !RSV1;
        Ok(())
    }
}
