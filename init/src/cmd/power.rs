//! `berth reboot|poweroff|halt`: ask berth as PID 1 to stop every container and then
//! restart, power off or halt the machine.

use std::io::Write;
use std::path::Path;

use super::ctl::{call, unexpected};
use crate::control::client::DEFAULT_TIMEOUT;
use crate::control::proto::{Request, Response};
use crate::pid1::Power;

/// Sends the request; 0 once berth has accepted it (the machine then shuts down).
pub fn power(socket: &Path, power: Power, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let request = match power {
        Power::Reboot => Request::Reboot,
        Power::Poweroff => Request::Poweroff,
        Power::Halt => Request::Halt,
    };
    match call(socket, &request, Some(DEFAULT_TIMEOUT), err) {
        Ok(Response::Ok { message }) => {
            if let Some(m) = message {
                let _ = writeln!(out, "{m}");
            }
            0
        }
        Ok(other) => unexpected(err, &other),
        Err(code) => code,
    }
}
