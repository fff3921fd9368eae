//! localstack
