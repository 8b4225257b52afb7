#!/usr/bin/env python3
"""kerblam's benchmark harness: ratios against baselines measured in the same run.

Usage:
    python3 bench/bench.py [--data-mb 512] [--data-files 64] [--code-files 5000] [--runs 3]
                           [--kerblam target/release/kerblam] [--kerblam1 DIR/bin/kerblam]
                           [--scaling] [--work DIR] [--only NAME,...]

It generates the fixture deterministically (a Kerblam! project with N MB of text-like input data in M
files, K small code files, a make pipe and a recipe), runs each measured command and its baseline
`--runs` times in the same run, and prints the median wall time, the ratio to the baseline and the peak
memory (max RSS of the child process tree's largest process, from wait4).

Timings are never asserted: these machines are shared and noisy, so only ratios measured in the same
run mean anything. `--kerblam1` adds Kerblam! 1.2.1 as a baseline
(`cargo install kerblam --version 1.2.1 --root DIR`).
"""

import argparse
import os
import random
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


def gen_fixture(root: Path, data_mb: int, data_files: int, code_files: int, seed: int = 1) -> Path:
    """Write a Kerblam! project; identical bytes for identical parameters."""
    proj = root / f"fixture-{data_mb}mb-{data_files}f-{code_files}c"
    stamp = proj / ".complete"
    if stamp.exists():
        return proj
    if proj.exists():
        shutil.rmtree(proj)
    rng = random.Random(seed)
    (proj / "data/in").mkdir(parents=True)
    (proj / "src/workflows").mkdir(parents=True)
    (proj / "src/dockerfiles").mkdir(parents=True)
    (proj / "src/code").mkdir(parents=True)
    (proj / "kerblam.toml").write_text('[meta]\nversion = "1.0.0"\n')
    (proj / "src/workflows/process.makefile").write_text(
        "#? Count the lines of the inputs\n"
        "data/out/count.txt:\n\tmkdir -p data/out\n\tcat data/in/*.csv | wc -l > $@\n"
    )
    (proj / "src/dockerfiles/process.dockerfile").write_text("FROM kerblam-test-base:latest\nCOPY . .\n")
    # Text-like CSV data: a pool of random lines, sampled, so it compresses like real tables.
    pool = [",".join(rng.choice(WORDS) for _ in range(8)) + "\n" for _ in range(4096)]
    per_file = data_mb * 1024 * 1024 // max(data_files, 1)
    for i in range(data_files):
        with open(proj / f"data/in/table_{i:04}.csv", "w") as f:
            written = 0
            chunk = []
            while written < per_file:
                line = pool[rng.randrange(len(pool))]
                chunk.append(line)
                written += len(line)
                if len(chunk) >= 4096:
                    f.write("".join(chunk))
                    chunk = []
            f.write("".join(chunk))
    for i in range(code_files):
        d = proj / "src/code" / f"m{i // 500:02}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:05}.py").write_text(f"# module {i}\nVALUE = {rng.randrange(10**6)}\n")
    stamp.write_text("ok\n")
    return proj


