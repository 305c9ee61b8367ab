//! Fault tests on the real `invite-server` binary (contract section 6): the database cut away
//! under load, SIGKILL under an accept load, SIGTERM under load.

mod database_cut;
mod sigkill;
mod sigterm;
mod support;
