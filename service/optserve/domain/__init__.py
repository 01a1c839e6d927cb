"""Experiment model, validation and search-space encoding; no gRPC, no storage."""
