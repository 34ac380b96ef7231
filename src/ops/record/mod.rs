//! The recorder: a live tail of exchanges and topics written, envelope by envelope, into an
//! embedded database (`store`), so a trace can tell a message's journey after its copies
//! are consumed (`merge`); `run` is the loop that taps, buffers and writes.

pub mod kept;
pub mod merge;
pub mod run;
pub mod store;

pub use kept::KeptDb;
pub use merge::{Recorded, merge, merge_routed, recorded_hop};
pub use run::{RecordError, RecordEvent, RecordOptions, Status, record, record_kept};
pub use store::{Gap, Retention, Store, StoreError};
