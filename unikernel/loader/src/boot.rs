//! Multiboot header and the 32-bit entry that switches to long mode.
//!
//! QEMU enters `_start32` in 32-bit protected mode without paging, with the
//! multiboot magic in EAX and the physical address of the multiboot information in
//! EBX. Long mode needs paging, so this stub identity-maps the first 4 GiB with
//! 2 MiB pages (enough to reach every multiboot structure QEMU places), enables PAE,
//! EFER.LME and paging, loads a 64-bit GDT and calls `loader_main` on the loader
//! stack. `install_tables` (main.rs) replaces these tables with the final ones
//! the kernel inherits.

use core::arch::global_asm;

/// Multiboot v1 header flags: page-align modules (bit 0), provide memory info (bit 1).
const MULTIBOOT_FLAGS: u32 = 0b11;
const MULTIBOOT_HEADER_MAGIC: u32 = 0x1BAD_B002;

global_asm!(
    r#"
    .section .multiboot, "a"
    .p2align 2
    .long {magic}
    .long {flags}
    .long {checksum}

    .section .data.boot, "aw"
    .p2align 2
mb_magic: .long 0
mb_info:  .long 0

    .section .rodata.boot, "a"
    .p2align 4
gdt64:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code, present, ring 0 */
    .quad 0x00CF92000000FFFF    /* 0x10: data, present, ring 0 */
gdt64_ptr:
    .word gdt64_ptr - gdt64 - 1
    .quad gdt64

    .section .bss.boot, "aw", @nobits
    .p2align 12
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096 * 4
boot_stack: .skip 65536
boot_stack_top:

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    /* Keep the multiboot registers in .data before .bss is cleared. */
    movl %eax, mb_magic
    movl %ebx, mb_info

    /* QEMU zero-fills .bss today, but multiboot does not promise it. */
    movl $bss_start, %edi
    movl $bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    movl $boot_stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[0..4] -> 4 PDs; 2048 PD entries of 2 MiB = 4 GiB. */
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $12, %eax
    addl $boot_pd, %eax
    orl $3, %eax
    movl %eax, boot_pdpt(,%ecx,8)
    incl %ecx
    cmpl $4, %ecx
    jne 1b
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax             /* present, writable, 2 MiB page */
    movl %eax, boot_pd(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jne 2b

    movl %cr4, %eax
    orl $(1 << 5), %eax         /* PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx      /* EFER */
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax   /* LME, NXE (the kernel maps no-execute pages) */
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16) | 1), %eax  /* PG, WP, PE */
    movl %eax, %cr0

    lgdt gdt64_ptr
    ljmp $0x08, $long_mode

    .code64
long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    /* 32-bit loads zero-extend: the upper halves are undefined after the switch. */
    movl mb_magic(%rip), %edi
    movl mb_info(%rip), %esi
    leaq boot_stack_top(%rip), %rsp
    call loader_main
3:  hlt
    jmp 3b
"#,
    magic = const MULTIBOOT_HEADER_MAGIC,
    flags = const MULTIBOOT_FLAGS,
    checksum = const 0u32.wrapping_sub(MULTIBOOT_HEADER_MAGIC).wrapping_sub(MULTIBOOT_FLAGS),
    options(att_syntax)
);
