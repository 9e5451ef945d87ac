//! The storage engine (being written).
