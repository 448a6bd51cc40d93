//! tap backend (to be implemented).
