//! pvbench's multiboot (v1) loader for Hermit applications.
//!
//! `qemu-system-x86_64 -kernel <this, as elf32-i386> -initrd <app> -append <args>`:
//! QEMU loads this loader at 1 MiB and the application ELF as the first module.
//! The loader switches to long mode (`boot`), maps RAM for the kernel (`paging`),
//! describes the machine in a device tree (`devtree`), loads the application
//! above everything QEMU placed, and jumps to the kernel's entry with a
//! `RawBootInfo`, as Hermit's own loader does.
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod console;
mod devtree;
mod heap;
mod multiboot;
mod paging;

use core::fmt;
use core::mem::MaybeUninit;
use core::num::{NonZeroU16, NonZeroU64};

use hermit_entry::boot_info::{BootInfo, HardwareInfo, PlatformInfo, RawBootInfo};
use hermit_entry::elf::KernelObject;
use pvbench_wire::{cmdline, exit};

use crate::console::println;
use crate::multiboot::Info;

const MIB2: u64 = 2 << 20;
/// Hermit 0.11's `KERNEL_STACK_SIZE`: its `_start` takes RSP as the stack's base.
const KERNEL_STACK_SIZE: usize = 0x8000;
const COM1: u16 = 0x3f8;

#[repr(C, align(4096))]
struct Stack([u8; KERNEL_STACK_SIZE]);

/// The boot CPU's first kernel stack. It stays the idle task's stack, so it lives
/// in the loader's .bss, below the application, where the kernel never allocates.
static mut KERNEL_STACK: Stack = Stack([0; KERNEL_STACK_SIZE]);
static mut RAW_BOOT_INFO: MaybeUninit<RawBootInfo> = MaybeUninit::uninit();

unsafe extern "C" {
    static loader_end: u8;
}

enum LoadError {
    NotMultiboot(u32),
    NoApplication,
    BadApplication(hermit_entry::elf::ParseKernelError),
    NoRoom { start: u64, size: u64, ram_end: u64 },
    DeviceTree(vm_fdt::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMultiboot(magic) => {
                write!(f, "not started by a multiboot loader (EAX = {magic:#x})")
            }
            Self::NoApplication => write!(f, "no application: pass its ELF with QEMU's -initrd"),
            Self::BadApplication(err) => write!(f, "the -initrd file is not a Hermit application: {err}"),
            Self::NoRoom { start, size, ram_end } => write!(
                f,
                "the application needs {size:#x} bytes at {start:#x}, but RAM ends at {ram_end:#x}: give the guest more memory (-m)"
            ),
            Self::DeviceTree(err) => write!(f, "cannot build the device tree: {err:?}"),
        }
    }
}

/// Where control goes once everything is in place.
struct Handoff {
    entry: u64,
    boot_info: *const RawBootInfo,
    stack: *mut Stack,
}

#[unsafe(no_mangle)]
extern "C" fn loader_main(magic: u32, info_addr: u32) -> ! {
    console::init_logging();
    match run(magic, info_addr) {
        Ok(handoff) => jump(handoff),
        Err(err) => {
            println!("error: {err}");
            console::exit(exit::LOADER_FAILED)
        }
    }
}

fn run(magic: u32, info_addr: u32) -> Result<Handoff, LoadError> {
    if magic != multiboot::BOOTLOADER_MAGIC {
        return Err(LoadError::NotMultiboot(magic));
    }
    // SAFETY: QEMU passed this address with the multiboot magic; the boot tables
    // identity-map the first 4 GiB, where QEMU puts everything.
    let info = unsafe { Info::new(info_addr) };
    let command_line = info.command_line();

    if let Some(log2) = command_line.and_then(|line| cmdline::find(line, cmdline::PROBE)) {
        probe(log2.parse().unwrap_or(24));
    }

    // Before `paging::install`: the BIOS areas are only mapped by the boot tables.
    let rsdp = devtree::find_rsdp();
    let ram = || info.available_memory().filter(|r| r.start < paging::LIMIT);
    // SAFETY: once, on the boot CPU; all RAM the loader uses is in `ram`.
    unsafe { paging::install(ram()) };

    let ram_end = ram().map(|r| r.end.min(paging::LIMIT)).max().unwrap_or(0);
    let module = *info.modules().first().ok_or(LoadError::NoApplication)?;
    // SAFETY: QEMU loaded the module at start..end, identity-mapped RAM.
    let elf = unsafe {
        core::slice::from_raw_parts(
            module.start as usize as *const u8,
            (module.end - module.start) as usize,
        )
    };
    let object = KernelObject::parse(elf).map_err(LoadError::BadApplication)?;

    // A linker-provided symbol: only its address is taken.
    let image_end = &raw const loader_end as u64;
    let free = info.end_of_boot_data().max(image_end).next_multiple_of(MIB2);
    let start = object.start_addr().unwrap_or(free);
    let size = object.mem_size() as u64;
    if start < free || start + size > ram_end {
        return Err(LoadError::NoRoom { start, size, ram_end });
    }
    // SAFETY: start..start+size is free, identity-mapped RAM above all boot data.
    let memory = unsafe { core::slice::from_raw_parts_mut(start as *mut MaybeUninit<u8>, size as usize) };
    let loaded = object.load_kernel(memory, start);

    let fdt = devtree::build(ram(), rsdp, command_line).map_err(LoadError::DeviceTree)?;
    let fdt = fdt.leak();

    let boot_info = BootInfo {
        hardware_info: HardwareInfo {
            phys_addr_range: 0..ram_end,
            serial_port_base: NonZeroU16::new(COM1),
            device_tree: NonZeroU64::new(fdt.as_ptr() as u64),
        },
        load_info: loaded.load_info,
        platform_info: PlatformInfo::Multiboot {
            command_line,
            multiboot_info_addr: NonZeroU64::new(info.addr()).expect("EBX is nonzero"),
        },
    };
    // SAFETY: written once here, before the kernel (the only reader) starts.
    let boot_info = unsafe {
        let slot = &mut *(&raw mut RAW_BOOT_INFO);
        slot.write(RawBootInfo::from(boot_info)) as *const RawBootInfo
    };
    Ok(Handoff {
        entry: loaded.entry_point,
        boot_info,
        stack: &raw mut KERNEL_STACK,
    })
}

/// Spins `2^log2` iterations, then exits: the host times this to tell whether an
/// accelerator runs ring-0 guest code at native speed.
fn probe(log2: u32) -> ! {
    let iterations: u64 = 1 << log2.min(40);
    // SAFETY: a register-only loop.
    unsafe {
        core::arch::asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) iterations => _, options(nomem, nostack));
    }
    console::exit(exit::PROBE_DONE)
}

fn jump(handoff: Handoff) -> ! {
    // SAFETY: the kernel's `_start(boot_info: &RawBootInfo, cpu_id: u32)` expects RSP
    // at the *base* of a KERNEL_STACK_SIZE stack (it adds the size itself), the boot
    // info in RDI and CPU 0 in ESI. Everything it needs stays mapped and is never
    // reused.
    unsafe {
        core::arch::asm!(
            "mov rsp, {stack}",
            "xor ebp, ebp",
            "jmp {entry}",
            stack = in(reg) handoff.stack,
            entry = in(reg) handoff.entry,
            in("rdi") handoff.boot_info,
            in("esi") 0u32,
            options(noreturn)
        )
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {info}");
    console::exit(exit::LOADER_FAILED)
}
