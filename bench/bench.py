#!/usr/bin/env python3
"""kerblam's benchmark harness: ratios against baselines measured in the same run.

Usage:
    cargo build --release --workspace
    python3 bench/bench.py [--data-mb 512] [--data-files 64] [--code-files 5000] [--runs 3]
                           [--kerblam target/release/kerblam] [--kerblam1 DIR/bin/kerblam]
                           [--engine podman] [--scaling] [--work DIR] [--only CASE,...]

Cases (--only): size, data, v1, package, engine, replay, plan, memory, freeze; --scaling adds plan and
package times at 1k/10k/100k files and 64 MB/512 MB/4 GB of data.

It generates each fixture deterministically (a Kerblam! project with N MB of text-like input data in
M files, K small code files, a make pipe and a recipe; a synthetic EESSI tree for freezes), runs each
measured command and its baseline `--runs` times in the same run, and prints the median wall time,
the ratio to the baseline and the peak memory (max RSS of the largest process of the command's
tree, from wait4).

Timings are never asserted: these machines are shared and noisy, so only ratios measured in the
same run mean anything. `--kerblam1` adds Kerblam! 1.2.1 as a baseline
(`cargo install kerblam --version 1.2.1 --root DIR`); with `--engine podman` (or docker) both
package through that engine, from the local base image `kerblam-test-base` (scripts/engines.sh).
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORDS = (
    "gene sample count value alpha beta gamma delta control treated replicate batch "
    "chr1 chr2 chrX read depth quality pass fail 0.5 12 1337 42 3.14159 NA"
).split()


def text_file(path: Path, size: int, rng: random.Random, pool):
    """Write `size` bytes of text-like lines (compresses like real tables)."""
    with open(path, "w") as f:
        written, chunk = 0, []
        while written < size:
            line = pool[rng.randrange(len(pool))]
            chunk.append(line)
            written += len(line)
            if len(chunk) >= 4096:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))


def line_pool(rng):
    return [",".join(rng.choice(WORDS) for _ in range(8)) + "\n" for _ in range(4096)]


def gen_fixture(root: Path, data_mb: int, data_files: int, code_files: int, backend=None, seed: int = 1) -> Path:
    """A Kerblam! project; identical bytes for identical parameters."""
    proj = root / f"fixture-{data_mb}mb-{data_files}f-{code_files}c{'-' + backend if backend else ''}"
    stamp = proj / ".complete"
    if stamp.exists():
        return proj
    if proj.exists():
        shutil.rmtree(proj)
    rng = random.Random(seed)
    for d in ("data/in", "src/workflows", "src/dockerfiles", "src/code"):
        (proj / d).mkdir(parents=True)
    manifest = '[meta]\nversion = "1.0.0"\n'
    if backend:
        manifest += f'\n[execution]\nbackend = "{backend}"\n'
    (proj / "kerblam.toml").write_text(manifest)
    (proj / "src/workflows/process.makefile").write_text(
        "#? Count the lines of the inputs\n"
        "data/out/count.txt:\n\tmkdir -p data/out\n\tcat data/in/*.csv | wc -l > $@\n"
    )
    (proj / "src/dockerfiles/process.dockerfile").write_text("FROM kerblam-test-base:latest\nCOPY . .\n")
    pool = line_pool(rng)
    per_file = data_mb * 1024 * 1024 // max(data_files, 1)
    for i in range(data_files):
        text_file(proj / f"data/in/table_{i:04}.csv", per_file, rng, pool)
    for i in range(code_files):
        d = proj / "src/code" / f"m{i // 500:03}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:06}.py").write_text(f"# module {i}\nVALUE = {rng.randrange(10**6)}\n")
    stamp.write_text("ok\n")
    return proj


def gen_eessi(root: Path, mb: int, seed: int = 2):
    """A synthetic EESSI tree (compat layer, init, one CPU-specific module with `mb` MB of files) and
    the environment of a shell that loaded it. Returns (prefix, env)."""
    base = root / f"eessi-{mb}mb"
    prefix = base / "cvmfs/pilot.eessi-hpc.org/versions/2021.12"
    sub = "x86_64/intel/haswell"
    app = prefix / f"software/linux/{sub}/software/BenchApp/1.0"
    if not (base / ".complete").exists():
        if base.exists():
            shutil.rmtree(base)
        rng = random.Random(seed)
        pool = line_pool(rng)
        compat = prefix / "compat/linux/x86_64"
        for d in ("bin", "lib", "var/cache", "etc"):
            (compat / d).mkdir(parents=True)
        (compat / "bin/sh-tool").write_text("#!/bin/sh\necho compat\n")
        (compat / "var/cache/skip.bin").write_text("x" * 4096)
        for i in range(200):
            text_file(compat / f"lib/lib{i:03}.txt", mb * 1024 * 1024 // 4 // 200, rng, pool)
        (prefix / "init").mkdir(parents=True)
        (prefix / "init/bash").write_text("# EESSI init\nexport EESSI_INITIALIZED=1\n")
        (prefix / "init/lmodrc.lua").write_text("propT = {}\n")
        for d in ("bin", "lib", "share"):
            (app / d).mkdir(parents=True)
        (app / "bin/benchapp").write_text("#!/bin/sh\necho benchapp\n")
        os.chmod(app / "bin/benchapp", 0o755)
        for i in range(400):
            text_file(app / f"share/data{i:03}.txt", mb * 1024 * 1024 * 3 // 4 // 400, rng, pool)
        mods = prefix / f"software/linux/{sub}/modules/all/BenchApp"
        mods.mkdir(parents=True)
        (mods / "1.0.lua").write_text(f'prepend_path("PATH", "{app}/bin")\n')
        (base / ".complete").write_text("ok\n")
    p = str(prefix)
    env = dict(os.environ)
    env.update({
        "EESSI_PREFIX": p,
        "EESSI_OS_TYPE": "linux",
        "EESSI_CPU_FAMILY": "x86_64",
        "EESSI_SOFTWARE_SUBDIR": sub,
        "EESSI_MODULEPATH": f"{p}/software/linux/{sub}/modules/all",
        "MODULEPATH": f"{p}/software/linux/{sub}/modules/all",
        "LMOD_RC": f"{p}/init/lmodrc.lua",
        "LOADEDMODULES": "BenchApp/1.0",
        "EBROOTBENCHAPP": str(app),
    })
    return prefix, env


def run_once(cmd, cwd, env=None):
    """Run a shell command; return (seconds, max RSS in MiB of the biggest process)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while True:
        try:
            pid, status, ru = os.wait4(-1, 0)
        except ChildProcessError:
            break
        peak = max(peak, ru.ru_maxrss)
        if pid == p.pid:
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                raise SystemExit(f"command failed ({code}): {cmd}")
            break
    return time.perf_counter() - t0, peak / 1024.0


