//! Metadata records and image (being written).
