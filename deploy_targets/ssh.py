"""A thin, strict wrapper over the OpenSSH client (`ssh`, `scp`) for edge deployment.

BatchMode (never prompts), strict host key checking unless `accept_new_host_key` (OpenSSH's
`StrictHostKeyChecking=accept-new`: trust a host seen for the first time, still refuse a changed key).
OpenSSH's own failures (exit 255) become one clear `DeployError` per cause: unreachable host,
authentication failure, unknown or changed host key. The destination is validated (never starts with
`-`) and follows `--` in every call; ssh and scp run through `export.child` (they die with lottery,
their output is decoded with replacement).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

from compress.errors import BackendUnavailableError, LotteryError, UsageError
from export import child

PROBE = ("import sys, json, importlib.util as u, platform, shutil; print(json.dumps({'python': sys.version.split()[0], "
         "'machine': platform.machine(), 'numpy': u.find_spec('numpy') is not None, "
         "'lce': u.find_spec('larq_compute_engine') is not None, "
         "'lce_benchmark_model': shutil.which('lce_benchmark_model')}))")


class DeployError(LotteryError):
    """A deployment over SSH that failed: the device, the connection or the device's software."""


def check_host(host: str, port: int | None = None) -> None:
    """Refuse a destination ssh could read as an option (`-oProxyCommand=...`) or that is not one word."""
    if not host or host.startswith("-") or any(c.isspace() or not c.isprintable() for c in host):
        raise UsageError(f"--host {host!r} is not a valid SSH destination: it must be one word, [user@]host, and "
                         "may not start with '-' (ssh would read it as an option).")
    if port is not None and not 1 <= int(port) <= 65535:
        raise UsageError(f"--port {port} is not a TCP port; valid: 1..65535.")


class Ssh:
    def __init__(self, host: str, port: int | None = None, identity: str | Path | None = None,
                 accept_new_host_key: bool = False, known_hosts: str | Path | None = None,
                 connect_timeout: int = 10) -> None:
        check_host(host, port)
        if shutil.which("ssh") is None or shutil.which("scp") is None:
            raise BackendUnavailableError("deploying over SSH needs the OpenSSH client (ssh, scp) on this "
                                          "machine: install openssh-client.")
        if identity is not None and not Path(identity).is_file():
            raise DeployError(f"identity file {identity} does not exist; pass the private key for {host}.")
        self.host, self.port = host, port
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
                "-o", f"StrictHostKeyChecking={'accept-new' if accept_new_host_key else 'yes'}"]
        if identity is not None:
            opts += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
        if known_hosts is not None:
            opts += ["-o", f"UserKnownHostsFile={known_hosts}"]
        self.opts = opts

    def _ssh(self) -> list[str]:
        # `--` ends the options: nothing after it (the host, the command) can be read as one
        return ["ssh", *self.opts, *(["-p", str(self.port)] if self.port else []), "--", self.host]

    def _scp(self) -> list[str]:
        return ["scp", "-q", *self.opts, *(["-P", str(self.port)] if self.port else []), "--"]

    def _check(self, proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
        if proc.returncode == 255 or (proc.returncode != 0 and what.startswith("copy")):
            raise DeployError(self._explain(proc.stderr, what))
        return proc

    def _explain(self, stderr: str, what: str) -> str:
        err = child.printable(stderr).strip()
        where = f"{self.host}{f' port {self.port}' if self.port else ''}"
        if "Host key verification failed" in err or ("host key" in err.lower() and "known" in err.lower()):
            if "CHANGED" in err:
                return (f"the host key of {where} has CHANGED since it was recorded in known_hosts: refusing to "
                        "connect (possible man-in-the-middle). Check the device, then fix known_hosts yourself.")
            return (f"the host key of {where} is not in known_hosts, and host key checking is on. Check its "
                    "fingerprint and add it (`ssh -p PORT USER@HOST` once, or ssh-keyscan), or pass "
                    "--accept-new-host-key to trust a device seen for the first time.")
        if "Permission denied" in err or "Too many authentication failures" in err:
            return (f"authentication to {where} failed (public key refused). Pass the right key with --identity "
                    "KEY, or install your public key in the device's ~/.ssh/authorized_keys. Password "
                    "login is not used (BatchMode).")
        for sign in ("Connection refused", "timed out", "No route to host", "Could not resolve",
                     "Network is unreachable", "Connection closed", "Connection reset"):
            if sign in err:
                return (f"cannot reach {where}: {sign.lower()}. Check the address, --port, that sshd runs on the "
                        "device and that the network allows it.")
        return f"ssh to {where} failed while trying to {what}:\n{child.tail(err, 4)}"

    def run(self, command: str, check: bool = True, what: str = "run a command",
            timeout: float | None = None) -> subprocess.CompletedProcess:
        proc = child.run([*self._ssh(), command], timeout=timeout)
        self._check(proc, what)
        if check and proc.returncode != 0:
            raise DeployError(f"`{command}` failed on {self.host} (exit {proc.returncode}):\n"
                              f"{child.tail(proc.stderr, 4)}")
        return proc

    def probe_python(self, python: str) -> dict:
        """Python, numpy and LCE on the device, checked before anything is copied there."""
        proc = self.run(f"{shlex.quote(python)} -c {shlex.quote(PROBE)}", check=False, what="check Python")
        if proc.returncode != 0 or not proc.stdout.strip().startswith("{"):
            raise DeployError(f"no working Python at '{python}' on {self.host} (exit {proc.returncode}: "
                              f"{child.last_line(proc.stderr)[-200:]}). Pass --remote-python PATH to the device's "
                              "Python 3 that has numpy and larq-compute-engine installed.")
        env = json.loads(proc.stdout.strip().splitlines()[-1])
        missing = [p for p, ok in (("numpy", env["numpy"]), ("larq-compute-engine", env["lce"])) if not ok]
        if missing:
            raise DeployError(f"{python} on {self.host} (Python {env['python']}, {env['machine']}) lacks "
                              f"{' and '.join(missing)}. Install them on the device (`{python} -m pip install "
                              f"larq-compute-engine`) or pass --remote-python to a Python that has them. Nothing "
                              "was copied to the device.")
        return env

    def make_dir(self, base: str) -> str:
        proc = self.run(f"mktemp -d {shlex.quote(base.rstrip('/') + '/lottery-edge.XXXXXX')}", what="make a folder")
        path = proc.stdout.strip().splitlines()[-1]
        if "/lottery-edge." not in path:
            raise DeployError(f"mktemp on {self.host} returned '{path}', not a lottery-edge folder.")
        return path

    def remove_dir(self, path: str) -> None:
        if "/lottery-edge." in path:  # only ever the folder make_dir created
            child.run([*self._ssh(), f"rm -rf {shlex.quote(path)}"], timeout=60)

    def put(self, files: list[Path], remote_dir: str) -> None:
        proc = child.run([*self._scp(), *map(str, files), f"{self.host}:{remote_dir}/"])
        self._check(proc, "copy files to the device")

    def get(self, remote: str, local: Path) -> None:
        proc = child.run([*self._scp(), f"{self.host}:{remote}", str(local)])
        self._check(proc, "copy results from the device")
