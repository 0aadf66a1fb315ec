/*
 * Multiboot v1 boot stub of the example kernel.  The header sits in its own section, which
 * kernel.ld puts first, so a multiboot loader (qemu -kernel, GRUB) finds it in the first 8 KiB.
 * Flags: page-align modules (bit 0) and give us the memory map (bit 1); no a.out kludge: the
 * loader reads our ELF program headers.  The loader enters in 32-bit protected mode with
 * paging off, EAX = the multiboot magic, EBX = the physical address of the multiboot info.
 * We clear .bss (the stack lives there, so before using it), set the stack and call
 * kmain(magic, info); kmain never returns, but if it did we halt.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .bss
	.balign 16
boot_stack:
	.skip 32768
boot_stack_top:

	.text
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movl %eax, %ebp            /* keep the magic; EBX (the info) survives rep stosb */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl $boot_stack_top, %esp
	pushl %ebx                 /* info */
	pushl %ebp                 /* magic */
	call kmain
1:	cli
	hlt
	jmp 1b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
