//! network (being written).
