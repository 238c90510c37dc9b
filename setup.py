"""Metadata lives in setup.cfg. One addition: the example rules and event travel in the wheel.

rules/ and examples/ stay at the top of the source tree (where `make run` and the docs point),
and are copied into the built package as prepr_automation/examples/, so an installed
`prepr-automation dev` finds them (cli/tour.py's examples()) without a source checkout.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLES = ("rules", "examples")


class BuildWithExamples(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "prepr_automation" / "examples"
        shutil.rmtree(target, ignore_errors=True)  # nothing stale from an earlier build
        for name in EXAMPLES:
            if Path(name).is_dir():
                shutil.copytree(name, target / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithExamples})
