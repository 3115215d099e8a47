//! pvbench's multiboot (v1) loader for Hermit applications.
//!
//! `qemu-system-x86_64 -kernel <this, as elf32-i386> -initrd <app> -append <args>`:
//! QEMU loads this loader at 1 MiB and the application ELF as the first module.
//! The loader switches to long mode (`boot`), maps RAM for the kernel, describes
//! the machine in a device tree, loads the application above everything QEMU
//! placed, and jumps to the kernel's entry with a `RawBootInfo`, as Hermit's own
//! loader does.
//!
//! What can be decided from values (parsing the multiboot information, the memory
//! map, the page tables' contents, the device tree, where the application goes)
//! is `pvbench_loader_core`, tested on the host; this binary does what only the
//! guest can: read memory in place (`phys`), load CR3, write the application and
//! jump to it.
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod console;
mod heap;
mod phys;

use core::fmt;
use core::mem::MaybeUninit;
use core::num::{NonZeroU16, NonZeroU64};

use hermit_entry::boot_info::{BootInfo, HardwareInfo, PlatformInfo, RawBootInfo};
use hermit_entry::elf::KernelObject;
use pvbench_loader_core::memmap::{self, Region};
use pvbench_loader_core::paging::{self, Tables};
use pvbench_loader_core::place::{self, NoRoom};
use pvbench_loader_core::{devtree, multiboot};
use pvbench_wire::{cmdline, exit};
use x86_64::registers::control::{Cr3, Cr3Flags};

use crate::console::println;
use crate::phys::BootMapped;

/// Hermit 0.11's `KERNEL_STACK_SIZE`: its `_start` takes RSP as the stack's base.
const KERNEL_STACK_SIZE: usize = 0x8000;
const COM1: u16 = 0x3f8;

#[repr(C, align(4096))]
struct Stack([u8; KERNEL_STACK_SIZE]);

/// The boot CPU's first kernel stack. It stays the idle task's stack, so it lives
/// in the loader's .bss, below the application, where the kernel never allocates.
static mut KERNEL_STACK: Stack = Stack([0; KERNEL_STACK_SIZE]);
static mut RAW_BOOT_INFO: MaybeUninit<RawBootInfo> = MaybeUninit::uninit();
/// The page tables the kernel inherits (in .bss, below the application).
static mut TABLES: Tables = Tables::new();

unsafe extern "C" {
    static loader_end: u8;
}

enum LoadError {
    NotMultiboot(u32),
    Multiboot(multiboot::Error),
    NoApplication,
    ApplicationOutsideRam(multiboot::Module),
    BadApplication(hermit_entry::elf::ParseKernelError),
    NoRoom(NoRoom),
    DeviceTree(devtree::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMultiboot(magic) => {
                write!(f, "not started by a multiboot loader (EAX = {magic:#x})")
            }
            Self::Multiboot(err) => write!(f, "{err}"),
            Self::NoApplication => write!(f, "no application: pass its ELF with QEMU's -initrd"),
            Self::ApplicationOutsideRam(module) => write!(
                f,
                "the -initrd file at {:#x}..{:#x} is not in usable RAM",
                module.start, module.end
            ),
            Self::BadApplication(err) => write!(f, "the -initrd file is not a Hermit application: {err}"),
            Self::NoRoom(err) => write!(f, "{err}"),
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
    // SAFETY: the boot tables are installed, and every read through `memory`
    // happens before `install_tables` below.
    let memory = unsafe { BootMapped::new() };
    let info = multiboot::parse(u64::from(info_addr), &memory).map_err(LoadError::Multiboot)?;
    let command_line = info.command_line;

    if let Some(log2) = command_line.and_then(|line| cmdline::find(line, cmdline::PROBE)) {
        probe(log2.parse().unwrap_or(24));
    }

    // Before `install_tables`: the BIOS areas are only mapped by the boot tables.
    let rsdp = devtree::find_rsdp(&memory);
    let ram = memmap::clip(&info.ram, paging::LIMIT);
    let module = *info.modules.first().ok_or(LoadError::NoApplication)?;
    // In RAM, the final tables map the ELF too, where `load_kernel` reads it.
    if !memmap::covers(&ram, module.start, module.end) {
        return Err(LoadError::ApplicationOutsideRam(module));
    }
    let elf = module.bytes(&memory).map_err(LoadError::Multiboot)?;
    // SAFETY: once, on the boot CPU; all RAM the loader still uses is in `ram`.
    unsafe { install_tables(&ram) };

    let object = KernelObject::parse(elf).map_err(LoadError::BadApplication)?;
    // A linker-provided symbol: only its address is taken.
    let image_end = &raw const loader_end as u64;
    let occupied_end = info.end_of_boot_data.max(image_end);
    let size = object.mem_size() as u64;
    let start =
        place::application_start(&ram, occupied_end, object.start_addr(), size).map_err(LoadError::NoRoom)?;
    // SAFETY: start..start+size is free RAM above all boot data (checked by
    // `application_start`), identity-mapped by the tables just installed.
    let target = unsafe { core::slice::from_raw_parts_mut(start as *mut MaybeUninit<u8>, size as usize) };
    let loaded = object.load_kernel(target, start);

    let fdt = devtree::build(&ram, rsdp, command_line).map_err(LoadError::DeviceTree)?;
    let fdt = fdt.leak();

    let boot_info = BootInfo {
        hardware_info: HardwareInfo {
            phys_addr_range: 0..memmap::end(&ram),
            serial_port_base: NonZeroU16::new(COM1),
            device_tree: NonZeroU64::new(fdt.as_ptr() as u64),
        },
        load_info: loaded.load_info,
        platform_info: PlatformInfo::Multiboot {
            command_line,
            multiboot_info_addr: info.addr,
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

/// Fills the final page tables for `ram` and switches to them.
///
/// # Safety
/// Must run once, on the boot CPU, while the boot tables map the loader; `ram` must
/// include every byte the loader still uses above 2 MiB.
unsafe fn install_tables(ram: &[Region]) {
    // SAFETY: single-threaded early boot; nothing else references TABLES.
    let tables = unsafe { &mut *(&raw mut TABLES) };
    let pml4 = tables.identity_map(ram);
    // SAFETY: the new tables map the loader (first 2 MiB) and all RAM it uses.
    unsafe { Cr3::write(pml4, Cr3Flags::empty()) };
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
