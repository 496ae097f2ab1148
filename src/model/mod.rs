//! Model mode: the engine run in virtual time with a cost model, to predict how long a
//! workload takes on Lambda ([`ModelOptions`], [`CostModel`](crate::CostModel), [`ModelReport`],
//! [`Timeline`]).
//!
//! Model mode reaches the engine through its executor seam: [`Model`] implements the engine's
//! `VirtualTime`, and `RuntimeBuilder::model` puts it behind the seam.

mod ages;
mod arrivals;
mod books;
mod cursor;
mod due;
mod options;
mod report;
mod timeline;

pub use arrivals::{Arrivals, ArrivalsError};
pub(crate) use books::Model;
pub(crate) use cursor::Cursor;
pub use options::{ModelOptions, ThrottledEvents};
pub use report::{AgeSummary, FunctionReport, ModelReport, ThrottleCauses};
pub(crate) use timeline::TimelineBuf;
pub use timeline::{ChartOptions, Timeline, TimelinePoint};
