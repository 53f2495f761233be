//! Photos: decode (bounded), orient, check for one face, normalize to each target's profile.

pub mod face;
