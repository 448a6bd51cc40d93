//! socket backend (to be implemented).
