"""The generated C, cross-compiled and run under qemu, with instructions per beat counted.

Four platforms stand in for the targets' cores: aarch64 Linux (Raspberry Pi, under qemu-user),
a Cortex-M4 (``qemu-system-arm -M mps2-an386``) and rv32imc (ESP32-C3's ISA, ``qemu-system-riscv32
-M virt``), both bare metal with picolibc and semihosting file I/O, and the Xtensa lx106
(``qemu-system-xtensa -M sim -cpu lx106``: the ESP8266's core, the base ISA of the ESP32's LX6 and
the ESP32-S3's LX7, without their MAC16 and 32-bit high multiply), bare metal with its own start-up,
linker script and exit path (``csrc/bench_xtensa.c``, ``csrc/xtensa_lx106.ld``) and QEMU's Xtensa
semihosting. No compiler for the LX6 or LX7 themselves can be had here, so every row of an ESP32
target is a proxy and is labelled so.

Instructions per beat are counted by a small QEMU plugin (``csrc/icount_plugin.c``): the program
runs once classifying every beat and once doing the same I/O without classifying; the difference
divided by the number of beats is what one ``classify`` call executes. It is deterministic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from firmware_export.cmodel import read_outputs

CSRC = resources.files("edgeecg.bench").joinpath("csrc")
HARNESS_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
_BARE_METAL = ("--specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost")
_SEMIHOST = ("-display", "none", "-serial", "none", "-monitor", "none", "-semihosting-config")


@dataclass(frozen=True)
class Platform:
    """One cross-compiled C row: how to build the harness and how to run it under qemu."""

    name: str
    isa: str                  # as the targets' TOML spell it: a row whose isa differs is a proxy
    description: str
    cc: str
    flags: tuple[str, ...]
    emulator: tuple[str, ...]
    bare_metal: bool
    kind: str = ""            # "xtensa": the lx106 harness and loader below; "": bench_main.c

    @property
    def size_tool(self) -> str:
        return self.cc.removesuffix("gcc") + "size"

    def missing(self) -> str | None:
        """Why this platform cannot run here, or None."""
        for tool in (self.cc, self.emulator[0], self.size_tool):
            if shutil.which(tool) is None:
                return f"{tool} not found"
        if self.kind == "xtensa":
            return None if Path(XTENSA_SPECS).is_file() else f"{XTENSA_SPECS} (picolibc-xtensa-lx106-elf) not found"
        if self.bare_metal:
            probe = subprocess.run([self.cc, "-print-file-name=picolibc.specs"], capture_output=True, text=True)
            if probe.returncode != 0 or probe.stdout.strip() == "picolibc.specs":
                return f"picolibc for {self.cc} not found"
        return None

    def command(self, elf: Path, args: list[str], plugin: Path, count_file: Path) -> list[str]:
        plug = ["-plugin", f"{plugin},out={count_file}"]
        if self.kind == "xtensa":        # the ELF's own entry point; file names are built in
            return [*self.emulator, *_SEMIHOST, "enable=on,target=native", *plug,
                    "-device", f"loader,file={elf},cpu-num=0"]
        if not self.bare_metal:
            return [*self.emulator, *plug, str(elf), *args]
        semihosting = ",".join(["enable=on", "target=native", *(f"arg={a}" for a in args)])
        return [*self.emulator, *_SEMIHOST, semihosting, *plug, "-kernel", str(elf)]


def _memory(flash: int, ram: int) -> tuple[str, ...]:
    return (f"-Wl,--defsym=__flash={flash:#x}", "-Wl,--defsym=__flash_size=0x200000",
            f"-Wl,--defsym=__ram={ram:#x}", "-Wl,--defsym=__ram_size=0x200000",
            "-Wl,--defsym=__stack_size=0x4000")


XTENSA_SPECS = "/usr/lib/xtensa-lx106-elf/picolibc.specs"     # Debian's picolibc-xtensa-lx106-elf

PLATFORMS = (
    Platform("c_aarch64", "aarch64", "aarch64 Linux, static, qemu-user", "aarch64-linux-gnu-gcc", ("-static",),
             ("qemu-aarch64",), bare_metal=False),
    Platform("c_cortex_m4", "armv7e-m", "Cortex-M4 bare metal, qemu mps2-an386", "arm-none-eabi-gcc",
             ("-mcpu=cortex-m4", "-mthumb", *_BARE_METAL, *_memory(0x0, 0x20000000)),
             ("qemu-system-arm", "-M", "mps2-an386"), bare_metal=True),
    Platform("c_rv32imc", "rv32imc", "RISC-V rv32imc bare metal (ESP32-C3's ISA), qemu virt", "riscv64-unknown-elf-gcc",
             ("-march=rv32imc", "-mabi=ilp32", *_BARE_METAL, *_memory(0x80000000, 0x80200000)),
             ("qemu-system-riscv32", "-M", "virt", "-bios", "none"), bare_metal=True),
    Platform("c_xtensa_lx106", "xtensa-lx106", "Xtensa lx106 bare metal (the ESP32's base ISA), qemu sim",
             "xtensa-lx106-elf-gcc", (f"--specs={XTENSA_SPECS}", "-nostartfiles", "-mtext-section-literals",
                                      f"-T{CSRC.joinpath('xtensa_lx106.ld')}"),
             ("qemu-system-xtensa", "-M", "sim", "-cpu", "lx106"), bare_metal=True, kind="xtensa"),
)


def write_harness(directory: Path, prefix: str, name: str = "bench_main.c") -> Path:
    """``name`` (a harness in ``csrc/``) for the library ``PREFIX_model.h`` (already saved in ``directory``)."""
    text = Template(CSRC.joinpath(name).read_text()).substitute(p=prefix, P=prefix.upper())
    path = Path(directory) / name
    path.write_text(text)
    return path


def build_plugin(directory: Path, cc: str = "cc") -> Path:
    """The instruction-counting qemu plugin, built with the host compiler."""
    out = Path(directory) / "icount.so"
    src = CSRC.joinpath("icount_plugin.c")
    _run([cc, "-shared", "-fPIC", *HARNESS_FLAGS, "-o", str(out), str(src)], "building the qemu plugin")
    return out


class DoesNotFit(RuntimeError):
    """The model and the bench harness do not fit a platform's memory map (its linker said so)."""


