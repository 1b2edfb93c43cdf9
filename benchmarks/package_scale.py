"""Benchmark: ``plan`` of a Package with a 500 MB installer - peak memory, and the cached second plan.

Issue 9 (hole 6) measured 670 MB of RSS for a 200 MB MSI: files were read whole and zipped in
memory, and every pass rebuilt every package. This runs the real CLI (``fleet-controller plan``,
each in a process of its own) against a sandbox, twice with one build cache:

- first plan: the installer is hashed and zipped into the (empty) cache, streamed;
- second plan: nothing changed, so the cache answers both (two stats per file, no read).

It prints each plan's wall time and peak RSS (the process's VmHWM), the second's time as a ratio of
the first's, and the installer's size for scale. ``--content random`` (the default) stands for a
real MSI, which is already compressed; ``zeros`` is a sparse file (fast to make, tiny zip).

    python -m benchmarks.package_scale [--megabytes 500] [--content random|zeros]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import boto3

from fleet_sandbox.server import Sandbox

CHUNK = 8 * 1024 * 1024

# The CLI in a child process that reports its own peak RSS: VmHWM belongs to the process image,
# whereas getrusage(RUSAGE_CHILDREN) would carry over this (larger) parent's peak across fork.
_CHILD = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from controller.cli import main
    code = main(sys.argv[1:])
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(f"peak_kib={peak}", file=sys.stderr)
    sys.exit(code)
    """
)


def write_package(root: Path, megabytes: int, content: str) -> Path:
    directory = root / "big"
    directory.mkdir(parents=True)
    (directory / "install.ps1").write_text("Start-Process msiexec.exe '/i app.msi /qn' -Wait\n")
    (directory / "uninstall.ps1").write_text("Start-Process msiexec.exe '/x app.msi /qn' -Wait\n")
    size = megabytes * 1_000_000
    with (directory / "app.msi").open("wb") as handle:
        if content == "zeros":
            handle.truncate(size)
        else:
            written = 0
            while written < size:
                chunk = os.urandom(min(CHUNK, size - written))
                handle.write(chunk)
                written += len(chunk)
    (directory / "package.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: fleet-controller/v1alpha1
            kind: Package
            metadata: {name: big}
            spec:
              name: BigApp
              version: "1.0.0"
              publisher: Benchmark
              artifacts: {bucket: benchmark-packages, prefix: distributor}
              platforms:
                - files: [install.ps1, uninstall.ps1, app.msi]
              detection: {type: file, path: "C:\\\\Program Files\\\\Big\\\\big.exe", check: exists}
            """
        )
    )
    return directory / "app.msi"


def plan(desired: Path, endpoint: str, cache: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one ``plan`` process."""
    env = {
        **os.environ,
        "FLEET_BUILD_CACHE": str(cache),
        "AWS_ACCESS_KEY_ID": "benchmark",
        "AWS_SECRET_ACCESS_KEY": "benchmark",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "plan", str(desired), "--endpoint-url", endpoint,
         "--region", "us-east-1", "--controller-id", "benchmark", "--log-format", "json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"plan failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("peak_kib=")]
    return elapsed, int(peak[-1].split("=", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--content", choices=["random", "zeros"], default="random")
    args = parser.parse_args()
    sandbox = Sandbox()
    sandbox.start()
    try:
        with tempfile.TemporaryDirectory(prefix="package-scale-") as work:
            root = Path(work)
            installer = write_package(root / "desired", args.megabytes, args.content)
            boto3.client(
                "s3",
                endpoint_url=sandbox.endpoint,
                region_name="us-east-1",
                aws_access_key_id="benchmark",
                aws_secret_access_key="benchmark",
            ).create_bucket(Bucket="benchmark-packages")
            size_mib = installer.stat().st_size / 1024**2
            print(f"installer: {size_mib:,.0f} MiB of {args.content} bytes")
            first = plan(root / "desired", sandbox.endpoint, root / "cache")
            second = plan(root / "desired", sandbox.endpoint, root / "cache")
            zips = sum(p.stat().st_size for p in (root / "cache" / "zips").glob("*.zip"))
            print(f"{'pass':<26}{'wall s':>8}{'peak RSS MiB':>14}")
            for label, (seconds, peak_kib) in (
                ("first plan (builds)", first),
                ("second plan (cached)", second),
            ):
                print(f"{label:<26}{seconds:>8.1f}{peak_kib / 1024:>14.0f}")
            print(f"second / first wall time: {second[0] / first[0]:.3f}")
            print(f"peak RSS / installer size: {first[1] / 1024 / size_mib:.3f}")
            print(f"cached zip: {zips / 1024**2:,.0f} MiB")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
