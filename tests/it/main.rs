//! Integration tests: the handlers with their real adapters against the AWS emulator
//! (moto), and real HTTP receivers on 127.0.0.1. Run by `make test`.

mod agents;
mod calls;
mod deliveries;
mod endpoints;
mod esm;
mod fan_out;
mod fault;
mod hardening;
mod ingest;
mod keys;
mod langgraph;
mod openapi;
mod ordering;
mod pages;
mod portal;
mod support;
mod sweeper;
mod tenants;