def measure(name, cmd, cwd, runs, setup=None, env=None):
    times, rss = [], []
    for _ in range(runs):
        if setup:
            setup()
        t, m = run_once(cmd, cwd, env=env)
        times.append(t)
        rss.append(m)
    return {"name": name, "median": statistics.median(times), "rss": max(rss), "cmd": cmd}


def size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def report(row, baseline=None, note=""):
    ratio = ""
    if baseline:
        ratio = f"{row['median'] / baseline['median']:6.2f}x the time of {baseline['name']}"
    print(f"  {row['name']:<52} {row['median']:8.2f} s  {row['rss']:8.1f} MiB  {ratio} {note}")
    sys.stdout.flush()


def rm(*paths):
    def go():
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    return go


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-mb", type=int, default=512)
    ap.add_argument("--data-files", type=int, default=64)
    ap.add_argument("--code-files", type=int, default=5000)
    ap.add_argument("--plan-files", type=int, default=100000)
    ap.add_argument("--freeze-mb", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kerblam", default="target/release/kerblam")
    ap.add_argument("--kerblam1", default=None, help="a Kerblam! 1.2.1 executable, as a baseline")
    ap.add_argument("--engine", default=None, help="docker or podman: also package through it")
    ap.add_argument("--work", default=os.environ.get("TMPDIR", "/tmp") + "/kerblam-bench")
    ap.add_argument("--scaling", action="store_true", help="also print plan/package times at several sizes")
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--built", default=None, help="the build directory of --kerblam's install, for the size case")
    a = ap.parse_args()
    kerblam = str(Path(a.kerblam).resolve())
    plugins = str(Path(kerblam).parent)
    k = f"{kerblam} -q --backend-path {plugins}"
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    only = set(filter(None, a.only.split(",")))
    want = lambda n: not only or n in only
    out = work / "out"
    out.mkdir(exist_ok=True)

    proj = gen_fixture(work, a.data_mb, a.data_files, a.code_files)
    print(f"fixture: {a.data_mb} MB in {a.data_files} files, {a.code_files} code files; "
          f"{os.cpu_count()} cores; {a.runs} runs each; medians; {time.strftime('%Y-%m-%d')}")
    tar_zst = out / "base.tar.zst"
    kar = out / "k.kerblam.tar"
    clean_pkg = rm(kar, proj / "process.context.tar")

    if want("size"):
        # What goes into every image and context archive: the kerblam executable (at most 20 MB)
        # and, in an install, each plugin (at most 10 MB), against the same files with their debug
        # info (the build's own, before install.sh strips them), when that build is at hand.
        print("sizes of what kerblam installs (the executable is copied into every image):")
        exe = Path(kerblam)
        libs = Path(kerblam).parent.parent / "lib/kerblam/backends"
        built = Path(a.built) if a.built else None
        for f in [exe] + sorted(libs.glob("*.so")):
            line = f"  {f.name:<52} {f.stat().st_size / 1e6:8.1f} MB"
            if built and (built / f.name).exists():
                full = (built / f.name).stat().st_size
                line += f"  {f.stat().st_size / full:6.2f}x the size of {built / f.name} ({full / 1e6:.1f} MB)"
            debug = f.parent / ".debug" / (f.name + ".debug")
            if debug.exists():
                line += f"; debug info beside it: {debug.stat().st_size / 1e6:.1f} MB"
            print(line)

    if want("data") or want("replay"):
        print("data archive (zstd) vs tar -cf - data/in | zstd -3 -T0:")
        base = measure("tar -cf - data/in | zstd -3 -T0", f"tar -cf - data/in | zstd -3 -T0 -q > {tar_zst}", proj, a.runs)
        report(base)
        pack = str(Path(kerblam).parent / "examples/pack_data")
        if Path(pack).exists():
            row = measure("kerblam data archive alone (pack_data)", f"{pack} {proj} data/in {out}/d.kerblam.tar",
                          proj, a.runs, setup=rm(out / "d.kerblam.tar"))
            report(row, base, f"size {size_of(out / 'd.kerblam.tar') / max(size_of(tar_zst), 1):.3f}x")
        row = measure("kerblam package --backend tarball (all of it)", f"{k} package process --backend tarball -o {kar}",
                      proj, a.runs, setup=clean_pkg)
        report(row, base, f"size {size_of(kar) / max(size_of(tar_zst), 1):.3f}x; writes the context archive too")

    if want("v1"):
        print("kerblam-v1 archive (parallel gzip) vs tar czf:")
        gz = measure("tar czf (gzip, one thread)", f"tar czf {out}/base.tar.gz data/in", proj, a.runs)
        report(gz)
        v1 = out / "v1.kerblam.tar"
        row = measure("kerblam package --format kerblam-v1", f"{k} package process --backend tarball --format kerblam-v1 -o {v1}",
                      proj, a.runs, setup=rm(v1, proj / "process.context.tar"))
        report(row, gz, f"size {size_of(v1) / max(size_of(out / 'base.tar.gz'), 1):.3f}x")

    if want("package") and a.kerblam1:
        print("package end to end vs Kerblam! 1.2.1:")
        eng = a.engine or "podman"
        p1 = gen_fixture(work, a.data_mb, a.data_files, a.code_files, backend=eng)
        k1 = measure(f"Kerblam! 1.2.1 package ({eng})", f"{a.kerblam1} package process --tag bench_k1",
                     p1, 1, setup=rm(p1 / "process.kerblam.tar"))
        report(k1)
        row = measure("kerblam package --backend tarball", f"{k} package process --backend tarball -o {kar}",
                      proj, a.runs, setup=clean_pkg)
        report(row, k1, f"({k1['median'] / row['median']:.1f}x faster)")
        if a.engine:
            row = measure(f"kerblam package --backend {eng}", f"{k} package process --backend {eng} --tag bench_k --force --no-build-cache",
                          p1, a.runs, setup=rm(p1 / "process.kerblam.tar"))
            report(row, k1, f"({k1['median'] / row['median']:.1f}x faster)")
            # The engine's own share: building the recipe from the project without its data, with
            # no kerblam at all. kerblam cannot be faster than this.
            floor = measure(f"{eng} build of the recipe alone (engine floor)",
                            f"tar -cf - --exclude=./data . | {eng} build -q --no-cache -t bench_floor -f src/dockerfiles/process.dockerfile -",
                            p1, a.runs)
            report(floor, k1, f"({k1['median'] / floor['median']:.1f}x faster than 1.2.1: the most any tool can gain here)")
            report(row, floor, "(kerblam over the engine floor)")
            # Warm: the same again with the engine's build cache (the second package of an
            # unchanged project), against the engine's own warm rebuild.
            warm = measure(f"kerblam package --backend {eng}, warm cache", f"{k} package process --backend {eng} --tag bench_k --force",
                           p1, a.runs, setup=rm(p1 / "process.kerblam.tar"))
            report(warm, k1, f"({k1['median'] / warm['median']:.1f}x faster)")
            wfloor = measure(f"{eng} build of the recipe alone, warm cache",
                             f"tar -cf - --exclude=./data . | {eng} build -q -t bench_floor -f src/dockerfiles/process.dockerfile -",
                             p1, a.runs)
            report(warm, wfloor, "(kerblam over the warm engine floor)")

    if want("engine") and a.engine and not a.kerblam1:
        print(f"package through {a.engine}:")
        p1 = gen_fixture(work, a.data_mb, a.data_files, a.code_files, backend=a.engine)
        row = measure(f"kerblam package --backend {a.engine}", f"{k} package process --backend {a.engine} --tag bench_k --force",
                      p1, a.runs, setup=rm(p1 / "process.kerblam.tar"))
        report(row)

    if want("replay"):
        print("replay unpack vs zstd -d | tar -x:")
        dest = work / "replay-dest"
        def clean():
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
        if not kar.exists():
            run_once(f"{k} package process --backend tarball -o {kar} --force", proj)
        base = measure("zstd -d | tar -x", f"zstd -d -q -c {tar_zst} | tar -x -C {dest}", work, a.runs, setup=clean)
        report(base)
        row = measure("kerblam replay --no-run (verify + unpack)", f"{k} replay {kar} {dest} --no-run",
                      work, a.runs, setup=clean)
        report(row, base)

    if want("plan"):
        big = gen_fixture(work, 8, 8, a.plan_files)
        print(f"plan of a {a.plan_files}-file tree vs find / sha256sum:")
        base = measure("find . -type f", "find . -type f > /dev/null", big, a.runs)
        report(base)
        # find -type f reads directories only; a plan also needs each file's size and mode (a stat).
        stat = measure("find . -type f -printf '%s %m' (one stat each)", "find . -type f -printf '%s %m\\n' > /dev/null", big, a.runs)
        report(stat, base)
        plan = measure("kerblam plan process", f"{k} plan process > /dev/null", big, a.runs)
        report(plan, base)
        report(plan, stat)
        # The same files as the plan hashes: kerblam's own archives (a context.tar left by the
        # scaling case) are not part of the context.
        sha = measure("find | xargs sha256sum", "find . -type f -not -path './data/out/*' -not -name '*.tar' -print0 | xargs -0 sha256sum > /dev/null", big, a.runs)
        report(sha)
        report(measure("kerblam plan process --digests", f"{k} plan process --digests > /dev/null", big, a.runs), sha)

    if want("memory"):
        backends = ["tarball"] + ([a.engine] if a.engine else [])
        print(f"peak memory of kerblam package ({', '.join(backends)}; the engine's processes included):")
        for backend in backends:
            for mb in (a.data_mb, 4096):
                p = gen_fixture(work, mb, 64, 1000)
                tag = "" if backend == "tarball" else " --tag bench_m"
                r = measure(f"package --backend {backend}, {mb} MB of data",
                            f"{k} package process --backend {backend}{tag} -o {out}/m.kerblam.tar --force",
                            p, 1, setup=rm(out / "m.kerblam.tar", p / "process.context.tar"))
                report(r)

    if want("freeze"):
        prefix, env = gen_eessi(work, a.freeze_mb)
        spec = work / f"bench-{a.freeze_mb}.freeze.toml"
        fout = out / "freeze"
        fout.mkdir(exist_ok=True)
        run_once(f"{k} freeze --from-env -a bench --write-spec {spec} --no-build --force", work, env=env)
        trees = f"{prefix}/compat/linux/x86_64 {prefix}/init {prefix}/software"
        print(f"freeze of a {a.freeze_mb} MB EESSI tree (tarball backend) vs tar czf, as EESSI's freeze script does:")
        eessi = measure("tar czf (EESSI's freeze script's way)", f"tar czf {fout}/eessi.tar.gz {trees}", work, a.runs)
        report(eessi)
        zst = measure("tar -cf - | zstd -3 -T0", f"tar -cf - {trees} | zstd -3 -T0 -q > {fout}/base.tar.zst", work, a.runs)
        report(zst)
        row = measure("kerblam freeze --backend tarball", f"{k} freeze {spec} --backend tarball -d {fout} --force",
                      work, a.runs)
        report(row, eessi, f"({eessi['median'] / row['median']:.1f}x faster than EESSI's script; "
                          f"{row['median'] / zst['median']:.2f}x tar|zstd)")
        if shutil.which("mksquashfs"):
            # The native SIF (no apptainer): against mksquashfs alone on the same trees, with the
            # same compression (backends/apptainer/src/squash.rs says why gzip level 1).
            print("native SIF freeze (apptainer backend, --native) vs mksquashfs alone:")
            sq = fout / "alone.sqfs"
            alone = measure("mksquashfs alone (gzip level 1, -mem 128M)",
                            f"mksquashfs {trees} {sq} -noappend -all-root -no-xattrs -no-progress "
                            f"-comp gzip -Xcompression-level 1 -mem 128M > /dev/null", work, a.runs, setup=rm(sq))
            report(alone)
            # From scratch: no base image to read (the trees hold what the modules need).
            scratch = spec.with_name(spec.stem + "-scratch.toml")
            scratch.write_text(re.sub(r'(?m)^base = .*$', 'base = "scratch"', spec.read_text()))
            sif = measure("kerblam freeze --backend apptainer --native",
                          f"{k} freeze {scratch} --backend apptainer --native -d {fout} --force", work, a.runs)
            report(sif, alone, f"size {sum(size_of(p) for p in fout.glob('*.sif')) / max(size_of(sq), 1):.3f}x")

    if a.scaling:
        print("scaling (plan and tarball package):")
        for files in (1000, 10000, 100000):
            p = gen_fixture(work, 8, 8, files)
            report(measure(f"plan, {files} code files", f"{k} plan process > /dev/null", p, a.runs))
            report(measure(f"package, {files} code files", f"{k} package process --backend tarball -o {out}/s.kerblam.tar",
                           p, a.runs, setup=rm(out / "s.kerblam.tar", p / "process.context.tar")))
        for mb in (64, 512, 4096):
            p = gen_fixture(work, mb, 64, 1000)
            report(measure(f"package, {mb} MB data", f"{k} package process --backend tarball -o {out}/s.kerblam.tar",
                           p, 1, setup=rm(out / "s.kerblam.tar", p / "process.context.tar")))


if __name__ == "__main__":
    main()