def run_once(cmd, cwd, env=None, stdin=None, stdout=None):
    """Run a shell command; return (seconds, max RSS in MiB of the biggest child)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdin=stdin, stdout=stdout or subprocess.DEVNULL)
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
        ratio = f"{row['median'] / baseline['median']:6.2f}x of {baseline['name']}"
    print(f"  {row['name']:<44} {row['median']:8.2f} s  {row['rss']:8.1f} MiB  {ratio} {note}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-mb", type=int, default=512)
    ap.add_argument("--data-files", type=int, default=64)
    ap.add_argument("--code-files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kerblam", default="target/release/kerblam")
    ap.add_argument("--kerblam1", default=None, help="a Kerblam! 1.2.1 executable, as a baseline")
    ap.add_argument("--work", default=os.environ.get("TMPDIR", "/tmp") + "/kerblam-bench")
    ap.add_argument("--scaling", action="store_true", help="also print plan/package times at several sizes")
    ap.add_argument("--only", default="", help="comma-separated case names")
    a = ap.parse_args()
    kerblam = str(Path(a.kerblam).resolve())
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    only = set(filter(None, a.only.split(",")))
    want = lambda n: not only or n in only

    proj = gen_fixture(work, a.data_mb, a.data_files, a.code_files)
    out = work / "out"
    out.mkdir(exist_ok=True)
    print(f"fixture: {proj} ({a.data_mb} MB in {a.data_files} files, {a.code_files} code files); "
          f"{os.cpu_count()} cores; {a.runs} runs each; medians")

    if want("data"):
        print("data archive (zstd) vs tar | zstd -3 -T0:")
        base = measure("tar -cf - data/in | zstd -3 -T0", f"tar -cf - data/in | zstd -3 -T0 -q > {out}/base.tar.zst",
                       proj, a.runs)
        report(base)
        row = measure("kerblam package --backend tarball", f"{kerblam} -q package process --backend tarball -o {out}/k.kerblam.tar",
                      proj, a.runs)
        report(row, base, f"size {size_of(out / 'k.kerblam.tar') / max(size_of(out / 'base.tar.zst'), 1):.3f}x")
        gz = measure("tar czf (gzip, single thread)", f"tar czf {out}/base.tar.gz data/in", proj, a.runs)
        report(gz)
        v1 = measure("kerblam package --format kerblam-v1", f"{kerblam} -q package process --backend tarball --format kerblam-v1 -o {out}/v1.kerblam.tar",
                     proj, a.runs)
        report(v1, gz, f"size {size_of(out / 'v1.kerblam.tar') / max(size_of(out / 'base.tar.gz'), 1):.3f}x")
        if a.kerblam1:
            k1 = measure("Kerblam! 1.2.1 package (podman)", f"{a.kerblam1} package process --tag bench_k1", proj, 1)
            report(k1)
            report(row, k1, "(kerblam tarball vs 1.2.1)")
            report(v1, k1, "(kerblam-v1 format vs 1.2.1)")

    if want("replay"):
        print("replay unpack vs zstd -d | tar -x:")
        dest = work / "replay-dest"
        def clean():
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
        base = measure("zstd -d | tar -x", f"zstd -d -q -c {out}/base.tar.zst | tar -x -C {dest}", work, a.runs, setup=clean)
        report(base)
        row = measure("kerblam replay --no-run (unpack only)", f"{kerblam} -q replay {out}/k.kerblam.tar {dest} --unpack-only",
                      work, a.runs, setup=clean)
        report(row, base)

    if want("plan"):
        print("plan vs find / sha256sum:")
        base = measure("find . -type f", "find . -type f > /dev/null", proj, a.runs)
        report(base)
        report(measure("kerblam plan process", f"{kerblam} -q plan process > /dev/null", proj, a.runs), base)
        sha = measure("find -type f | xargs sha256sum", "find . -type f -not -path './data/out/*' -print0 | xargs -0 sha256sum > /dev/null", proj, a.runs)
        report(sha)
        report(measure("kerblam plan process --digests", f"{kerblam} -q plan process --digests > /dev/null", proj, a.runs), sha)

    if a.scaling:
        print("scaling (plan and tarball package):")
        for files in (1000, 10000, 100000):
            p = gen_fixture(work, 8, 8, files)
            r = measure(f"plan, {files} code files", f"{kerblam} -q plan process > /dev/null", p, a.runs)
            report(r)
        for mb in (64, 512, 4096):
            p = gen_fixture(work, mb, 64, 1000)
            r = measure(f"package, {mb} MB data", f"{kerblam} -q package process --backend tarball -o {out}/s.kerblam.tar", p, 1)
            report(r)


if __name__ == "__main__":
    main()
