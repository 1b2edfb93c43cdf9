"""Deterministic Distributor package builds, streamed through an on-disk build cache."""

from controller.packaging.build import Artifact, PackageBuild, ZipInput, build_package
from controller.packaging.cache import BuildCache
from controller.packaging.zipper import deterministic_zip

__all__ = [
    "Artifact",
    "BuildCache",
    "PackageBuild",
    "ZipInput",
    "build_package",
    "deterministic_zip",
]
