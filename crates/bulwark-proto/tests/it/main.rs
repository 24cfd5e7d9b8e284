//! Integration tests of the wire contract, a module per topic.

mod telemetry_encodings;
