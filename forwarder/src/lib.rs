//! forwarder
