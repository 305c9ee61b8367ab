//! Skeleton; filled in by the following issues.
