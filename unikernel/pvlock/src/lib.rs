//! pv-ticketlocks: being written (issue "pv-ticketlocks").
#![no_std]
