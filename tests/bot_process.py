"""Runs `imgbot run` as its own process against an in-test simulator, as production runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imgbot.simulator import DingTalkSimulator


@dataclass
class BotProcess:
    """A running bot process and where its logs go."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory (VmHWM) in MB, read from /proc."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc status")

    def terminate(self, timeout: float = 15) -> tuple[int, float]:
        """Send SIGTERM; return the exit code and seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def logs(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def bot_process(simulator: DingTalkSimulator, log_path: Path, **env: str) -> Iterator[BotProcess]:
    """Start `python -m imgbot run` connected to ``simulator``; kill it if still running after."""
    environment = {
        **os.environ,
        "DINGTALK_CLIENT_ID": simulator.client_id,
        "DINGTALK_CLIENT_SECRET": simulator.client_secret,
        "DINGTALK_OPENAPI_ENDPOINT": simulator.base_url,
        "METRICS_PORT": "0",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "imgbot", "run"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield BotProcess(process, log_path)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
