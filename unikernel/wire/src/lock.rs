//! The kernel's spinlock flavour and its command-line words: what the host
//! asks a bench guest for and what the guest parses, in one place.
//!
//! `pvlock=base|pv|qspin|pvqspin|tas` picks the lock (`on` and `off` are
//! accepted for `pv` and `base`), `pvlock.spin=N` the spins before a waiter
//! halts, `pvlock.kick=auto|nmi|hypercall` how a halted waiter is woken, and
//! `pvlock.hwkvm=1` says the host verified hardware KVM (only then may the
//! guest use the KVM_HC_KICK_CPU hypercall).

use core::fmt;

use crate::cmdline::{find, PVLOCK, PVLOCK_HW_KVM, PVLOCK_KICK, PVLOCK_SPIN};

/// The kernel's spinlock flavour: the guest kernel's `pvlock::LockMode`, whose
/// names these are (a host test keeps the two lists equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "lowercase"))]
pub enum LockMode {
    /// Hermit's plain ticket spinlock (`pvlock=base`, like Linux's `nopvspin`).
    Base,
    /// The seed's paravirtual ticket spinlock (`pvlock=pv`).
    Pv,
    /// The native queued spinlock of Linux 4.2+ (`pvlock=qspin`).
    Qspin,
    /// The paravirtual queued spinlock (`pvlock=pvqspin`).
    Pvqspin,
    /// The unfair test-and-set lock of Linux's `virt_spin_lock` (`pvlock=tas`).
    Tas,
}

impl LockMode {
    /// Every mode, in report order (`base` first: everything is compared with it).
    pub const ALL: [LockMode; 5] = [
        LockMode::Base,
        LockMode::Pv,
        LockMode::Qspin,
        LockMode::Pvqspin,
        LockMode::Tas,
    ];

    /// Its name in results, reports and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            LockMode::Base => "base",
            LockMode::Pv => "pv",
            LockMode::Qspin => "qspin",
            LockMode::Pvqspin => "pvqspin",
            LockMode::Tas => "tas",
        }
    }

    /// The value of the `pvlock=` word that selects it (its name).
    pub const fn word(self) -> &'static str {
        self.name()
    }

    /// The mode a `pvlock=` value selects: a name, or `on` (`pv`) and `off`
    /// (`base`), the words of the first edition.
    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "on" => Some(LockMode::Pv),
            "off" => Some(LockMode::Base),
            _ => Self::ALL.into_iter().find(|mode| mode.name() == word),
        }
    }

    /// Whether its waiters halt their vCPU and are kicked (`pv`, `pvqspin`).
    pub const fn is_paravirt(self) -> bool {
        matches!(self, LockMode::Pv | LockMode::Pvqspin)
    }

    /// Whether it is a queued lock (`qspin`, `pvqspin`).
    pub const fn is_queued(self) -> bool {
        matches!(self, LockMode::Qspin | LockMode::Pvqspin)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an unlocker wakes a halted waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The kernel chooses: the hypercall where the host vouched for hardware
    /// KVM and CPUID shows PV_UNHALT, NMIs elsewhere.
    Auto,
    /// An NMI IPI to the waiter's APIC ID (works under TCG and KVM).
    Nmi,
    /// KVM_HC_KICK_CPU with the waiter's APIC ID (hardware KVM only).
    Hypercall,
}

impl Kick {
    /// The value of the `pvlock.kick=` word.
    pub const fn word(self) -> &'static str {
        match self {
            Kick::Auto => "auto",
            Kick::Nmi => "nmi",
            Kick::Hypercall => "hypercall",
        }
    }
}

/// The pv-lock words of a guest command line, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvlockArgs {
    pub lock: LockMode,
    /// Spins before a waiter halts; `None`: the kernel's default (2^15, Linux's).
    pub spin: Option<u32>,
    pub kick: Kick,
    /// The host verified hardware KVM.
    pub hardware_kvm: bool,
}

impl Default for PvlockArgs {
    /// pv-locks on, as in Linux.
    fn default() -> Self {
        Self {
            lock: LockMode::Pv,
            spin: None,
            kick: Kick::Auto,
            hardware_kvm: false,
        }
    }
}

/// What `pvlock=` takes, for error messages.
pub const MODE_WORDS: &str = "base, pv, qspin, pvqspin or tas (on = pv, off = base)";

/// A word the guest cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadWord<'a> {
    pub key: &'static str,
    pub value: &'a str,
    pub expected: &'static str,
}

impl fmt::Display for BadWord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: expected {}", self.key, self.value, self.expected)
    }
}

