//! Driver under construction.
