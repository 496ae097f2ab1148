//! Model mode: the engine run in virtual time with a cost model, to predict how long a
//! workload takes on Lambda ([`ModelOptions`], [`CostModel`], [`ModelReport`], [`Timeline`]).

mod books;
mod cost;
mod cursor;
mod options;
mod report;
mod run;
mod timeline;

pub(crate) use books::{Arrival, Completion, Due, Model};
pub use cost::CostModel;
pub(crate) use cursor::Cursor;
pub use options::ModelOptions;
pub use report::{AgeSummary, FunctionReport, ModelReport};
pub(crate) use timeline::TimelineBuf;
pub use timeline::{Timeline, TimelinePoint};
