"""Settings of an SSH connection to an ARM board (torch-free), shared by `bench` and `deploy_edge`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compress.errors import UsageError
from compress.hparams import Hparams, setting


@dataclass(frozen=True)
class SshHparams(Hparams):
    host: str = setting("", help="USER@HOST of an ARM board to run a .tflite on over SSH (OpenSSH client); empty: "
                                 "run here.")
    port: int = setting(0, lo=0, hi=65535, digest=False, help="SSH port (0: OpenSSH's default).")
    identity: str = setting("", digest=False, help="SSH private key file.")
    known_hosts: str = setting("", digest=False, help="known_hosts file (default: OpenSSH's).")
    accept_new_host_key: bool = setting(False, digest=False,
                                        help="Trust a host key seen for the first time (still refuse a changed one).")
    remote_python: str = setting("python3", help="Python on the device, with numpy and larq-compute-engine.")
    remote_dir: str = setting("/tmp", digest=False, help="Where the device's temporary folder is made.")

    def validate(self) -> None:
        if self.host.startswith("-"):
            raise UsageError(f"host '{self.host}' starts with '-': it would reach ssh as an option. Give "
                             "USER@HOST or a host name.")

    def target_options(self) -> dict[str, Any]:
        """Keyword options of deploy_targets.arm_lce.LceTarget (nothing when running here)."""
        if not self.host:
            return {}
        return {"host": self.host, "port": self.port or None, "identity": self.identity or None,
                "known_hosts": self.known_hosts or None, "accept_new_host_key": self.accept_new_host_key,
                "remote_python": self.remote_python, "remote_dir": self.remote_dir}
