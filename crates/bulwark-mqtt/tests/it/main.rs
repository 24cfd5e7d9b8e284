//! Integration tests for bulwark-mqtt: the one test binary of the crate.

mod broker;
mod client_gateway;
mod common;
mod hostile;
mod mosquitto_tools;
mod paho;
mod session_rules;
