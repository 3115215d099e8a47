//! Where and as whom a guest streams its frames: the `metrics=`, `token=`,
//! `run=` and `metrics_queue=` words, built by the host and parsed by the guest.

use std::net::SocketAddr;
use std::string::{String, ToString};
use std::vec::Vec;

use super::Token;
use crate::cmdline::{find, HOST_ALIAS, METRICS, METRICS_QUEUE, RUN, TOKEN};

/// The stream's destination and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as the guest reaches it (`10.0.2.2:PORT` on QEMU's user network).
    pub addr: SocketAddr,
    pub token: Token,
    /// The run id the host knows the guest by.
    pub run: String,
    /// Intervals the guest may hold for sending; `None`: [`Target::DEFAULT_QUEUE`].
    pub queue: Option<usize>,
}

/// A streaming word the guest cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{key}={value}: expected {expected}")]
    BadWord {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("streaming needs {0}=")]
    MissingWord(&'static str),
}

impl Target {
    /// Intervals held before new ones are dropped; at the workloads' default
    /// 250 ms interval, 16 s of network stall.
    pub const DEFAULT_QUEUE: usize = 64;
    /// The most a guest may be told to hold (each interval holds ~200 KB).
    pub const MAX_QUEUE: usize = 4096;

    /// The host's collector listening on `port` of its loopback, seen from a
    /// guest on QEMU's user-mode network.
    pub fn host_port(port: u16, token: Token, run: &str) -> Self {
        Self {
            addr: SocketAddr::new(HOST_ALIAS.parse().expect("a valid IPv4 literal"), port),
            token,
            run: run.to_string(),
            queue: None,
        }
    }

    /// Reads the streaming words of a command line; `None` without `metrics=`.
    pub fn parse(line: &str) -> Result<Option<Target>, TargetError> {
        let Some(addr) = find(line, METRICS) else {
            return Ok(None);
        };
        let bad = |key, value: &str, expected| TargetError::BadWord {
            key,
            value: value.into(),
            expected,
        };
        let addr = addr
            .parse()
            .map_err(|_| bad(METRICS, addr, "IP:PORT of the host, e.g. 10.0.2.2:4000"))?;
        let token = find(line, TOKEN).ok_or(TargetError::MissingWord(TOKEN))?;
        let token = Token::parse(token).map_err(|_| bad(TOKEN, token, "32 hex digits"))?;
        let run = find(line, RUN).ok_or(TargetError::MissingWord(RUN))?;
        let queue = match find(line, METRICS_QUEUE) {
            None => None,
            Some(q) => Some(
                q.parse()
                    .ok()
                    .filter(|q| (1..=Self::MAX_QUEUE).contains(q))
                    .ok_or_else(|| bad(METRICS_QUEUE, q, "an integer in 1..=4096"))?,
            ),
        };
        Ok(Some(Target {
            addr,
            token,
            run: run.into(),
            queue,
        }))
    }

    /// The queue length in force.
    pub fn queue(&self) -> usize {
        self.queue.unwrap_or(Self::DEFAULT_QUEUE)
    }

    /// The words that say this, as (key, value).
    pub fn words(&self) -> Vec<(&'static str, String)> {
        let mut words = std::vec![
            (METRICS, self.addr.to_string()),
            (TOKEN, self.token.to_hex()),
            (RUN, self.run.clone()),
        ];
        if let Some(queue) = self.queue {
            words.push((METRICS_QUEUE, queue.to_string()));
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use std::format;

    use super::*;

    #[test]
    fn words_parse_back_to_the_same_target() {
        let mut target = Target::host_port(4000, Token::from_bytes([7; 16]), "kernbench-2x-pv-r1");
        for queue in [None, Some(8)] {
            target.queue = queue;
            let line: Vec<String> = target.words().iter().map(|(k, v)| format!("{k}={v}")).collect();
            let line = line.join(" ");
            assert_eq!(Target::parse(&line), Ok(Some(target.clone())), "{line}");
        }
        assert_eq!(Target::parse("mode=hello"), Ok(None));
    }

    #[test]
    fn bad_streaming_words_are_named() {
        let err = Target::parse("metrics=nowhere token=00 run=x").unwrap_err();
        assert!(
            format!("{err}").starts_with("metrics=nowhere: expected IP:PORT"),
            "{err}"
        );
        let token = "00112233445566778899aabbccddeeff";
        assert_eq!(
            Target::parse("metrics=10.0.2.2:1 run=x"),
            Err(TargetError::MissingWord(TOKEN))
        );
        let line = format!("metrics=10.0.2.2:1 token={token} run=x metrics_queue=0");
        assert!(Target::parse(&line).is_err());
    }
}
