//! vde backend (to be implemented).
