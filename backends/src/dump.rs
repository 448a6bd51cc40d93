//! dump backend (to be implemented).
