//! VziCloud FRS: signed JSON requests, UPDATE/REPLACE face uploads into a user group.

pub mod sign;
