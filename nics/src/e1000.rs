//! The e1000 model (being written).

use vm_memory::GuestMemory;

use crate::device::{NicConfig, NicDevice};
use crate::models::ModelError;

/// Creates the model from its `-device` properties.
pub fn create<M>(
    name: &str,
    _props: &[(String, String)],
    _cfg: NicConfig<M>,
) -> Result<Box<dyn NicDevice<M>>, ModelError>
where
    M: GuestMemory + Send + 'static,
{
    Err(ModelError::NotSupported(name.to_string()))
}