impl PvlockArgs {
    /// Reads the pv-lock words of a command line (absent words: the defaults).
    pub fn parse(line: &str) -> Result<Self, BadWord<'_>> {
        let bad = |key, value, expected| BadWord { key, value, expected };
        let lock = match find(line, PVLOCK) {
            None => LockMode::Pv,
            Some(word) => LockMode::from_word(word).ok_or(bad(PVLOCK, word, MODE_WORDS))?,
        };
        let spin = match find(line, PVLOCK_SPIN) {
            None => None,
            Some(n) => Some(n.parse().map_err(|_| bad(PVLOCK_SPIN, n, "a number of spins"))?),
        };
        let kick = match find(line, PVLOCK_KICK).unwrap_or("auto") {
            "auto" => Kick::Auto,
            "nmi" => Kick::Nmi,
            "hypercall" => Kick::Hypercall,
            other => return Err(bad(PVLOCK_KICK, other, "auto, nmi or hypercall")),
        };
        let hardware_kvm = match find(line, PVLOCK_HW_KVM).unwrap_or("0") {
            "1" => true,
            "0" => false,
            other => return Err(bad(PVLOCK_HW_KVM, other, "0 or 1")),
        };
        Ok(Self {
            lock,
            spin,
            kick,
            hardware_kvm,
        })
    }

    /// The words that select this configuration, as (key, value); words at
    /// their default are left out except `pvlock=`, which is always said.
    pub fn words(&self) -> impl Iterator<Item = (&'static str, WordValue)> {
        let spin = self.spin.map(|n| (PVLOCK_SPIN, WordValue::Number(n)));
        let kick = (self.kick != Kick::Auto).then_some((PVLOCK_KICK, WordValue::Str(self.kick.word())));
        let hw = self.hardware_kvm.then_some((PVLOCK_HW_KVM, WordValue::Str("1")));
        core::iter::once((PVLOCK, WordValue::Str(self.lock.word())))
            .chain(spin)
            .chain(kick)
            .chain(hw)
    }
}

/// A word's value, without allocating (the core of this crate is `no_std`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordValue {
    Str(&'static str),
    Number(u32),
}

impl fmt::Display for WordValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WordValue::Str(s) => f.write_str(s),
            WordValue::Number(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    fn line(args: &PvlockArgs) -> String {
        args.words()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn words_parse_back_to_the_same_arguments() {
        for args in [
            PvlockArgs::default(),
            PvlockArgs {
                lock: LockMode::Base,
                spin: Some(256),
                kick: Kick::Nmi,
                hardware_kvm: true,
            },
        ] {
            let text = line(&args);
            assert_eq!(PvlockArgs::parse(&text), Ok(args), "{text}");
        }
        assert_eq!(line(&PvlockArgs::default()), "pvlock=pv");
        for mode in LockMode::ALL {
            let args = PvlockArgs {
                lock: mode,
                ..PvlockArgs::default()
            };
            assert_eq!(PvlockArgs::parse(&line(&args)), Ok(args));
        }
        assert_eq!(PvlockArgs::parse("pvlock=on").unwrap().lock, LockMode::Pv);
        assert_eq!(PvlockArgs::parse("pvlock=off").unwrap().lock, LockMode::Base);
    }

    #[test]
    fn the_kernel_knows_the_same_modes_by_the_same_names() {
        let names = |it: &mut dyn Iterator<Item = &'static str>| it.collect::<Vec<_>>();
        assert_eq!(
            names(&mut LockMode::ALL.iter().map(|m| m.name())),
            names(&mut pvlock::LockMode::ALL.iter().map(|m| m.name()))
        );
        for word in ["on", "off", "base", "pv", "qspin", "pvqspin", "tas", "maybe", ""] {
            assert_eq!(
                LockMode::from_word(word).map(LockMode::name),
                pvlock::LockMode::from_word(word).map(pvlock::LockMode::name),
                "{word}"
            );
        }
    }

    #[test]
    fn bad_words_say_what_was_expected() {
        let err = PvlockArgs::parse("mode=hello pvlock=maybe").unwrap_err();
        assert_eq!(
            format!("{err}"),
            "pvlock=maybe: expected base, pv, qspin, pvqspin or tas (on = pv, off = base)"
        );
        assert!(PvlockArgs::parse("pvlock=PV").is_err());
        assert!(PvlockArgs::parse("pvlock.spin=lots").is_err());
        assert!(PvlockArgs::parse("pvlock.kick=carrier-pigeon").is_err());
        assert!(PvlockArgs::parse("pvlock.hwkvm=yes").is_err());
    }
}
