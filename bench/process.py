"""A real `python bot.py` for a benchmark, and what it has used, read from /proc (Linux)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.fakegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def start_bot(
    fake: FakeTelegram, workdir: Path, database_url: str, poll_within: float = 300, **env: str
) -> asyncio.subprocess.Process:
    """`python bot.py` against the stand-in with `env` added, once it polls for updates."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        env={
            **os.environ,
            "BOT_TOKEN": fake.token,
            "BOT_API_URL": fake.base_url,
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(ROOT),
            **env,
        },
        cwd=workdir,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=poll_within)
    except BaseException:
        process.terminate()
        await process.wait()
        raise
    return process
