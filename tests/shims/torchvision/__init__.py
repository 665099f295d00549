"""Test-only stand-in for torchvision, used where the real one cannot load.

Why: torchvision's wheels on PyPI are CUDA builds; with the CPU torch this project pins, `import
torchvision` fails ("operator torchvision::nms does not exist"), and nerfstudio imports it at module
level (`nerfstudio.pipelines.base_pipeline` imports `torchvision.utils`), and torchmetrics, once it
sees a torchvision, imports a few model builders and box ops. Those pieces are used only by paths our
nerfstudio backend never takes (saving eval images to disk, viewer thumbnails, LPIPS/ARNIQA/DISTS
backbones, detection metrics), so this package defines exactly those names and makes each one raise
if it is ever called. It is on sys.path only in tests (tests/conftest.py) and only when the real torchvision does
not import; users install a real CPU torchvision instead (README, "NeRF scenes").
"""

SHIM = True
__version__ = "0.0.0+worldmodel-test-shim"


def unavailable(name: str):
    """A function that fails loudly: this code path needs the real torchvision."""

    def fail(*args, **kwargs):
        raise RuntimeError(
            f"torchvision.{name} is not available: this is the test-only torchvision shim "
            "(tests/shims); install a real torchvision for this code path"
        )

    fail.__name__ = name.rsplit(".", 1)[-1]
    return fail
