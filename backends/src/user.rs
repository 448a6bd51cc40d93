//! user backend (to be implemented).
