"""`optserve serve` refuses bad flags and ports it cannot take with one line and
exit code 2, before or instead of serving (no traceback, no wrapped port)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def _serve(tmp_path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optserve", "serve", "--db", str(tmp_path / "o.db"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--port", "-1"], "--port must be a port"),
        (["--port", "70000"], "--port must be a port"),
        (["--port", "0", "--http-port", "70000"], "--http-port must be a port"),
        (["--port", "0", "--metrics-port", "-3"], "--metrics-port must be a port"),
        (["--port", "0", "--storage-check-interval", "0"], "--storage-check-interval"),
        (["--port", "0", "--storage-check-interval", "nan"], "--storage-check-interval"),
        (["--port", "0", "--grace", "-1"], "--grace"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path, flags, words):
    result = _serve(tmp_path, *flags)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


def test_ports_it_cannot_take_are_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for flags, words in (
            (["--port", port], f"cannot listen on 127.0.0.1:{port}"),
            (["--port", "0", "--http-port", port], f"cannot serve HTTP on 127.0.0.1:{port}"),
            (["--port", "0", "--host", "bogus.invalid"], "cannot listen on bogus.invalid:0"),
        ):
            result = _serve(tmp_path, *flags)
            assert result.returncode == 2, result.stderr
            assert "Traceback" not in result.stderr
            ours = [line for line in result.stderr.splitlines() if line.startswith("optserve:")]
            assert len(ours) == 1 and words in ours[0], result.stderr


def test_an_unknown_log_level_is_a_usage_error(tmp_path):
    result = _serve(tmp_path, "--port", "0", "--log-level", "BOGUS")
    assert result.returncode == 2 and "invalid choice: 'BOGUS'" in result.stderr


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["experiments", "show", "1", "--timeout", "-1"], "--timeout must be"),
        (["experiments", "show", "1", "--timeout", "nan"], "--timeout must be"),
        (["plot", "1", "-o", "x.png", "--width", "0.001", "--dpi", "10"], "50 pixels"),
    ],
)
def test_client_commands_refuse_bad_numbers_before_calling(tmp_path, command, words):
    result = subprocess.run(
        [sys.executable, "-m", "optserve", *command, "--target", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0 and words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()
