//! Workloads: being written (issue "Workloads").
