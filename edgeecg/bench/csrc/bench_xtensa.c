/* edgeecg bench harness for the Xtensa lx106 under qemu-system-xtensa (-M sim -cpu lx106), bare
 * metal: its own start-up (below), linker script (xtensa_lx106.ld) and exit path, and file I/O
 * through QEMU's Xtensa semihosting (the SIMCALL instruction, ISS calling convention: a2 = call
 * number, a3..a5 = arguments, result in a2).
 *
 * Like bench_main.c it classifies every record of beats.bin (int8 beat, then int8 RR features) and
 * writes the int8 logits of each, then its class (one byte). Built twice: OUT_NAME
 * "logits_run.bin", and with -DBENCH_SKIP "logits_skip.bin" doing the same reads and writes
 * without classifying, the instruction baseline that is subtracted to get instructions per beat. */
#include <stdint.h>
#include <string.h>
#include "${p}_model.h"

#ifdef BENCH_SKIP
#define OUT_NAME "logits_skip.bin"
#else
#define OUT_NAME "logits_run.bin"
#endif
#define RR_BUF (${P}_RR_LEN > 0 ? ${P}_RR_LEN : 1)

enum { SYS_EXIT = 1, SYS_READ = 3, SYS_WRITE = 4, SYS_OPEN = 5, SYS_CLOSE = 6 };
enum { HOST_O_RDONLY = 0, HOST_O_WRONLY_CREAT_TRUNC = 0x1 | 0x40 | 0x200 };   /* QEMU passes them to open(2) */

static int32_t simcall(int32_t nr, int32_t a, int32_t b, int32_t c)
{
    register int32_t a2 __asm__("a2") = nr;
    register int32_t a3 __asm__("a3") = a;
    register int32_t a4 __asm__("a4") = b;
    register int32_t a5 __asm__("a5") = c;
    __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
    return a2;
}

static void stop(int32_t status)
{
    simcall(SYS_EXIT, status, 0, 0);
    for (;;) {
    }
}

static int32_t read_all(int32_t fd, void *buf, int32_t n)
{
    int32_t got = 0;
    while (got < n) {
        const int32_t r = simcall(SYS_READ, fd, (int32_t)(uintptr_t)((char *)buf + got), n - got);
        if (r <= 0) {
            break;
        }
        got += r;
    }
    return got;
}

/* Debian's libgcc for the lx106 has no __muldi3, which GCC calls for every 64-bit product (the
 * requantization's 32 x 32 -> 64 multiply): here from 16-bit partial products, as the core has
 * only MULL (the low word of a 32-bit product; no MULSH/MULUH). */
long long __muldi3(long long a, long long b);
long long __muldi3(long long a, long long b)
{
    const uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    const uint32_t al = (uint32_t)ua, ah = (uint32_t)(ua >> 32), bl = (uint32_t)ub, bh = (uint32_t)(ub >> 32);
    const uint32_t a0 = al & 0xffffu, a1 = al >> 16, b0 = bl & 0xffffu, b1 = bl >> 16;
    const uint32_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint32_t mid = (p00 >> 16) + (p01 & 0xffffu) + (p10 & 0xffffu);
    const uint32_t lo = (p00 & 0xffffu) | (mid << 16);
    const uint32_t hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16) + al * bh + ah * bl;
    return (long long)(((uint64_t)hi << 32) | lo);
}

extern char __bss_start[], __bss_end[];
void bench_entry(void);

/* Reset: a stack (the call0 ABI's a1), then C. */
__asm__(".section .text.start, \"ax\"\n"
        ".global _start\n"
        ".align 4\n"
        "_start:\n"
        "    movi a1, __stack\n"
        "    call0 bench_entry\n"
        "1:  j 1b\n"
        ".previous\n");

void bench_entry(void)
{
    static int8_t beat[${P}_BEAT_LEN], rr[RR_BUF], logits[${P}_N_CLASSES];
    int32_t in, out;
    memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
    in = simcall(SYS_OPEN, (int32_t)(uintptr_t)"beats.bin", HOST_O_RDONLY, 0);
    out = simcall(SYS_OPEN, (int32_t)(uintptr_t)OUT_NAME, HOST_O_WRONLY_CREAT_TRUNC, 0644);
    if (in < 0 || out < 0) {
        stop(2);
    }
    while (read_all(in, beat, (int32_t)sizeof beat) == (int32_t)sizeof beat) {
        int8_t cls = 0;
        if (${P}_RR_LEN > 0 && read_all(in, rr, ${P}_RR_LEN) != ${P}_RR_LEN) {
            stop(3);
        }
        memset(logits, 0, sizeof logits);
#ifndef BENCH_SKIP
        cls = (int8_t)${p}_classify(beat, rr, logits);
#endif
        simcall(SYS_WRITE, out, (int32_t)(uintptr_t)logits, (int32_t)sizeof logits);
        simcall(SYS_WRITE, out, (int32_t)(uintptr_t)&cls, 1);
    }
    simcall(SYS_CLOSE, in, 0, 0);
    simcall(SYS_CLOSE, out, 0, 0);
    stop(0);
}
