"""Shared fixtures."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

SHIMS = Path(__file__).resolve().parent / "shims"


def _real_torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # CUDA-only wheels raise RuntimeError/ImportError with CPU torch
        sys.modules.pop("torchvision", None)
        return False
    return True


@pytest.fixture(scope="module")
def torchvision_for_nerfstudio():
    """nerfstudio imports torchvision; where the real one cannot load (CUDA wheels, CPU torch) put
    the test-only stand-in (tests/shims/torchvision) on sys.path for this module, and take it away
    afterwards so other tests (transformers, diffusers) still see no torchvision."""
    if _real_torchvision_imports():
        yield "torchvision"
        return
    sys.path.insert(0, str(SHIMS))
    try:
        yield "shim"
    finally:
        sys.path.remove(str(SHIMS))
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def no_network():
    """Fail any attempt to reach the network (a download) for this module; yields the list of the
    attempts, which the tests assert is empty."""
    attempts: list[str] = []
    mp = pytest.MonkeyPatch()
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(f"connect {address}")
            raise OSError(f"network access in a test: connect to {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        attempts.append(f"resolve {host}")
        raise OSError(f"network access in a test: resolve {host}")

    def hub_download(url, *args, **kwargs):
        attempts.append(f"torch.hub {url}")
        raise OSError(f"download in a test: {url}")

    import torch.hub

    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    mp.setattr(torch.hub, "download_url_to_file", hub_download)
    mp.setattr(torch.hub, "load_state_dict_from_url", hub_download)
    try:
        yield attempts
    finally:
        mp.undo()
