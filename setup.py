"""Packaging for the continuous-training pipeline.

Dependencies are pinned in requirements.lock / requirements-nodeps.lock (installed by the
Makefile and the Dockerfile); install_requires only names what the code imports directly so
that `pip install .` inside the TFX image does not re-resolve the TFX stack.
"""
from setuptools import find_packages, setup

setup(
    name="ctpipe",
    version="0.1.0",
    description="Continuous training of the Chicago taxi big-tipper model on TFX 1.16",
    # 3.11 here (the lock); TFX 1.16 itself requires < 3.11, so its container image (where the
    # Dockerfile installs this project) runs an older interpreter: 3.10 is the oldest supported.
    python_requires=">=3.10,<3.12",
    packages=find_packages(include=["ctpipe*", "pipeline*", "components*", "models*", "schemas*",
                                    "serving*"]),
    package_data={"schemas": ["*.pbtxt"]},
    install_requires=[
        "tfx==1.16.0",
        "tensorflow>=2.16,<2.17",
        "tensorflow-serving-api>=2.16,<2.17",
        "kfp>=2,<3",
    ],
    entry_points={"console_scripts": ["ctpipe=ctpipe.cli:main"]},
)