FIT_ERROR = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float | None = None):
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{res.stderr.strip()[-2000:]}")
    return res


def object_sizes(cc: str, size_tool: str, flags: tuple[str, ...], source: Path) -> tuple[int, int, int]:
    """text, data and bss bytes of ``source`` compiled alone (``-O2``): what it adds to a firmware."""
    obj = Path(source).with_suffix(".o")
    _run([cc, *HARNESS_FLAGS, *flags, "-c", "-o", str(obj), str(source)], f"compiling {Path(source).name}")
    text, data, bss = _run([size_tool, str(obj)], "size").stdout.splitlines()[1].split()[:3]
    return int(text), int(data), int(bss)


@dataclass
class CrossResult:
    logits: np.ndarray
    classes: np.ndarray
    instructions_per_beat: float
    flash_bytes: int          # text + data of the model object (weights, code)
    static_ram_bytes: int     # data + bss of the model object (activation buffers)


def run_platform(platform: Platform, c_model, records: bytes, n: int, plugin: Path,
                 timeout: float = 1800) -> CrossResult:
    """Build the harness and the library for ``platform``, run ``records`` (n beats) under qemu."""
    with tempfile.TemporaryDirectory(prefix=f"edgeecg-{platform.name}-") as tmp:
        d = Path(tmp)
        c_model.save(d)
        lib = d / f"{c_model.prefix}_model.c"
        xtensa = platform.kind == "xtensa"
        harness = write_harness(d, c_model.prefix, "bench_xtensa.c" if xtensa else "bench_main.c")
        text, data, bss = object_sizes(platform.cc, platform.size_tool, platform.flags, lib)
        # one program does both runs (its skip argument); the Xtensa harness has no command line,
        # so a second build, -DBENCH_SKIP, does the skip run
        builds = {"run": (), "skip": ("-DBENCH_SKIP",)} if xtensa else {"run": ()}
        elfs = {mode: d / f"bench_{mode}.elf" for mode in builds}
        for mode, defines in builds.items():
            try:
                _run([platform.cc, *HARNESS_FLAGS, *platform.flags, *defines, "-o", str(elfs[mode]), str(harness),
                      str(lib)], f"linking the bench harness for {platform.name}")
            except RuntimeError as err:
                over = FIT_ERROR.search(str(err))
                if over is None:
                    raise
                raise DoesNotFit(f"the model and the bench harness overflow {platform.name}'s {over[1]} region "
                                 f"by {int(over[2]):,d} B") from None
        (d / "beats.bin").write_bytes(records)
        counts = {}
        for mode in ("run", "skip"):
            args = ["beats.bin", f"logits_{mode}.bin"] + (["skip"] if mode == "skip" else [])
            count_file = d / f"icount_{mode}.txt"
            _run(platform.command(elfs.get(mode, elfs["run"]), args, plugin, count_file),
                 f"running {platform.name} under qemu",
                 cwd=d, timeout=timeout)
            counts[mode] = int(count_file.read_text())
        logits, classes = read_outputs((d / "logits_run.bin").read_bytes())
    if len(logits) != n:
        raise RuntimeError(f"{platform.name}: {len(logits)} outputs for {n} beats")
    return CrossResult(logits=logits, classes=classes, instructions_per_beat=(counts["run"] - counts["skip"]) / max(n, 1),
                       flash_bytes=text + data, static_ram_bytes=data + bss)
