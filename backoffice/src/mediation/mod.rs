//! Mediation cases: numbering and the minimal record, the full record, the mediators' register
//! and appointments, the agenda, online meetings scheduled from the case, the case file.

pub mod agenda;
pub mod case_documents;
pub mod case_record;
pub mod cases;
pub mod mediators;
pub mod scheduling;
