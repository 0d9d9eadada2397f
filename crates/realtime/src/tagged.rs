//! One macro for both event directions: an enum of payload structs keyed by the wire `type`.
//! Parsing peeks at `type` first and then decodes only that struct, so an unknown type is a
//! value rather than an error, and large audio deltas are not buffered twice.

use serde::Serialize;

/// Serializes `{"type": ..., <payload fields>}`.
#[derive(Serialize)]
pub(crate) struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    #[serde(flatten)]
    pub(crate) payload: &'a T,
}

/// Just the `type` of an event; borrowed when it has no escapes.
#[derive(serde::Deserialize)]
pub(crate) struct Peek<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Option<std::borrow::Cow<'a, str>>,
}

macro_rules! wire_events {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $wire:literal => $variant:ident($payload:ty), )*
        }
        unknown: $unknown:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($payload), )*
            /// A `type` this crate does not model: kept verbatim and counted by the tracker,
            /// never an error (the API adds events over time; protocol §3).
            $unknown {
                /// The wire `type`.
                type_: String,
                /// The whole event.
                raw: serde_json::Value,
            },
        }

        impl $name {
            /// The wire `type` string.
            pub fn type_name(&self) -> &str {
                match self {
                    $( Self::$variant(_) => $wire, )*
                    Self::$unknown { type_, .. } => type_,
                }
            }

            /// Parses one event from JSON text.
            pub fn parse(text: &str) -> Result<Self, $crate::error::ParseError> {
                use $crate::error::ParseError;
                if !text.trim_start().starts_with('{') {
                    // A derived struct would also accept a JSON array; events are objects.
                    return match serde_json::from_str::<serde_json::Value>(text) {
                        Err(e) => Err(ParseError::Json(e)),
                        Ok(_) => Err(ParseError::NotAnObject),
                    };
                }
                let peek: $crate::tagged::Peek<'_> =
                    serde_json::from_str(text).map_err(ParseError::Json)?;
                let kind = peek.kind.ok_or(ParseError::MissingType)?;
                match kind.as_ref() {
                    $( $wire => serde_json::from_str(text).map(Self::$variant).map_err(|source| {
                        ParseError::Shape { type_: $wire, source }
                    }), )*
                    other => Ok(Self::$unknown {
                        type_: other.to_owned(),
                        raw: serde_json::from_str(text).map_err(ParseError::Json)?,
                    }),
                }
            }

            /// Serializes to one line of JSON.
            pub fn to_json(&self) -> Result<String, $crate::error::EncodeError> {
                serde_json::to_string(self).map_err($crate::error::EncodeError)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(p) => $crate::tagged::Tagged { kind: $wire, payload: p }
                        .serialize(s), )*
                    Self::$unknown { raw, .. } => raw.serialize(s),
                }
            }
        }
    };
}

pub(crate) use wire_events;
