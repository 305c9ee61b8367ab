//! The gateway's frames and close codes (contract section 10). Every frame is a JSON text
//! frame `{"op": ..., ...}` of at most [`MAX_FRAME`] bytes.
//!
//! Server to client: `HELLO` `{"heartbeat_interval": ms}`; `READY` `{"session_id", "user_id",
//! "servers", "seq"}`; `DISPATCH` `{"t": TYPE, "s": seq, "d": payload}`; `RESUMED`
//! `{"replayed": n}` after a replay; `HEARTBEAT` `{"s": last seq sent}` every interval (answer
//! with `HEARTBEAT_ACK`, or any frame); `HEARTBEAT_ACK` to a client's `HEARTBEAT`;
//! `INVALID_SESSION` before closing with [`CloseCode::InvalidSession`].
//!
//! Client to server: `HEARTBEAT` (answered with `HEARTBEAT_ACK`) and `HEARTBEAT_ACK`. Any frame
//! counts as a sign of life; a client silent for 1.5 intervals is closed.

use bytestring::ByteString;
use invite_store::repo::StoredEvent;
use serde::Deserialize;

/// The largest frame a client may send, in bytes.
pub const MAX_FRAME: usize = 4 * 1024;

/// Declares [`CloseCode`] from one table: each code's name, number and close frame's reason,
/// so that a code cannot be added without its reason or left out of [`CloseCode::ALL`].
macro_rules! close_codes {
    ($($(#[$doc:meta])* $name:ident = $number:literal, $reason:literal;)+) => {
        /// Why the gateway closed a connection. 4000-4999 are the gateway's own; 1012 and 1013
        /// are RFC 6455's "service restart" and "try again later".
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        pub enum CloseCode {
            $($(#[$doc])* $name = $number,)+
        }

        impl CloseCode {
            /// Every code, for the documentation and tests.
            pub const ALL: [Self; [$($number),+].len()] = [$(Self::$name),+];

            /// The close frame's reason (at most 123 bytes).
            pub const fn reason(self) -> &'static str {
                match self {
                    $(Self::$name => $reason,)+
                }
            }
        }
    };
}

close_codes! {
    /// An `op` the gateway does not know.
    UnknownOpcode = 4001, "unknown op";
    /// A text frame that is not a JSON object with an `op`.
    DecodeError = 4002, "frames must be JSON objects with an op";
    /// A binary frame: the gateway speaks JSON text only.
    BinaryFrame = 4003, "binary frames are not accepted";
    /// No token, or one that does not verify.
    AuthenticationFailed = 4004, "missing or invalid token";
    /// The token expired during the session: connect again with a fresh one.
    TokenExpired = 4005, "the token expired";
    /// A frame over [`MAX_FRAME`] bytes.
    FrameTooLarge = 4006, "frame over 4096 bytes";
    /// `resume_from` is not a `seq`, or one the outbox has not reached.
    InvalidSeq = 4007, "resume_from is not a seq the outbox has reached";
    /// No frame from the client for 1.5 heartbeat intervals.
    SessionTimedOut = 4008, "no heartbeat";
    /// The client read too slowly and its queue filled: resume from the last `seq` received.
    SlowConsumer = 4009, "slow consumer: resume from the last seq received";
    /// The user has as many sessions as allowed, on all instances together.
    TooManyConnections = 4010, "too many connections for this user";
    /// `resume_from` is older than the outbox keeps: connect without it and reload.
    InvalidSession = 4011, "resume_from is older than the outbox keeps";
    /// The instance is stopping: resume on another with `resume_from`.
    Restarting = 1012, "instance stopping: resume on another";
    /// The database cannot be reached: try again later.
    Unavailable = 1013, "database unavailable: try again later";
}

impl CloseCode {
    /// The code from its number.
    pub fn from_u16(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|known| *known as u16 == code)
    }
}

/// A frame a client sends.
#[derive(Debug, Deserialize)]
struct ClientFrame {
    op: String,
}

/// What a client's text frame asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp {
    /// Answer with `HEARTBEAT_ACK`.
    Heartbeat,
    /// The answer to the server's `HEARTBEAT`.
    HeartbeatAck,
}

impl ClientOp {
    /// Reads a client's text frame.
    pub fn parse(text: &str) -> Result<Self, CloseCode> {
        let frame: ClientFrame = serde_json::from_str(text).map_err(|_| CloseCode::DecodeError)?;
        match frame.op.as_str() {
            "HEARTBEAT" => Ok(Self::Heartbeat),
            "HEARTBEAT_ACK" => Ok(Self::HeartbeatAck),
            _ => Err(CloseCode::UnknownOpcode),
        }
    }
}

/// `{"op": "DISPATCH", "t": TYPE, "s": seq, "d": payload}`, serialized once for every session.
pub fn dispatch_frame(event: &StoredEvent) -> ByteString {
    frame(&serde_json::json!({
        "op": "DISPATCH",
        "t": event.kind(),
        "s": event.seq,
        "d": event.event.payload(),
    }))
}

/// A frame `{"op": op, "d": data}`.
pub fn op_frame(op: &str, data: &serde_json::Value) -> ByteString {
    frame(&serde_json::json!({"op": op, "d": data}))
}

fn frame(value: &serde_json::Value) -> ByteString {
    ByteString::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_read_or_refused_with_their_code() {
        assert_eq!(ClientOp::parse(r#"{"op":"HEARTBEAT"}"#), Ok(ClientOp::Heartbeat));
        assert_eq!(ClientOp::parse(r#"{"op":"HEARTBEAT_ACK","d":1}"#), Ok(ClientOp::HeartbeatAck));
        assert_eq!(ClientOp::parse(r#"{"op":"IDENTIFY"}"#), Err(CloseCode::UnknownOpcode));
        assert_eq!(ClientOp::parse("not json"), Err(CloseCode::DecodeError));
        assert_eq!(ClientOp::parse(r#"{"d":1}"#), Err(CloseCode::DecodeError));
        assert_eq!(ClientOp::parse(r#"{"op":7}"#), Err(CloseCode::DecodeError));
    }

    #[test]
    fn close_codes_round_trip_and_fit_a_close_frame() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_u16(code as u16), Some(code));
            assert!(code.reason().len() <= 123);
        }
        assert_eq!(CloseCode::from_u16(0), None);
    }
}
