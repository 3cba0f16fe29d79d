//! `ownmail check-config`: load, validate, print resolved.

use std::io::Write;

use super::load_config;
use crate::auth::Users;
use crate::cli::GlobalArgs;
use crate::error::sysexits;

pub fn run(global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = load_config(global)?;
    config.check_files()?;
    let users = Users::load(&config.users_file)?;
    for (name, why) in users.problems() {
        tracing::warn!(
            "{}: user {name:?} cannot log in: {why}",
            config.users_file.display()
        );
    }
    write!(super::stdout(), "{config}")?;
    Ok(sysexits::OK)
}
