//! Helpers shared by the training integration tests.
#![allow(dead_code)]

pub mod lora_decoder;
