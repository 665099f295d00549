"""Only what pyproject.toml cannot say: install `worldmodel-gym.pth` at the top of site-packages,
so `gymnasium.make("worldmodel/...")` works without importing our package first (see
worldmodel_gym_hook.py). Everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "worldmodel-gym.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        self.copy_file(str(Path(__file__).parent / PTH), str(Path(self.build_lib) / PTH), preserve_mode=0)


setup(cmdclass={"build_py": BuildPyWithPth}, py_modules=["worldmodel_gym_hook"])
