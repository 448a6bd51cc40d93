//! options (being written).
